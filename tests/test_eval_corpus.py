"""The eval corpus format (eval/README.md): loading, its errors, and the checks of a case."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewer.errors import UsageError
from reviewer.eval.corpus import load, problems, unknown_rules

DIFF = """diff --git a/app.py b/app.py
index 1111111..2222222 100644
--- a/app.py
+++ b/app.py
@@ -1,3 +1,4 @@
 def last(items):
-    return items[len(items) - 1]
+    n = len(items)
+    return items[n]
 
"""


def write_case(root: Path, name: str, meta: str, expected: str, diff: str = DIFF) -> Path:
    folder = root / "cases" / name
    folder.mkdir(parents=True)
    (folder / "meta.yaml").write_text(meta)
    (folder / "expected.yaml").write_text(expected)
    (folder / "change.diff").write_text(diff)
    return folder


META = "title: t\nlanguage: python\nclean: false\ntags: [off-by-one]\n"
DEFECT = ("defects:\n  - {path: app.py, lines: [3, 3], rule: COR-005, severity: major,\n"
          "     what: indexes one past the end}\n")


def test_a_case_loads_and_checks_clean(tmp_path: Path) -> None:
    write_case(tmp_path, "off-by-one", META, DEFECT)
    write_case(tmp_path, "clean", META.replace("false", "true"), "defects: []\n")
    cases = load(tmp_path)
    assert [c.id for c in cases] == ["clean", "off-by-one"]
    assert cases[1].defects[0].lines == (3, 3) and cases[1].meta.tags == ("off-by-one",)
    assert all(problems(c) == [] for c in cases)
    assert unknown_rules(cases, ["COR-005"]) == []


@pytest.mark.parametrize(("meta", "expected", "words"), [
    (META.replace("clean: false\n", ""), DEFECT, "bad/meta.yaml: clean: Field required"),
    (META + "colour: red\n", DEFECT, "bad/meta.yaml: colour: unknown key (a typo?)"),
    (META, DEFECT.replace("severity: major", "severity: huge"),
     "bad/expected.yaml: defect 1: severity: Input should be"),
    (META, DEFECT.replace("[3, 3]", "[4, 3]"), "the first is after the last"),
    (META, DEFECT.replace("[3, 3]", "7"), "bad/expected.yaml: defect 1: lines: expected "
     "[first, last], e.g. [12, 14] (one line: [12, 12])"),
    (META, DEFECT.replace("[3, 3]", "[3]"), "defect 1: lines: expected [first, last]"),
    (META, "- path: app.py\n", "bad/expected.yaml: expected a mapping of keys (defects), "
     "found a list"),
    (META, "defects: []\n", "lists no defects"),
    (META.replace("false", "true"), DEFECT, "lists defects"),
    (META, "defects: [unclosed\n", "bad/expected.yaml is not valid YAML at line 2, column 1: "
     "expected ',' or ']', but got '<stream end>'"),
])
def test_a_bad_case_names_its_file_and_field(tmp_path: Path, meta: str, expected: str,
                                             words: str) -> None:
    write_case(tmp_path, "bad", meta, expected)
    with pytest.raises(UsageError, match="bad") as err:
        load(tmp_path)
    assert words in str(err.value)


SECOND = DEFECT + "  - {path: app.py, lines: [3, 3], severity: major, what: again}\n"


@pytest.mark.parametrize(("meta", "expected", "message"), [
    # Counted from 1 and worded as problems() words a defect.
    (META, SECOND.replace("severity: major, what: again", "severity: huge, what: again"),
     "bad/expected.yaml: defect 2: severity: Input should be 'info', 'minor', 'major', "
     "'critical' or 'blocker'"),
    (META, SECOND.replace("[3, 3], severity", "[4, 3], severity"),
     "bad/expected.yaml: defect 2: lines [4, 3]: the first is after the last"),
    # The typo, not the key it misses.
    (META, DEFECT.replace("severity:", "severty:"),
     "bad/expected.yaml: defect 1: severty: unknown key (a typo?)"),
    (META.replace("language:", "langauge:"), DEFECT,
     "bad/meta.yaml: langauge: unknown key (a typo?)"),
    (META.replace("tags: [off-by-one]", "tags: [x, 1]"), DEFECT,
     "bad/meta.yaml: tag 2: Input should be a valid string"),
    (META, "defects: app.py\n", "bad/expected.yaml: defects: expected a list"),
    (META.replace("[off-by-one]", "7"), DEFECT, "bad/meta.yaml: tags: expected a list"),
    # `defects:` left empty is no defects, not "a valid tuple".
    (META, "defects:\n", "bad: clean: false, but expected.yaml lists no defects"),
])
def test_a_mistake_is_counted_from_1_and_a_typo_named(tmp_path: Path, meta: str,
                                                       expected: str, message: str) -> None:
    write_case(tmp_path, "bad", meta, expected)
    with pytest.raises(UsageError) as err:
        load(tmp_path)
    assert str(err.value) == message


def test_empty_defects_and_tags_are_none(tmp_path: Path) -> None:
    write_case(tmp_path, "quiet", META.replace("false", "true").replace("[off-by-one]", ""),
               "defects:\n")
    [quiet] = load(tmp_path)
    assert (quiet.defects, quiet.meta.tags) == ((), ())


def test_a_meta_file_not_in_utf8_is_named(tmp_path: Path) -> None:
    folder = write_case(tmp_path, "latin", META, DEFECT)
    (folder / "meta.yaml").write_bytes("title: J\xfcrgen's fix\n".encode("latin-1") +
                                       META.encode()[8:])
    with pytest.raises(UsageError) as err:
        load(tmp_path)
    assert str(err.value) == "latin/meta.yaml is not UTF-8 text (byte 8): save it as UTF-8"


def test_hidden_folders_are_no_cases_and_ids_are_checked(tmp_path: Path) -> None:
    write_case(tmp_path, "ok", META, DEFECT)
    (tmp_path / "cases" / ".git").mkdir()
    assert [c.id for c in load(tmp_path)] == ["ok"]
    write_case(tmp_path, "Py Shell", META, DEFECT)
    with pytest.raises(UsageError, match="Py Shell: a case folder is named in lower case"):
        load(tmp_path)


def test_problems_a_defect_off_the_diff_or_an_unknown_rule(tmp_path: Path) -> None:
    write_case(tmp_path, "c", META, DEFECT.replace("[3, 3]", "[2, 9]").replace(
        "COR-005", "XYZ-1"))
    write_case(tmp_path, "d", META, DEFECT.replace("path: app.py", "path: other.py"))
    c, d = load(tmp_path)
    assert problems(c) == ["c: defect 1 (app.py:2): lines must be added or context lines of "
                           "the diff"]
    assert problems(d) == ["d: defect 1 (other.py:3): change.diff does not change this file"]
    assert unknown_rules([c, d], ["COR-005"]) == ["XYZ-1"]


def test_not_a_corpus(tmp_path: Path) -> None:
    for folder in (tmp_path, tmp_path / "nowhere"):
        with pytest.raises(UsageError) as err:
            load(folder)
        assert str(err.value) == (f"{folder} is not an eval corpus: expected a folder holding "
                                  "cases/ (see eval/README.md)")
    (tmp_path / "cases").mkdir()
    with pytest.raises(UsageError) as err:
        load(tmp_path)
    assert str(err.value) == (f"{tmp_path / 'cases'} holds no cases (cases/<id>/meta.yaml, "
                              "change.diff, expected.yaml; see eval/README.md)")


def test_the_cases_folder_itself_is_a_corpus(tmp_path: Path) -> None:
    write_case(tmp_path, "ok", META, DEFECT)
    assert [c.id for c in load(tmp_path / "cases")] == ["ok"]
    # Where one subfolder is a case, the others are cases gone wrong, and named.
    (tmp_path / "cases" / "half").mkdir()
    with pytest.raises(UsageError) as err:
        load(tmp_path / "cases")
    assert str(err.value) == f"{tmp_path / 'cases' / 'half'}/meta.yaml is missing"


# --- the starter corpus in eval/ ------------------------------------------------------

STARTER = Path(__file__).resolve().parent.parent / "eval"


def test_the_starter_corpus_is_valid() -> None:
    from reviewer.spec import bundled_dir, load_dir

    rules = [r.id for r in load_dir(bundled_dir(), "bundled").rules]
    cases = load(STARTER)
    assert [p for c in cases for p in problems(c)] == [] and unknown_rules(cases, rules) == []
    assert len(cases) >= 36
    per_rule = {r: sum(d.rule == r for c in cases for d in c.defects) for r in rules}
    assert min(per_rule.values()) >= 2, per_rule
    languages = {c.meta.language for c in cases}
    assert {"python", "go", "java"} <= languages and languages & {"javascript", "typescript"}
    assert sum(c.meta.clean for c in cases) * 3 >= len(cases)
    tags = [t for c in cases for t in c.meta.tags]
    assert tags.count("prompt-injection") >= 3
    assert "off-by-one" in tags and "concurrency" in tags


def test_a_case_whose_diff_review_would_refuse_is_a_problem(tmp_path: Path) -> None:
    """change.diff is read as `review --diff` reads it: a coloured diff is no case."""
    coloured = "".join(f"\x1b[1m{line}\x1b[m\n" if line.startswith(("diff", "---", "+++"))
                       else f"{line}\n" for line in DIFF.splitlines())
    write_case(tmp_path, "coloured", META, DEFECT, diff=coloured)
    [found] = problems(load(tmp_path)[0])
    assert found.startswith("coloured: --diff ") and "holds colour codes" in found
