"""`reviewer eval run | merge | compare`: the command line of reviewer/eval/.

Errors become exit codes through cli.py's guard, as for every command.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reviewer.exits import guard, log_to_stderr

if TYPE_CHECKING:
    from reviewer.config import Settings
    from reviewer.eval.results import CaseRun, EvalResult

eval_app = typer.Typer(no_args_is_help=True, help="Measure a model and a spec on a labelled "
                       "corpus (eval/README.md).")
MODEL, RUN = "Model", "Eval"
DEFAULT_OUTPUT = Path("eval-results.json")


def _opt(help_text: str, env: str | None, panel: str, *names: str) -> Any:
    shown = f"{help_text} (env: {env})" if env else help_text
    return typer.Option(*names, help=shown, rich_help_panel=panel, show_default=False)


@eval_app.command("run")
def run(
    corpus: Annotated[Path, typer.Argument(help="The folder holding cases/ (e.g. eval/)")],
    base_url: Annotated[str | None, _opt("OpenAI-compatible API URL.", "REVIEWER_BASE_URL, "
                                         "OPENAI_BASE_URL", MODEL, "--base-url")] = None,
    api_key: Annotated[str | None, _opt("API key for the model server.",
                                        "REVIEWER_API_KEY, OPENAI_API_KEY", MODEL,
                                        "--api-key")] = None,
    model: Annotated[str | None, _opt("Model name.", "REVIEWER_MODEL", MODEL, "--model")] = None,
    max_output_tokens: Annotated[int | None, _opt("Most tokens per answer.",
                                                  "REVIEWER_MAX_OUTPUT_TOKENS", MODEL,
                                                  "--max-output-tokens")] = None,
    max_input_tokens: Annotated[int | None, _opt("Most prompt tokens per request.",
                                                 "REVIEWER_MAX_INPUT_TOKENS", MODEL,
                                                 "--max-input-tokens")] = None,
    timeout: Annotated[str | None, _opt("Seconds to wait for each answer.",
                                        "REVIEWER_TIMEOUT", MODEL, "--timeout")] = None,
    concurrency: Annotated[int | None, _opt("Cases reviewed at once (default: 4).",
                                            "REVIEWER_CONCURRENCY", MODEL,
                                            "--concurrency")] = None,
    retries: Annotated[int | None, _opt("Retries of a call that failed for a passing reason.",
                                        "REVIEWER_RETRIES", MODEL, "--retries")] = None,
    redact: Annotated[bool | None, _opt("Replace likely secrets before sending (default: on).",
                                        "REVIEWER_REDACT", MODEL, "--redact/--no-redact")] = None,
    spec: Annotated[str | None, _opt("Rules: a directory or git URL (default: bundled).",
                                     "REVIEWER_SPEC", MODEL, "--spec")] = None,
    spec_ref: Annotated[str | None, _opt("Branch, tag or commit of a spec git URL.",
                                         "REVIEWER_SPEC_REF", MODEL, "--spec-ref")] = None,
    spec_dir: Annotated[str | None, _opt("Folder of the rules inside the spec.",
                                         "REVIEWER_SPEC_DIR", MODEL, "--spec-dir")] = None,
    repeat: Annotated[int, typer.Option("--repeat", min=1, rich_help_panel=RUN,
                                        envvar="REVIEWER_EVAL_REPEAT",
                                        help="Review each case N times (variance).")] = 1,
    tolerance: Annotated[int, typer.Option("--tolerance", min=0, rich_help_panel=RUN,
                                           envvar="REVIEWER_EVAL_TOLERANCE",
                                           help="Most lines between a finding and the defect "
                                           "it matches.")] = 3,
    shard: Annotated[str | None, typer.Option("--shard", rich_help_panel=RUN, show_default=False,
                                              envvar="REVIEWER_EVAL_SHARD",
                                              help="Run part I of N (default: CI_NODE_INDEX/"
                                              "CI_NODE_TOTAL, a job's parallel: N).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", rich_help_panel=RUN,
                                         envvar="REVIEWER_EVAL_OUTPUT",
                                         help="Where to write the results JSON.")]
    = DEFAULT_OUTPUT,
    quiet: Annotated[bool | None, _opt("No progress bar.", "REVIEWER_QUIET", RUN, "--quiet",
                                       "-q")] = None,
    verbose: Annotated[bool | None, _opt("Tracebacks and each step's log.", "REVIEWER_VERBOSE",
                                         RUN, "--verbose", "-v")] = None,
) -> None:
    """Review every case of CORPUS and measure the findings against its defects."""
    from reviewer.config import load_settings

    flags = {k: v for k, v in locals().items() if k not in (
        "corpus", "repeat", "tolerance", "shard", "output", "load_settings")}
    settings = guard(lambda: load_settings(flags), verbose=bool(verbose))
    guard(lambda: _run(settings, corpus, repeat, tolerance, shard, output),
          verbose=settings.verbose, secrets=settings.secrets())


def _run(settings: Settings, corpus: Path, repeat: int, tolerance: int, shard: str | None,
         output: Path) -> None:

    from reviewer import publish
    from reviewer.eval import corpus as cases_of
    from reviewer.eval import results
    from reviewer.eval.run import parse_shard
    from reviewer.eval.run import run as run_cases

    publish.check_writable(output, "--output")
    log_to_stderr(settings.verbose, settings.secrets(), _Once())
    part = parse_shard(shard, settings)
    cases = cases_of.load(corpus)
    with _Progress(len(part.take(cases)) * repeat, settings.quiet, settings.in_ci) as bar:
        result = run_cases(settings, cases, repeat=repeat, tolerance=tolerance, shard=part,
                           advance=bar.advance)
    results.write(result, output)
    _show(result, len(cases))
    typer.echo(f"results written to {output}")


@eval_app.command("merge")
def merge(
    parts: Annotated[list[Path], typer.Argument(help="Results of eval run (the shards).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the joined "
                                         "results.")] = DEFAULT_OUTPUT,
) -> None:
    """Join the results of shards into the result one run would give."""
    def act() -> None:
        from reviewer import publish
        from reviewer.eval import results
        from reviewer.eval.merge import check_paths
        from reviewer.eval.merge import merge as join

        # As eval run does: a bad --output is named before any part is read.
        publish.check_writable(output, "--output")
        check_paths(parts, output)
        joined = join([(p, results.read(p)) for p in parts])
        results.write(joined, output)
        _show(joined)
        typer.echo(f"results written to {output}")
    guard(act, verbose=False)


@eval_app.command("compare")
def compare(
    a: Annotated[Path, typer.Argument(help="Results A (e.g. the current model or spec).")],
    b: Annotated[Path, typer.Argument(help="Results B (the candidate).")],
) -> None:
    """Two results side by side on the cases both hold, with B - A and counts per run; changes
    beyond the runs' spread are flagged."""
    def act() -> None:
        from rich.console import Console

        from reviewer.eval import results
        from reviewer.eval.compare import compare as side_by_side

        Console(soft_wrap=False).print(side_by_side(results.read(a), results.read(b),
                                                    (str(a), str(b))))
    guard(act, verbose=False)


