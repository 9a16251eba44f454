"""`eval merge` takes shards only when every shard of one run is there: a lone shard, or
shards of different splits, would otherwise pass for the whole run."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewer.errors import UsageError
from reviewer.eval import results
from reviewer.eval.merge import merge
from reviewer.eval.results import EvalResult
from tests.conftest import run_cli
from tests.test_eval_report import case, defect, found, result


def part(name: str, shard: str | None) -> EvalResult:
    """A one-case result of shard `shard`, its case found."""
    one = case(name, "python", [defect(5, "COR-005", "major")], [found(5)])
    return result([one], repeat=1).model_copy(update={"shard": shard})


def merged(*labels: str | None) -> EvalResult:
    return merge([(Path(f"{n}.json"), part(f"c{n}", label)) for n, label in enumerate(labels)])


@pytest.mark.parametrize(("labels", "message"), [
    (["1/2"], "shard 2/2 is missing: merge every shard of the run (eval run --shard)"),
    (["1/4", "3/4"], "shards 2/4, 4/4 are missing: merge every shard of the run "
                     "(eval run --shard)"),
    (["1/2", "2/3"], "0.json is shard 1/2, 1.json shard 2/3: not the shards of one run"),
    (["2/2", "2/2", "1/2"], "0.json and 1.json are both shard 2/2"),
    ([None, "1/2"], "0.json is a whole run, 1.json shard 1/2: merge the shards of one run, "
                    "and only them"),
    (["1/2", None], "1.json is a whole run, 0.json shard 1/2: merge the shards of one run, "
                    "and only them"),
    (["x"], "0.json says it is shard 'x', which is not I/N"),
])
def test_shards_that_are_not_one_whole_run_are_refused(labels: list[str | None],
                                                        message: str) -> None:
    with pytest.raises(UsageError) as caught:
        merged(*labels)
    assert str(caught.value) == message


def test_every_shard_once_or_whole_results_merge() -> None:
    got = merged("2/3", "3/3", "1/3")
    assert (got.shard, [c.id for c in got.cases], got.overall.recall) == \
        (None, ["c0", "c1", "c2"], 1.0)
    # Whole results of different cases (a corpus grown since) may still be joined.
    assert [c.id for c in merged(None, None).cases] == ["c0", "c1"]


def test_a_lone_shard_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    results.write(part("alpha", "1/2"), tmp_path / "shard-1.json")
    out = tmp_path / "merged.json"
    got = run_cli("eval", "merge", str(tmp_path / "shard-1.json"), "-o", str(out))
    assert (got.code, got.stderr) == (2, "reviewer: error: shard 2/2 is missing: merge every "
                                         "shard of the run (eval run --shard)\n")
    assert not out.exists()


def two_shards(folder: Path) -> list[str]:
    """shard-1.json and shard-2.json, the two shards of one run, in folder."""
    for n, name in ((1, "alpha"), (2, "beta")):
        results.write(part(name, f"{n}/2"), folder / f"shard-{n}.json")
    return [str(folder / f"shard-{n}.json") for n in (1, 2)]


def test_an_output_that_cannot_be_written_is_named_before_any_part_is_read(
        tmp_path: Path) -> None:
    """The same check as eval run's, rather than an 'unexpected' error after the work."""
    shards = two_shards(tmp_path)
    (tmp_path / "a-file").write_text("")
    for output, words in [
            (tmp_path, f"--output {tmp_path} is a directory: name a file, e.g. "
                       f"{tmp_path / 'x.json'}"),
            (tmp_path / "a-file" / "x.json", f"--output {tmp_path / 'a-file' / 'x.json'} "
                                             f"cannot be written: {tmp_path / 'a-file'} is a "
                                             "file, not a folder")]:
        # A part that is no result: reading it first would give another error.
        got = run_cli("eval", "merge", str(tmp_path / "absent.json"), *shards, "-o",
                      str(output))
        assert (got.code, got.stdout, got.stderr) == (2, "", f"reviewer: error: {words}\n")
    # A folder that does not exist yet is made, as for eval run's --output.
    out = tmp_path / "new" / "dir" / "merged.json"
    got = run_cli("eval", "merge", *shards, "-o", str(out))
    assert (got.code, got.stderr) == (0, "")
    assert [c.id for c in results.read(out).cases] == ["alpha", "beta"]


def test_an_output_that_is_one_of_the_parts_is_refused(tmp_path: Path) -> None:
    shards = two_shards(tmp_path)
    before = Path(shards[0]).read_bytes()
    # Named another way, it is still the same file.
    got = run_cli("eval", "merge", *shards, "-o", str(tmp_path / "." / "shard-1.json"))
    assert (got.code, got.stderr) == (2, f"reviewer: error: --output "
                                         f"{tmp_path / 'shard-1.json'} is one of the parts: "
                                         "merging would overwrite it; name another file\n")
    assert Path(shards[0]).read_bytes() == before


def test_a_part_given_twice_is_named_as_such(tmp_path: Path) -> None:
    shards = two_shards(tmp_path)
    got = run_cli("eval", "merge", shards[0], shards[1], shards[0], "-o",
                  str(tmp_path / "m.json"))
    assert (got.code, got.stderr) == (2, f"reviewer: error: {shards[0]} is given twice: name "
                                         "each part once\n")
    other = run_cli("eval", "merge", shards[0], shards[1], "shard-1.json", "-o",
                    str(tmp_path / "m.json"), cwd=tmp_path)
    assert (other.code, other.stderr) == (2, f"reviewer: error: {shards[0]} and shard-1.json "
                                             "are the same file: name each part once\n")


def test_a_whole_run_among_shards_is_named_before_the_cases_they_share(
        tmp_path: Path) -> None:
    """The whole run holds the shards' cases too: that it is a whole run is the answer."""
    shards = two_shards(tmp_path)
    whole = result([part("alpha", None).cases[0], part("beta", None).cases[0]], repeat=1)
    results.write(whole, tmp_path / "all.json")
    got = run_cli("eval", "merge", str(tmp_path / "all.json"), *shards, "-o",
                  str(tmp_path / "m.json"))
    assert (got.code, got.stderr) == (2, f"reviewer: error: {tmp_path / 'all.json'} is a whole "
                                         f"run, {shards[0]} shard 1/2: merge the shards of one "
                                         "run, and only them\n")
    assert not (tmp_path / "m.json").exists()
