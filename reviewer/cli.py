"""The command line; the only place where errors become exit codes."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from reviewer import __version__
from reviewer.cli_eval import eval_app
from reviewer.clock import STARTED  # noqa: F401  (the run's clock starts at import)
from reviewer.config import DEFAULT_BASE_URL, DEFAULT_MODEL, Settings, load_settings
from reviewer.errors import UsageError
from reviewer.exits import (
    EXIT_FAILED,
    EXIT_GATE,
    EXIT_INCOMPLETE,
    EXIT_OK,
    StdoutReaderMayLeave,
    closed_pipe,
    fail,
    guard,
    log_to_stderr,
    usage_error,
)
from reviewer.model import Review
from reviewer.render import terminal

if TYPE_CHECKING:
    from reviewer.review import Outcome


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Review GitLab merge requests with any OpenAI-compatible model.")
spec_app = typer.Typer(no_args_is_help=True, help="Work with review rules (the spec).")
app.add_typer(spec_app, name="spec")
app.add_typer(eval_app, name="eval")

GITLAB, MODEL, SPEC, OUTPUT, LOCAL = "GitLab", "Model", "Spec", "Output and gate", "Local mode"


def _opt(help_text: str, env: str | None, panel: str, *names: str) -> Any:
    shown = f"{help_text} (env: {env})" if env else help_text
    return typer.Option(*names, help=shown, rich_help_panel=panel, show_default=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reviewer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False,
          ) -> None:
    """Review GitLab merge requests with any OpenAI-compatible model."""


@app.command()
def review(
    gitlab_url: Annotated[str | None, _opt("GitLab URL.", "REVIEWER_GITLAB_URL, CI_SERVER_URL",
                                           GITLAB, "--gitlab-url")] = None,
    token: Annotated[str | None, _opt("GitLab token with the api scope.",
                                      "REVIEWER_GITLAB_TOKEN, GITLAB_TOKEN", GITLAB,
                                      "--token")] = None,
    project: Annotated[str | None, _opt("Project id or path (group/name).",
                                        "REVIEWER_PROJECT, CI_MERGE_REQUEST_PROJECT_ID, "
                                        "CI_PROJECT_ID", GITLAB, "--project")] = None,
    mr: Annotated[int | None, _opt("Merge request IID.", "REVIEWER_MR_IID, "
                                   "CI_MERGE_REQUEST_IID", GITLAB, "--mr")] = None,
    mr_url: Annotated[str | None, _opt("Merge request URL, instead of --project and --mr.",
                                       "REVIEWER_MR_URL", GITLAB, "--mr-url")] = None,
    max_file_bytes: Annotated[int | None, _opt("Largest diff of one file fetched in full when "
                                               "GitLab cut it (default: 1000000 bytes)",
                                               "REVIEWER_MAX_FILE_BYTES", GITLAB,
                                               "--max-file-bytes")] = None,
    base_url: Annotated[str | None, _opt(f"OpenAI-compatible API URL (default: "
                                         f"{DEFAULT_BASE_URL})", "REVIEWER_BASE_URL, "
                                         "OPENAI_BASE_URL", MODEL, "--base-url")] = None,
    api_key: Annotated[str | None, _opt("API key for the model server.",
                                        "REVIEWER_API_KEY, OPENAI_API_KEY", MODEL,
                                        "--api-key")] = None,
    model: Annotated[str | None, _opt(f"Model name (default: {DEFAULT_MODEL})",
                                      "REVIEWER_MODEL", MODEL, "--model")] = None,
    max_output_tokens: Annotated[int | None, _opt("Most tokens the model may answer with "
                                                  "(default: 2048)", "REVIEWER_MAX_OUTPUT_TOKENS",
                                                  MODEL, "--max-output-tokens")] = None,
    max_input_tokens: Annotated[int | None, _opt("Most prompt tokens per request; larger "
                                                 "changes are split (default: sized from "
                                                 "the context the server reports, else 6000)",
                                                 "REVIEWER_MAX_INPUT_TOKENS", MODEL,
                                                 "--max-input-tokens")] = None,
    timeout: Annotated[str | None, _opt("Seconds to wait for each answer, end to end "
                                        "(default: 300)", "REVIEWER_TIMEOUT", MODEL,
                                        "--timeout")] = None,
    concurrency: Annotated[int | None, _opt("Model requests in flight at once; match the "
                                            "server's parallel slots (default: 4)",
                                            "REVIEWER_CONCURRENCY", MODEL,
                                            "--concurrency")] = None,
    retries: Annotated[int | None, _opt("Retries of a call that failed for a passing reason "
                                        "(429, 5xx, a reset connection); at most N+1 attempts "
                                        "(default: 3)", "REVIEWER_RETRIES", MODEL,
                                        "--retries")] = None,
    deadline: Annotated[str | None, _opt("Time for the whole run from its start, e.g. 1800, "
                                         "30m: no request starts after it, what was answered "
                                         "is posted (default: none)", "REVIEWER_DEADLINE",
                                         MODEL, "--deadline")] = None,
    redact: Annotated[bool | None, _opt("Replace likely secrets in the diff before it is sent "
                                        "to the model, and report each as a finding (default: "
                                        "on)", "REVIEWER_REDACT", MODEL,
                                        "--redact/--no-redact")] = None,
    spec: Annotated[str | None, _opt("Rules: a directory or git URL (default: bundled)",
                                     "REVIEWER_SPEC", SPEC, "--spec")] = None,
    spec_ref: Annotated[str | None, _opt("Branch, tag or full commit SHA of a spec git URL.",
                                         "REVIEWER_SPEC_REF", SPEC, "--spec-ref")] = None,
    spec_dir: Annotated[str | None, _opt("Folder of the rules inside the spec.",
                                         "REVIEWER_SPEC_DIR", SPEC, "--spec-dir")] = None,
    exclude: Annotated[list[str] | None, _opt("Gitignore-style glob of files not to review; "
                                              "repeatable.", "REVIEWER_EXCLUDE (comma-separated)",
                                              SPEC, "--exclude")] = None,
    output: Annotated[Path | None, _opt("Where to write the review JSON (default: review.json)",
                                        "REVIEWER_OUTPUT", OUTPUT, "--output", "-o")] = None,
    dry_run: Annotated[bool | None, _opt("Print the review; post nothing.", "REVIEWER_DRY_RUN",
                                         OUTPUT, "--dry-run/--post")] = None,
    fail_under: Annotated[int | None, _opt("Exit 3 when the score is below this.",
                                           "REVIEWER_FAIL_UNDER", OUTPUT, "--fail-under")] = None,
    fail_on: Annotated[str | None, _opt("Exit 3 on a finding of this severity or worse "
                                        "(info|minor|major|critical|blocker).", "REVIEWER_FAIL_ON",
                                        OUTPUT, "--fail-on")] = None,
    allow_incomplete: Annotated[bool | None, _opt("Exit 0, not 4, when files that needed "
                                                  "review were not reviewed.",
                                                  "REVIEWER_ALLOW_INCOMPLETE", OUTPUT,
                                                  "--allow-incomplete")] = None,
    inline: Annotated[bool | None, _opt("Post findings as threads on their diff lines "
                                        "(default: on).", "REVIEWER_INLINE", OUTPUT,
                                        "--inline/--no-inline")] = None,
    incremental: Annotated[bool | None, _opt("Ask the model only about the files changed "
                                             "since the last review of the merge request and "
                                             "carry the other findings over (default: on in "
                                             "CI); --full reviews every file",
                                             "REVIEWER_INCREMENTAL", OUTPUT,
                                             "--incremental/--full")] = None,
    max_inline: Annotated[int | None, _opt("Most findings posted inline, most severe first; "
                                           "the rest go into the summary (default: 20)",
                                           "REVIEWER_MAX_INLINE", OUTPUT, "--max-inline")] = None,
    codequality: Annotated[Path | None, _opt("Also write a GitLab Code Quality report here.",
                                             "REVIEWER_CODEQUALITY", OUTPUT,
                                             "--codequality")] = None,
    local: Annotated[bool | None, _opt("Review a local git range; no GitLab needed.",
                                       "REVIEWER_LOCAL", LOCAL, "--local")] = None,
    base: Annotated[str | None, _opt("Base ref (default: the remote's default branch, else "
                                     "main/master)", "REVIEWER_BASE", LOCAL, "--base")] = None,
    head: Annotated[str | None, _opt("Head ref (default: the working tree)", "REVIEWER_HEAD",
                                     LOCAL, "--head")] = None,
    repo: Annotated[Path | None, _opt("Repository to review (default: .)", "REVIEWER_REPO",
                                      LOCAL, "--repo")] = None,
    diff: Annotated[str | None, _opt("Review this unified diff (as git diff prints it; - for "
                                     "stdin): no repository, no GitLab.", "REVIEWER_DIFF",
                                     LOCAL, "--diff")] = None,
    verbose: Annotated[bool | None, _opt("Show tracebacks and each step's log.", "REVIEWER_VERBOSE",
                                         OUTPUT, "--verbose", "-v")] = None,
    quiet: Annotated[bool | None, _opt("No progress on stderr (a bar on a terminal, a line per "
                                       "model request in CI); warnings and errors still show.",
                                       "REVIEWER_QUIET", OUTPUT, "--quiet", "-q")] = None,
) -> None:
    """Review a merge request (or with --local, a local git range) and post the review."""
    flags = {k: v for k, v in locals().items()}
    settings = guard(lambda: _settings(flags), verbose=bool(verbose))
    guard(lambda: _review(settings), verbose=settings.verbose, secrets=settings.secrets())


def _settings(flags: dict[str, Any]) -> Settings:
    settings = load_settings(flags)
    if settings.local and (settings.mr_url or flags.get("mr") is not None):
        raise UsageError("--local reviews a local git range; drop --mr/--mr-url, or drop --local")
    if settings.diff and (settings.local or settings.mr_url or flags.get("mr") is not None):
        raise UsageError("--diff reviews a diff file; drop --local/--mr/--mr-url, or drop --diff")
    if not settings.local and (flags.get("base") or flags.get("head")):
        raise UsageError("--base and --head belong to --local")
    return settings


def _review(settings: Settings) -> None:
    """Run a review and report it; the gate decides the exit code."""
    from reviewer.review import run  # the heavy imports wait until a review really runs

    gc.freeze()  # the modules' objects live until exit: collections need not walk them again

    # Warnings (an answer kept despite an odd figure, a request that failed) always show;
    # each step's log only with --verbose (the requests' progress is progress.py's).
    log_to_stderr(settings.verbose, settings.secrets())
    outcome = run(settings)
    Console(soft_wrap=False).print(terminal(outcome.review))
    _print_outputs(settings, outcome)
    if outcome.gate_failure:  # a failing gate wins over an incomplete review
        fail(f"quality gate failed: {outcome.gate_failure}", EXIT_GATE)
    if outcome.incomplete and not settings.allow_incomplete:
        missing = outcome.review.coverage
        fail(f"review incomplete: {missing.files_not_reviewed} of {missing.needed_review} "
              "files that needed review were not reviewed (listed in the review; "
              "--allow-incomplete exits 0)", EXIT_INCOMPLETE)


def _print_outputs(settings: Settings, outcome: Outcome) -> None:
    typer.echo(f"review written to {settings.output}")
    if settings.codequality:
        typer.echo(f"Code Quality report written to {settings.codequality}")
    if outcome.posted:
        report = outcome.posted.report
        typer.echo(f"review posted: {outcome.posted.note_url} ({len(report.inline)} inline, "
                   f"{report.new} new, {report.resolved} resolved)")
    elif outcome.review.merge_request and settings.dry_run:
        typer.echo("dry run: nothing posted")


@spec_app.command("check")
def spec_check(
    source: Annotated[str | None, typer.Argument(help="Directory or git URL (default: bundled)",
                                                 show_default=False)] = None,
    ref: Annotated[str | None, typer.Option(
        "--ref", help="Branch, tag or full commit SHA of a URL.")] = None,
    spec_dir: Annotated[str | None, typer.Option("--spec-dir", help="Folder inside the spec.")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rules as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Validate a spec and list its rules (exit 1 with file:line on an error)."""
    settings = guard(lambda: load_settings({"spec": source, "spec_ref": ref,
                                             "spec_dir": spec_dir}), verbose=verbose)
    from reviewer.spec import from_settings

    loaded = guard(lambda: from_settings(settings), verbose=verbose, secrets=settings.secrets())
    if as_json:
        typer.echo(json.dumps([{"id": r.id, "title": r.title, "severity": r.severity,
                                "paths": list(r.paths), "file": r.file} for r in loaded.rules],
                              indent=2))
        return
    table = Table(title=f"{len(loaded.rules)} rules in {loaded.source}")
    for column in ("id", "severity", "title", "paths", "file"):
        table.add_column(column)
    for r in loaded.rules:
        table.add_row(r.id, r.severity, r.title, ", ".join(r.paths), f"{r.file}:{r.line}")
    Console().print(table)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of review.json."""
    typer.echo(json.dumps(Review.model_json_schema(), indent=2))


def main() -> None:
    """Console script entry point. click's own usage errors (an unknown flag, a bad value, a
    missing argument) become one line on stderr and exit 2, like every other error."""
    sys.stdout = StdoutReaderMayLeave(sys.stdout)
    try:
        code = app(prog_name="reviewer", standalone_mode=False)
    except BrokenPipeError:
        code = closed_pipe()
    except typer.Abort:  # end of input at a prompt; Ctrl-C is Exit(130)
        sys.stderr.write("reviewer: aborted\n")
        code = EXIT_FAILED
    except Exception as exc:
        code = usage_error(exc)
    finally:
        # Nothing a run made needs collecting at exit: frozen, it is skipped by the
        # interpreter's last collection, which otherwise walks every object of the SDKs and
        # the review (~0.25 s of every run; bench/bench_pipeline.py measures start-up).
        gc.freeze()
    sys.exit(code if isinstance(code, int) else EXIT_OK)