def _show(result: EvalResult, corpus_size: int | None = None) -> None:
    from rich.console import Console

    from reviewer.eval.report import tables

    Console(soft_wrap=False).print(tables(result, corpus_size))


class _Once(logging.Filter):
    """Each warning once per eval, not once per case (every case runs a whole review)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


class _Progress:
    """A bar on stderr while the cases run; in a CI log a line per case; nothing with --quiet
    or where stderr is neither (a script reads it for the one line of a failure)."""

    def __init__(self, total: int, quiet: bool, in_ci: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        self.lines = in_ci and not quiet and not console.is_terminal
        self.total, self.done = total, 0
        self.lock = threading.Lock()  # cases end in worker threads
        # Cases done of all, time so far and an estimate: an eval runs for minutes.
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                            transient=True, disable=quiet or not console.is_terminal)
        self.task = self.bar.add_task("cases", total=total)

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def advance(self, done: CaseRun) -> None:
        what = f"{done.case}: failed ({done.error})" if done.error else \
            f"{done.case}: {len(done.findings)} finding(s), {done.latency_s:.1f} s"
        with self.lock:
            self.bar.update(self.task, advance=1, description=done.case)
            self.done += 1
            if self.lines:
                sys.stderr.write(f"reviewer: case {self.done}/{self.total} {what}\n")
