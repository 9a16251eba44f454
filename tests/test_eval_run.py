"""`reviewer eval run | merge | compare` end to end through the real CLI, the model stand-in
scripted per case so that every figure is known in advance."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from reviewer.eval.results import EvalResult
from tests.conftest import answer, clean_env, finding, run_cli
from tests.openai_standin import FakeOpenAI, Reply, Served


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                           "-c", "init.defaultBranch=main", *args], cwd=repo, check=True,
                          capture_output=True).stdout


def add_case(corpus: Path, name: str, path: str, before: str, after: str, meta: str,
             defects: str) -> None:
    """A case whose change.diff is what git prints for before -> after."""
    work = corpus.parent / f"work-{name}"
    work.mkdir()
    git(work, "init", "-q")
    (work / path).write_text(before)
    git(work, "add", ".")
    git(work, "commit", "-qm", "base")
    (work / path).write_text(after)
    folder = corpus / "cases" / name
    folder.mkdir(parents=True)
    (folder / "change.diff").write_bytes(git(work, "diff"))
    (folder / "meta.yaml").write_text(meta)
    (folder / "expected.yaml").write_text(defects)


def corpus_of_three(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    add_case(corpus, "alpha", "alpha_calc.py",
             "def last(xs):\n    return xs[-1]\n",
             "def last(xs):\n    n = len(xs)\n    return xs[n]\n",
             "title: off by one\nlanguage: python\nclean: false\n",
             "defects:\n  - {path: alpha_calc.py, lines: [3, 3], rule: COR-005, "
             "severity: major, what: indexes past the end}\n")
    add_case(corpus, "beta", "beta_query.go",
             "package q\n\nfunc Q(db DB, id string) {\n}\n",
             "package q\n\nfunc Q(db DB, id string) {\n"
             "\tdb.Exec(\"DELETE FROM t WHERE id=\" + id)\n}\n",
             "title: sql\nlanguage: go\nclean: false\n",
             "defects:\n  - {path: beta_query.go, lines: [4, 4], rule: SEC-001, "
             "severity: critical, what: SQL built from input}\n")
    add_case(corpus, "gamma", "gamma_view.js",
             "function f(a) {\n  return a;\n}\n",
             "function view(a) {\n  return a;\n}\n",
             "title: rename\nlanguage: javascript\nclean: true\n", "defects: []\n")
    return corpus


def script(llm: FakeOpenAI) -> None:
    """alpha: found one line off, plus an info note; beta: a major far from the defect (a
    false positive, off the diff) and the defect missed; gamma: a minor note (noise)."""
    answers = {
        "alpha_calc.py": answer(findings=[
            finding("alpha_calc.py", 2, "major", rule="COR-005"),
            finding("alpha_calc.py", 1, "info", rule="RDB-001")]),
        "beta_query.go": answer(findings=[finding("beta_query.go", 40, "major",
                                                  rule="COR-001")]),
        "gamma_view.js": answer(findings=[finding("gamma_view.js", 1, "minor",
                                                  rule="RDB-001")]),
    }

    def respond(body: dict[str, Any]) -> Reply:
        text = body["messages"][-1]["content"]
        hits = [name for name in answers if f"{name}" in text]
        assert len(hits) == 1, hits
        return Reply(content=answers[hits[0]], prompt_tokens=100, completion_tokens=20)
    llm.responder = respond


def eval_run(corpus: Path, llm: FakeOpenAI, out: Path, *args: str,
             env: dict[str, str] | None = None, expect_recall: str | None = "0.50"
             ) -> EvalResult:
    result = run_cli("eval", "run", str(corpus), "--base-url", llm.url, "--model", "m",
                     "-o", str(out), *args, env=env)
    assert result.code == 0, result.stderr
    assert "overall" in result.stdout
    assert expect_recall is None or f"recall {expect_recall}" in result.stdout
    return EvalResult.model_validate_json(out.read_text())


def test_three_cases_give_the_figures_they_were_scripted_for(tmp_path: Path,
                                                              llm: FakeOpenAI) -> None:
    script(llm)
    out = tmp_path / "results.json"
    got = eval_run(corpus_of_three(tmp_path), llm, out)
    data = json.loads(out.read_text())
    assert {"overall", "cases", "by_rule", "model", "spec", "tool_version"} <= set(data)
    overall = got.overall
    assert (overall.runs, overall.defects, overall.matched, overall.false_positives,
            overall.noise, overall.findings) == (3, 2, 1, 1, 2, 4)
    assert (overall.recall, overall.precision, overall.f1) == (0.5, 0.5, 0.5)
    assert (overall.rule_accuracy, overall.placement_rate) == (1.0, 0.75)
    assert (overall.valid_json_first_try, overall.repairs, overall.errors) == (1.0, 0, 0)
    assert overall.median_tokens == 120
    cases = {c.id: c.figures for c in got.cases}
    assert (cases["alpha"].recall, cases["beta"].recall, cases["gamma"].recall) == \
        (1.0, 0.0, None)
    assert (cases["beta"].false_positives, cases["gamma"].noise) == (1, 1)
    assert got.by_rule["SEC-001"].recall == 0.0 and got.by_rule["COR-001"].precision == 0.0
    assert got.model.name == "m" and "COR-005" in got.spec.rules and got.shard is None


def test_shards_merge_into_the_result_of_one_run(tmp_path: Path, llm: FakeOpenAI) -> None:
    script(llm)
    corpus = corpus_of_three(tmp_path)
    whole = eval_run(corpus, llm, tmp_path / "all.json")
    first = run_cli("eval", "run", str(corpus), "--base-url", llm.url, "--model", "m",
                    "--shard", "1/2", "-o", str(tmp_path / "1.json"))
    assert first.code == 0, first.stderr
    # The second part from GitLab's parallel: N variables.
    second = run_cli("eval", "run", str(corpus), "--base-url", llm.url, "--model", "m",
                     "-o", str(tmp_path / "2.json"),
                     env=clean_env(CI_NODE_INDEX="2", CI_NODE_TOTAL="2", CI="true"))
    assert second.code == 0, second.stderr
    assert "reviewer: case 1/1 beta: 1 finding(s)" in second.stderr  # a CI log's progress
    assert "case 1/" not in first.stderr  # neither a terminal nor CI: no progress
    parts = [EvalResult.model_validate_json((tmp_path / f"{n}.json").read_text())
             for n in (1, 2)]
    assert [[c.id for c in p.cases] for p in parts] == [["alpha", "gamma"], ["beta"]]
    assert parts[0].shard == "1/2"
    merged = run_cli("eval", "merge", str(tmp_path / "2.json"), str(tmp_path / "1.json"),
                     "-o", str(tmp_path / "merged.json"))
    assert merged.code == 0, merged.stderr
    joined = EvalResult.model_validate_json((tmp_path / "merged.json").read_text())
    assert _without_timing(joined) == _without_timing(whole)
    again = run_cli("eval", "merge", str(tmp_path / "1.json"), str(tmp_path / "1.json"),
                    "-o", str(tmp_path / "again.json"))
    assert (again.code, again.stderr) == (2, f"reviewer: error: {tmp_path / '1.json'} is "
                                             "given twice: name each part once\n")


def _without_timing(result: EvalResult) -> dict[str, Any]:
    data = result.model_dump(mode="json")
    for figures in [data["overall"], *data["by_language"].values(),
                    *(c["figures"] for c in data["cases"])]:
        figures.pop("median_latency_s")
    for case in data["cases"]:
        for run in case["runs"]:
            run.pop("latency_s")
    return data


def test_repeat_and_compare(tmp_path: Path, llm: FakeOpenAI) -> None:
    script(llm)
    corpus = corpus_of_three(tmp_path)
    twice = eval_run(corpus, llm, tmp_path / "a.json", "--repeat", "2", "--concurrency", "2")
    assert twice.overall.runs == 6 and twice.overall.defects == 4
    assert twice.spread is not None and twice.spread.recall == 0.0
    llm.responder = lambda body: Reply(content=answer(findings=[]))
    none = run_cli("eval", "run", str(corpus), "--base-url", llm.url, "--model", "m",
                   "--repeat", "2", "-o", str(tmp_path / "b.json"))
    assert none.code == 0, none.stderr
    shown = run_cli("eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert shown.code == 0, shown.stderr
    recall = next(line for line in shown.stdout.splitlines() if line.startswith("│ recall"))
    assert "0.50" in recall and "0.00" in recall and "-0.50" in recall
    assert "beyond" in recall
    cor = next(line for line in shown.stdout.splitlines() if line.startswith("│ COR-005"))
    assert [cell.strip() for cell in cor.split("│")[1:7]] == \
        ["COR-005", "1.00", "0.00", "-1.00", "beyond", "0→0"]
    changed = [line.split("│")[1].strip() for line in shown.stdout.split("cases that changed")[1]
               .splitlines() if line.startswith("│ ")]
    assert changed == ["alpha", "beta", "gamma"]  # each lost its findings


def test_an_80_column_terminal_gets_whole_cells(tmp_path: Path, llm: FakeOpenAI) -> None:
    script(llm)
    result = run_cli("eval", "run", str(corpus_of_three(tmp_path)), "--base-url", llm.url,
                     "--model", "m", "--repeat", "2", "-o", str(tmp_path / "r.json"),
                     env=clean_env(COLUMNS="80"))
    assert result.code == 0, result.stderr
    assert "…" not in result.stdout
    shown = result.stdout.split("results written to")[0]  # then a long temporary path
    assert max(len(line) for line in shown.splitlines()) <= 80
    # Counts per run: alpha's one defect, found each time, though reviewed twice.
    alpha = next(line for line in result.stdout.splitlines() if line.startswith("│ alpha "))
    assert [cell.strip() for cell in alpha.split("│")[1:-1]][:5] == \
        ["alpha", "python", "1", "1", "0"]
    assert "median per run 120 tokens" in result.stdout


def test_bad_input_exits_2_with_one_line(tmp_path: Path, llm: FakeOpenAI) -> None:
    corpus = corpus_of_three(tmp_path)
    out = str(tmp_path / "r.json")
    for args, env, words in [
            (("--shard", "3/2"), {}, "--shard / REVIEWER_EVAL_SHARD: part 3 of 2 does not "
                                     "exist (1 <= I <= N)"),
            (("--shard", "x"), {}, "--shard / REVIEWER_EVAL_SHARD 'x': expected I/N, e.g. 2/4 "
                                   "(the second of four parts)"),
            # From the environment: --shard alone would send the user to a flag never given.
            ((), {"REVIEWER_EVAL_SHARD": "junk"}, "--shard / REVIEWER_EVAL_SHARD 'junk': "
                                                  "expected I/N, e.g. 2/4 (the second of four "
                                                  "parts)"),
            ((), {"CI_NODE_INDEX": "5", "CI_NODE_TOTAL": "4"},
             "CI_NODE_INDEX/CI_NODE_TOTAL: part 5 of 4 does not exist (1 <= I <= N)")]:
        result = run_cli("eval", "run", str(corpus), "--base-url", llm.url, "-o", out, *args,
                         env=clean_env(**env))
        assert (result.code, result.stderr) == (2, f"reviewer: error: {words}\n")
    (tmp_path / "junk.json").write_text("{}")
    result = run_cli("eval", "compare", str(tmp_path / "junk.json"), str(tmp_path / "junk.json"))
    assert result.code == 2 and "not an eval result" in result.stderr
    assert llm.requests == []


def test_a_spec_url_is_cloned_once_for_all_cases(tmp_path: Path, llm: FakeOpenAI) -> None:
    import shutil

    from reviewer.spec import bundled_dir
    from tests.git_http_standin import GitHTTP

    script(llm)
    source = tmp_path / "spec-src"
    shutil.copytree(bundled_dir(), source)
    git(source, "init", "-q")
    git(source, "add", ".")
    git(source, "commit", "-qm", "rules")
    with GitHTTP(tmp_path / "served", {"oauth2": "spec-token"}) as server:
        url = server.publish(source)
        got = eval_run(corpus_of_three(tmp_path), llm, tmp_path / "r.json", "--spec", url,
                       env=clean_env(REVIEWER_SPEC_TOKEN="spec-token"))
        clones = [r for r in server.requests if r.path.endswith("/info/refs") and
                  r.status == 200]
    assert len(clones) == 1
    assert got.spec.source == url and got.spec.commit and "COR-005" in got.spec.rules
    assert got.overall.recall == 0.5


def test_a_model_server_that_answers_nothing_fails_the_run(tmp_path: Path,
                                                          llm: FakeOpenAI) -> None:
    corpus = corpus_of_three(tmp_path)
    llm.responder = lambda body: Reply(status=401, error="bad key")
    out = tmp_path / "r.json"
    result = run_cli("eval", "run", str(corpus), "--base-url", llm.url, "--model", "m",
                     "--retries", "0", "-o", str(out))
    assert result.code == 1 and not out.exists()
    assert result.stderr.startswith("reviewer: error: no case could be reviewed: ")
    assert len(result.stderr.strip().splitlines()) == 1 and "…" not in result.stderr


def test_cases_share_one_context_probe_and_one_step_down(tmp_path: Path) -> None:
    """A server that refuses json_schema is stepped down once for the whole eval, not once a
    case, and its context is asked once: the refusal is not the model's failure."""
    with FakeOpenAI(models=(), reject_formats={"json_schema"},
                    served=Served("llamacpp", context=16384)) as fake:
        script(fake)
        got = eval_run(corpus_of_three(tmp_path), fake, tmp_path / "r.json", "--repeat", "2",
                       "--concurrency", "1")
    formats = [body.get("response_format", {}).get("type") for body in fake.requests]
    assert formats == ["json_schema"] + ["json_object"] * 6
    assert fake.probes.count("GET /props") == 1
    assert got.overall.valid_json_first_try == 1.0 and got.overall.repairs == 0


