"""Speed of the pure core and of start-up, on a synthetic large merge request.

Run: make bench (or python bench/bench_pipeline.py). Prints one line per figure.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from reviewer import check, diff, inline, prompt, secrets, spec
from reviewer.model import Finding

FILES, HUNKS, LINES = 300, 4, 12
T = TypeVar("T")


def synthetic_changes() -> list[diff.Change]:
    changes = []
    for f in range(FILES):
        body = []
        for h in range(HUNKS):
            start = 1 + h * 40
            rows = [f" ctx {f} {h} {i}" for i in range(3)]
            rows += [f"-old {f} {h} {i}" for i in range(LINES // 2)]
            rows += [f"+new {f} {h} {i}" for i in range(LINES)]
            rows += [f" ctx {f} {h} end{i}" for i in range(3)]
            header = f"@@ -{start},{6 + LINES // 2} +{start},{6 + LINES} @@\n"
            body.append(header + "\n".join(rows))
        changes.append(diff.Change(f"src/m{f}.py", f"src/m{f}.py", "\n".join(body) + "\n"))
    return changes


def timed(label: str, action: Callable[[], T], runs: int = 5) -> T:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        result = action()
        samples.append(time.perf_counter() - start)
    print(f"{label}: median {statistics.median(samples) * 1000:.1f} ms over {runs} runs")
    return result


def main() -> None:
    changes = synthetic_changes()
    changed = FILES * HUNKS * (LINES + LINES // 2)
    print(f"synthetic MR: {FILES} files, {FILES * HUNKS} hunks, {changed} changed lines")
    files, _ = timed("parse + filter (diff.select)", lambda: diff.select(changes))
    redaction = timed("secrets.redact_files (every line scanned)",
                      lambda: secrets.redact_files(files, "SEC-002"), runs=3)
    print(f"  -> {redaction.redacted} value(s) redacted")
    rules = spec.load(None, None, None, lambda url: None)
    ctx = prompt.Context("Bench", "A synthetic change.")
    requests, _ = timed("prompt.build at 6000 tokens",
                        lambda: prompt.build(files, rules, ctx, 6000, "mr-data-bench"))
    print(f"  -> {len(requests)} requests")
    by_path = {f.path: f for f in files}
    findings = [Finding(path=f"src/m{i % FILES}.py", line=5 + i % 30, severity="minor",
                        title="t", message="m") for i in range(1000)]
    placed = timed("check.place x1000 findings",
                   lambda: [check.place(f, by_path) for f in findings])
    refs = inline.Refs("a" * 40, "b" * 40, "c" * 40)
    positions = timed("inline.plan + positions for 1000 findings", lambda: [
        inline.position(f, by_path[f.path], refs)
        for f in inline.plan(placed, [], 1000, enabled=True).post])
    print(f"  -> {len(positions)} distinct placed findings get a position")
    timed("CLI start-up (reviewer --version)", lambda: subprocess.run(
        [sys.executable, "-m", "reviewer", "--version"], check=True, capture_output=True))
    timed("import of the review pipeline", lambda: subprocess.run(
        [sys.executable, "-c", "import reviewer.review"], check=True, capture_output=True))


if __name__ == "__main__":
    main()
