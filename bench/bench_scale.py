"""Scale benchmark: the real CLI against the GitLab and model stand-ins, at 10, 100, 300 files.

Run from the repository root: make bench-scale, or .venv/bin/python bench/bench_scale.py
[--quick] [--small-budget N]. Each run is `python -m reviewer review` in a subprocess, posting
to a fresh merge request of the in-process GitLab stand-in; the model stand-in plays a vLLM
server with a 32k context whose every answer is an empty review after a fixed 0.5 s. It prints
per run: wall, model wait (review.json timings.model_s), overhead (wall - model wait), requests,
prompt bytes, fixed-part share, coverage and peak RSS; then speed-ups, start-up, a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.*` imports, when run as bench/bench_scale.py
    sys.path.insert(0, str(ROOT))

from tests import openai_standin  # noqa: E402
from tests.gitlab_standin import FakeGitLab  # noqa: E402
from tests.openai_standin import FakeOpenAI, Reply, Served  # noqa: E402

TOKEN, API_KEY, MODEL = "glpat-BenchToken0001", "sk-BenchModelKey0001", "test-model"
DELAY = 0.5  # seconds the model takes for every answer
DETECTED = "32k (detected)"  # the budget column of runs without --max-input-tokens
ANSWER = json.dumps({"score": 90, "verdict": "approve", "summary": "Nothing to report.",
                     "findings": []})
HUNKS, CONTEXT, REMOVED, ADDED = 4, 3, 6, 12  # 4 x 18 = 72 changed lines per file
NOUNS = ("order", "invoice", "customer", "session", "report", "cart", "payment", "shipment",
         "account", "ledger", "coupon", "review", "address", "refund", "catalog", "stock")
CODE = (
    "def {verb}_{noun}(db, {noun}_id: int, limit: int = {n}) -> list[{Noun}]:",
    "    rows = db.query({Noun}).filter({Noun}.id == {noun}_id).limit(limit).all()",
    "    if not rows:",
    "        raise NotFoundError(f\"no {noun} with id {{{noun}_id}}\")",
    "    total = sum(row.amount for row in rows if row.status == \"{state}\")",
    "    log.info(\"%d {noun} rows loaded for %s\", len(rows), {noun}_id)",
    "    return [{Noun}.from_row(row) for row in rows[:{n}]]",
    "    for index, row in enumerate(rows):",
    "        cache[({noun}_id, index)] = row.{field}",
    "        warnings.warn(\"{noun} total above the expected bound\", stacklevel=2)",
    "    \"\"\"Raised when a {noun} cannot be {verb}ed.\"\"\"",
    "    timeout = timedelta(seconds={n})",
    "    return await client.post(f\"/api/{noun}s/{{{noun}_id}}/{verb}\", json=result)",
)
VERBS = ("load", "save", "check", "merge", "export", "sync", "close", "price")
FIELDS = ("amount", "created_at", "owner_id", "currency", "status", "weight")
STATES = ("open", "paid", "void", "pending")


def code_line(rng: random.Random) -> str:
    noun, verb = rng.choice(NOUNS), rng.choice(VERBS)
    return rng.choice(CODE).format(noun=noun, Noun=noun.title(), verb=verb, Verb=verb.title(),
                                   n=rng.randint(2, 500), field=rng.choice(FIELDS),
                                   state=rng.choice(STATES))


def file_diff(index: int) -> dict[str, Any]:
    """One modified file: HUNKS hunks of CONTEXT, REMOVED, ADDED, CONTEXT lines (deterministic)."""
    noun = NOUNS[index % len(NOUNS)]
    path = (f"tests/{noun}/test_{noun}_{index}.py" if index % 6 == 5
            else f"src/{noun}/{noun}_{index}.py")
    rng, hunks, shift = random.Random(f"bench-{index}"), [], 0  # noqa: S311 (not for secrets)
    for h in range(HUNKS):
        old = 10 + h * 60
        rows = [" " + code_line(rng) for _ in range(CONTEXT)]
        rows += ["-" + code_line(rng) for _ in range(REMOVED)]
        rows += ["+" + code_line(rng) for _ in range(ADDED)]
        rows += [" " + code_line(rng) for _ in range(CONTEXT)]
        span_old, span_new = 2 * CONTEXT + REMOVED, 2 * CONTEXT + ADDED
        hunks.append(f"@@ -{old},{span_old} +{old + shift},{span_new} @@ def {noun}_{h}():\n"
                     + "\n".join(rows) + "\n")
        shift += ADDED - REMOVED
    return {"old_path": path, "new_path": path, "diff": "".join(hunks)}


def message_texts(body: dict[str, Any]) -> list[str]:
    """Each message's content as text (a list of content parts joined)."""
    messages = body.get("messages") or []
    return [openai_standin._text(m.get("content")) for m in messages if isinstance(m, dict)]