def multi_file_case(corpus: Path, files: int) -> None:
    """A case whose change adds `files` files of 60 lines: one request each at 2,000 tokens."""
    work = corpus.parent / "work-many"
    work.mkdir()
    git(work, "init", "-q")
    git(work, "commit", "-q", "--allow-empty", "-m", "base")
    for n in range(files):
        (work / f"m{n}.py").write_text("".join(f"value_{i} = compute({i})\n" for i in range(60)))
    git(work, "add", "-N", ".")
    folder = corpus / "cases" / "many"
    folder.mkdir(parents=True)
    (folder / "change.diff").write_bytes(git(work, "diff"))
    (folder / "meta.yaml").write_text("title: many files\nlanguage: python\nclean: true\n")
    (folder / "expected.yaml").write_text("defects: []\n")


def test_at_most_concurrency_model_requests_in_flight(tmp_path: Path, llm: FakeOpenAI) -> None:
    """--concurrency bounds the requests in flight over every case, not each case's own: two
    cases of three requests each, at --concurrency 2, never have more than two at once."""
    from tests.test_concurrency import slow_answers
    from tests.test_coverage import spec_with_one_rule

    corpus = tmp_path / "corpus"
    multi_file_case(corpus, 3)
    state = slow_answers(llm, 0.3)
    got = eval_run(corpus, llm, tmp_path / "r.json", "--repeat", "2", "--concurrency", "2",
                   "--max-input-tokens", "2000", "--spec", str(spec_with_one_rule(tmp_path)),
                   expect_recall=None)
    assert [r.requests for c in got.cases for r in c.runs] == [3, 3]
    assert state["peak"] == 2


