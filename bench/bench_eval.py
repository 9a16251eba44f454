"""Eval benchmark: `reviewer eval run eval/` (the 50-case starter corpus) through the real CLI
against the model stand-in, which plays a llama.cpp server that refuses json_schema and answers
every request with an empty review after a fixed delay.

Run from the repository root: .venv/bin/python bench/bench_eval.py [--delay S] [--concurrency N]
It prints the wall time, the eval's own overhead per case (wall minus the model's delays, spread
over the slots), the model requests, context probes and refused formats: what one case costs
beyond the model, and that the server is asked about itself once per run, not once per case.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.*` imports, when run as bench/bench_eval.py
    sys.path.insert(0, str(ROOT))

from tests.openai_standin import FakeOpenAI, Reply, Served  # noqa: E402

ANSWER = json.dumps({"score": 90, "verdict": "approve", "summary": "Nothing to report.",
                     "findings": []})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per answer")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with FakeOpenAI(models=("m",), reject_formats={"json_schema"},
                    served=Served("llamacpp", context=8192)) as fake, \
            tempfile.TemporaryDirectory() as scratch:
        fake.responder = lambda body: Reply(content=ANSWER, delay=args.delay)
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "reviewer", "eval", "run", str(ROOT / "eval"),
             "--base-url", fake.url, "--model", "m", "--concurrency", str(args.concurrency),
             "--quiet", "-o", str(Path(scratch) / "r.json")],
            capture_output=True, text=True, cwd=ROOT, check=False)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            sys.exit(f"eval run failed ({proc.returncode}): {proc.stderr.strip()}")
        result: dict[str, Any] = json.loads((Path(scratch) / "r.json").read_text())
        _report(fake, result, wall, args.delay, args.concurrency)


def _report(fake: FakeOpenAI, result: dict[str, Any], wall: float, delay: float,
            slots: int) -> None:
    cases = len(result["cases"])
    formats = [(b.get("response_format") or {}).get("type") for b in fake.requests]
    answered = formats.count("json_object")
    model = answered * delay / slots
    print(f"{cases} cases, --concurrency {slots}, answers after {delay:g} s")
    print(f"wall {wall:.2f} s; model delays over the slots {model:.2f} s; "
          f"overhead {(wall - model) / cases * 1000:.0f} ms per case")
    print(f"model requests {len(fake.requests)} ({formats.count('json_schema')} refused "
          f"json_schema, {answered} answered); context probes {len(fake.probes)}")


if __name__ == "__main__":
    main()
