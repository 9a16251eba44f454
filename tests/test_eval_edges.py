"""The eval commands' edges a new user meets, through the real CLI: a folder that is no
corpus, a shard that holds no case, two results that do not differ."""

from __future__ import annotations

from pathlib import Path

from reviewer.eval.results import EvalResult
from tests.conftest import run_cli
from tests.openai_standin import FakeOpenAI
from tests.test_eval_run import corpus_of_three, eval_run, script


def test_a_folder_that_is_no_corpus_is_named_so(tmp_path: Path, llm: FakeOpenAI) -> None:
    """A project folder (subfolders, none a case) is not taken for a folder of cases, whose
    first subfolder would then be 'missing meta.yaml'."""
    project = tmp_path / "project"
    for sub in ("src", "docs"):
        (project / sub).mkdir(parents=True)
        (project / sub / "x.py").write_text("")
    result = run_cli("eval", "run", str(project), "--base-url", llm.url, "--model", "m",
                     "-o", str(tmp_path / "r.json"))
    assert (result.code, result.stdout, result.stderr) == (
        2, "", f"reviewer: error: {project} is not an eval corpus: expected a folder holding "
               "cases/ (see eval/README.md)\n")
    # Its cases folder given itself is still a corpus.
    script(llm)
    assert eval_run(corpus_of_three(tmp_path) / "cases", llm, tmp_path / "r.json").overall \
        .runs == 3


def test_a_shard_of_no_case_says_so_in_one_line(tmp_path: Path, llm: FakeOpenAI) -> None:
    """Part 4 of 5 of three cases holds none: one line, not four empty tables; its JSON is
    still written, for eval merge to join with the others."""
    out = tmp_path / "r.json"
    result = run_cli("eval", "run", str(corpus_of_three(tmp_path)), "--base-url", llm.url,
                     "--model", "m", "--shard", "4/5", "-o", str(out))
    assert (result.code, result.stdout) == (0, "this shard holds no case (3 cases, 4/5)\n"
                                               f"results written to {out}\n")
    got = EvalResult.model_validate_json(out.read_text())
    assert (got.cases, got.shard, got.overall.runs, llm.requests) == ([], "4/5", 0, [])


def test_compare_with_no_case_changed_says_so(tmp_path: Path, llm: FakeOpenAI) -> None:
    script(llm)
    eval_run(corpus_of_three(tmp_path), llm, tmp_path / "a.json")
    shown = run_cli("eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "a.json"))
    assert shown.code == 0, shown.stderr
    assert shown.stdout.endswith("\nno case changed\n")
    assert "cases that changed" not in shown.stdout