def test_eval_flags_can_come_from_the_environment(tmp_path: Path, llm: FakeOpenAI) -> None:
    script(llm)
    out = tmp_path / "from-env.json"
    result = run_cli("eval", "run", str(corpus_of_three(tmp_path)), env=clean_env(
        REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="m", REVIEWER_EVAL_REPEAT="2",
        REVIEWER_EVAL_SHARD="2/2", REVIEWER_EVAL_OUTPUT=str(out), REVIEWER_EVAL_TOLERANCE="0"))
    assert result.code == 0, result.stderr
    got = EvalResult.model_validate_json(out.read_text())
    assert ([c.id for c in got.cases], got.repeat, got.shard, got.tolerance) == \
        (["beta"], 2, "2/2", 0)
    assert got.overall.runs == 2


def test_a_case_no_finding_could_match_stops_the_run_before_any_request(
        tmp_path: Path, llm: FakeOpenAI) -> None:
    corpus = corpus_of_three(tmp_path)
    expected = corpus / "cases" / "alpha" / "expected.yaml"
    expected.write_text(expected.read_text().replace("[3, 3]", "[30, 31]"))
    result = run_cli("eval", "run", str(corpus), "--base-url", llm.url, "--model", "m")
    assert result.code == 2 and llm.requests == []
    assert result.stderr == ("reviewer: error: alpha: defect 1 (alpha_calc.py:30): lines must "
                             "be added or context lines of the diff: fix the case "
                             "(eval/README.md)\n")


