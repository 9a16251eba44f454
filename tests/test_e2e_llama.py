"""End to end with a real model: llama.cpp's own server (llama-server, from the xllamacpp wheel)
serving SmolLM2-135M, reviewing an MR on the stand-in.

The model is tiny and invents paths and line numbers; that is the point: whatever it says, the
posted review must validate and nothing may be placed on a line that is not in the diff.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from unidiff import PatchSet

from reviewer.model import Review
from tests.conftest import ROOT, TOKEN, clean_env, note_json, run_cli
from tests.gitlab_standin import FakeGitLab
from tests.test_review_gitlab import FILES

MODEL_ENV = "REVIEWER_E2E_MODEL"
pytestmark = pytest.mark.e2e

# llama.cpp's llama-server from the xllamacpp wheel, as the demo serves it (2 slots of 8,192).
SLOTS = 2
SERVE = ROOT / "scripts" / "serve-model.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"llama.cpp server not ready after {seconds:g}s")


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = os.environ.get(MODEL_ENV)
    if not model:
        pytest.skip(f"{MODEL_ENV} is not set: run the suite with `make test`")
    # Set but missing is a broken set-up, not a reason to skip.
    assert Path(model).is_file(), f"{MODEL_ENV}={model} does not exist"
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(SERVE), model, str(port), str(SLOTS)],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(url, proc, 120)
        # The window the reviewer sizes its requests from: one slot's context.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/props", timeout=5) as props:
            assert json.load(props)["default_generation_settings"]["n_ctx"] == 8192
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def diff_lines(files: list[dict[str, Any]]) -> set[tuple[str, str, int]]:
    """Every (path, side, line) a finding may be placed on, straight from unidiff."""
    lines: set[tuple[str, str, int]] = set()
    for item in files:
        if not item["diff"].startswith("@@"):
            continue
        patch = PatchSet(f"--- a/{item['old_path']}\n+++ b/{item['new_path']}\n{item['diff']}")
        path = item["old_path"] if item.get("deleted_file") else item["new_path"]
        for line in (ln for pf in patch for hunk in pf for ln in hunk):
            if line.target_line_no:
                lines.add((path, "new", line.target_line_no))
            if line.source_line_no:
                lines.add((path, "old", line.source_line_no))
    return lines


def test_real_model_review_is_posted_valid_and_placed_only_on_diff_lines(
        model_server: str, gitlab: FakeGitLab, tmp_path: Path) -> None:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    mr = gitlab.add_merge_request(project["id"], iid=5, title="Run commands per user",
                                  files=FILES)
    out = tmp_path / "review.json"
    env = clean_env(CI_SERVER_URL=gitlab.url, CI_MERGE_REQUEST_PROJECT_ID=str(project["id"]),
                    CI_MERGE_REQUEST_IID="5", REVIEWER_GITLAB_TOKEN=TOKEN,
                    REVIEWER_BASE_URL=model_server, REVIEWER_MODEL="smollm2-135m",
                    REVIEWER_OUTPUT=str(out), REVIEWER_CONCURRENCY=str(SLOTS))

    result = run_cli("review", env=env, timeout=600)

    assert result.code == 0, result.stderr
    discussions = gitlab.discussions(mr["project_id"], 5)
    assert len(discussions) == 1
    body = discussions[0]["notes"][0]["body"]
    posted = note_json(body)
    assert posted == Review.model_validate_json(out.read_text())
    # llama-server takes json_schema itself: no step-down.
    assert posted.model.structured_output == "json_schema"
    assert posted.usage.requests >= 1 and posted.usage.prompt_tokens > 500
    allowed = diff_lines(FILES)
    for found in posted.findings:
        if found.placed:
            assert (found.path, found.side, found.line) in allowed, found
    assert 0 <= posted.score <= 100
    print(f"\nreal model: score {posted.score}, {len(posted.findings)} findings "
          f"({sum(f.placed for f in posted.findings)} placed), {posted.timings}")