OPEN_MARKER = re.compile(r"^<(mr-data-[^<>\s]+)>$", re.MULTILINE)
FILE_HEADER = re.compile(r"^File: ", re.MULTILINE)


def diff_bytes(text: str) -> int:
    """UTF-8 bytes of the file sections of one message; the rest of every message is fixed part.

    The file sections start at the first line beginning with "File: " after the message's
    opening data marker (<mr-data-...> alone on a line; the title and description come before
    the first file, and the bench's description has no line starting with "File: "). They end
    at the last closing marker of that same tag: the reviewer breaks its tag wherever it occurs
    inside the data, so an earlier "</tag>" or one with another tag is data. Without an opening
    marker the sections start at the first "File: " line and end at the last "</mr-data-";
    without a closing marker, at the message's end. No "File: " line (the system prompt only
    quotes "File:" mid-line; a repair turn): no diff.
    """
    opening = OPEN_MARKER.search(text)
    first = FILE_HEADER.search(text, opening.end() if opening else 0)
    if first is None:
        return 0
    end = text.rfind(f"</{opening.group(1)}>" if opening else "</mr-data-")
    end = len(text) if end < first.start() else end
    return len(text[first.start():end].encode())


@dataclass(frozen=True)
class Run:
    files: int
    concurrency: int
    budget: str
    code: int
    wall: float
    model: float
    requests: int
    prompt_bytes: int
    diff_bytes: int
    coverage: dict[str, Any]
    rss_mb: float


def clean_env() -> dict[str, str]:
    """This environment without anything that would configure the reviewer by accident."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CI_", "REVIEWER_", "OPENAI_", "GITLAB_", "GIT_"))
           and k not in ("CI", "GITLAB_CI")}
    return env | {"COLUMNS": "200"}


def measured(args: list[str], cwd: Path) -> tuple[int, float, float, str]:
    """Exit code, wall seconds, peak RSS in MB and stderr of the reviewer run as a user runs it."""
    with (cwd / "stderr.txt").open("w+", encoding="utf-8") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=clean_env(),
                                cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        return proc.returncode, wall, usage.ru_maxrss / 1024, err.read()  # KiB on Linux


class Bench:
    """The stand-ins, one merge request per run (each run posts its review as users' do)."""

    def __init__(self, gitlab: FakeGitLab, model: FakeOpenAI, workdir: Path) -> None:
        self.gitlab, self.model, self.workdir = gitlab, model, workdir
        gitlab.add_user("reviewer-bot", TOKEN)
        self.project = gitlab.add_project("group/app")["id"]
        self.iid = 0

    def run(self, files: int, concurrency: int, budget: int | None) -> Run:
        self.iid += 1
        self.gitlab.add_merge_request(self.project, iid=self.iid, title=f"Bench: {files} files",
                                      description="A synthetic change for the scale benchmark.",
                                      files=[file_diff(i) for i in range(files)])
        self.model.requests.clear()
        out = self.workdir / f"review-{self.iid}.json"
        args = [sys.executable, "-m", "reviewer", "review", "--gitlab-url", self.gitlab.url,
                "--token", TOKEN, "--project", str(self.project), "--mr", str(self.iid),
                "--base-url", self.model.url, "--api-key", API_KEY, "--model", MODEL,
                "--output", str(out), "--concurrency", str(concurrency)]
        args += ["--max-input-tokens", str(budget)] if budget else []
        code, wall, rss, err = measured(args, self.workdir)
        if not out.exists():
            raise SystemExit(f"run of {files} files at c={concurrency} wrote no review "
                             f"(exit {code}):\n{err}")
        review = json.loads(out.read_text(encoding="utf-8"))
        texts = [t for body in self.model.requests for t in message_texts(body)]
        return Run(files, concurrency, str(budget) if budget else DETECTED, code, wall,
                   float(review["timings"]["model_s"]), len(self.model.requests),
                   sum(len(t.encode()) for t in texts), sum(map(diff_bytes, texts)),
                   review["coverage"], rss)


def startup(runs: int = 5) -> dict[str, float]:
    """Median wall seconds of the CLI's quick commands, over runs each."""
    script = Path(sys.executable).parent / "reviewer"  # the console script beside this python
    commands = {"python -m reviewer --version": [sys.executable, "-m", "reviewer", "--version"],
                "reviewer --help": [str(script), "--help"] if script.exists() else
                [sys.executable, "-m", "reviewer", "--help"]}
    medians = {}
    for label, command in commands.items():
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=clean_env())
            samples.append(time.perf_counter() - start)
        medians[label] = statistics.median(samples)
    return medians