def test_rules_the_spec_lacks_are_named_once(tmp_path: Path, llm: FakeOpenAI) -> None:
    script(llm)
    corpus = corpus_of_three(tmp_path)
    for case in ("alpha", "beta"):
        expected = corpus / "cases" / case / "expected.yaml"
        expected.write_text(expected.read_text().replace("rule: ", "rule: TEAM-"))
    result = run_cli("eval", "run", str(corpus), "--base-url", llm.url, "--model", "m",
                     "-o", str(tmp_path / "r.json"))
    assert result.code == 0, result.stderr
    assert result.stderr.count("the corpus names rule(s) TEAM-COR-005, TEAM-SEC-001 that "
                               "spec bundled does not have") == 1


def test_on_a_terminal_a_bar_counts_the_cases(tmp_path: Path, llm: FakeOpenAI) -> None:
    import sys

    from tests.test_progress import on_a_terminal

    script(llm)
    code, stdout, terminal = on_a_terminal(
        [sys.executable, "-m", "reviewer", "eval", "run", str(corpus_of_three(tmp_path)),
         "--base-url", llm.url, "--model", "m", "-o", str(tmp_path / "r.json")],
        clean_env(TERM="xterm", COLUMNS="120"))
    assert code == 0, terminal
    assert "3/3" in terminal and "0:00:0" in terminal  # cases done of all, time elapsed
    assert "3/3" not in stdout and "overall" in stdout  # the bar on stderr, the tables on stdout