def rows(runs: list[Run]) -> list[list[str]]:
    header = ["files", "conc", "budget", "wall s", "model s", "overhead s", "requests",
              "prompt kB", "fixed %", "files reviewed", "lines reviewed", "peak RSS MB", "exit"]
    table = [header]
    for r in runs:
        c, fixed = r.coverage, 1 - r.diff_bytes / max(r.prompt_bytes, 1)
        lines = c.get("lines_reviewed", 0) / max(c.get("lines_total", 0), 1)
        table.append([str(r.files), str(r.concurrency), r.budget, f"{r.wall:.2f}",
                      f"{r.model:.2f}", f"{r.wall - r.model:.2f}", str(r.requests),
                      f"{r.prompt_bytes / 1000:,.0f}", f"{fixed:.1%}",
                      f"{c.get('files_reviewed', 0)}/{c.get('files_total', 0)}",
                      f"{c.get('lines_reviewed', 0)}/{c.get('lines_total', 0)} "
                      f"({lines:.1%})", f"{r.rss_mb:.0f}", str(r.code)])
    return table


def plain(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True))
                     for row in table)


def markdown(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---:|" * len(table[0])]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in table[1:]])


def speedups(runs: list[Run], budget: str) -> list[str]:
    """Per MR size, for one budget: c=1 over c=4 and c=8, of the wall time and of the model
    phase alone (the part concurrency can shorten; the overhead around it stays)."""
    by = {(r.files, r.concurrency): r for r in runs if r.budget == budget}
    lines = []
    for files in sorted({f for f, c in by if c == 1}):
        one = by[(files, 1)]
        lines += [f"{files} files: " + ", ".join(
            f"c={c} {one.wall / by[(files, c)].wall:.2f}x wall "
            f"({one.model / by[(files, c)].model:.2f}x model phase)"
            for c in (4, 8) if (files, c) in by)]
    return lines


def collect(sizes: tuple[int, ...], small_budget: int) -> list[Run]:
    """Every run: the detected 32k context, then the small budget; concurrency 1, 4, 8."""
    runs = []
    model = FakeOpenAI(served=Served(kind="vllm", context=32768))
    model.responder = lambda body: Reply(content=ANSWER, delay=DELAY)
    with tempfile.TemporaryDirectory() as tmp, FakeGitLab() as gitlab, model:
        bench = Bench(gitlab, model, Path(tmp))
        for budget, files, concurrency in itertools.product((None, small_budget), sizes,
                                                            (1, 4, 8)):
            runs.append(bench.run(files, concurrency, budget))
            print(f"  {files} files, c={concurrency}, budget {runs[-1].budget}: "
                  f"{runs[-1].wall:.2f} s", file=sys.stderr, flush=True)
    return runs


def report(runs: list[Run], small_budget: int) -> None:
    print(f"\nmodel delay {DELAY} s per request; vLLM stand-in reporting max_model_len 32768; "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(plain(rows(runs)))
    for budget, label in ((str(small_budget), f"--max-input-tokens {small_budget}"),
                          (DETECTED, "the detected 32k context")):
        print(f"\nspeed-up vs c=1 at {label}:")
        print("\n".join("  " + line for line in speedups(runs, budget)))
    print("\nstart-up (median of 5):")
    for command, seconds in startup().items():
        print(f"  {command}: {seconds:.3f} s")
    print("\n" + markdown(rows(runs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 and 100 files only")
    parser.add_argument("--small-budget", type=int, default=12000,
                        help="--max-input-tokens of the many-requests runs (default: 12000)")
    options = parser.parse_args()
    began = time.perf_counter()
    runs = collect((10, 100) if options.quick else (10, 100, 300), options.small_budget)
    report(runs, options.small_budget)
    print(f"\nbench took {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
