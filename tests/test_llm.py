"""The model call over real HTTP: structured-output negotiation, repair, and every failure."""

from __future__ import annotations

import functools
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reviewer.diff import Change, parse_change
from reviewer.errors import ModelError
from reviewer.llm import ModelClient
from reviewer.model import ModelAnswer, Usage, answer_schema
from reviewer.prompt import Context, Request, build, with_schema
from reviewer.spec import Spec, load
from tests.conftest import API_KEY, answer, clean_env, finding, run_cli
from tests.openai_standin import FakeOpenAI, Reply, keywords_of

TAG = "mr-data-0badc0de"
DIFF = ("@@ -1,3 +1,4 @@\n"
        " import os\n"
        "-x = 1\n"
        "+x = 2\n"
        "+y = os.environ['Y']\n"
        " def f():\n")
BAD_JSON = '{"score": 80, "verdict": "comment",}'


@functools.cache
def bundled_spec() -> Spec:
    return load(None, None, None, lambda url: None)


def review_request(diff: str = DIFF, path: str = "src/app.py", tag: str = TAG,
                   max_tokens: int = 12000) -> Request:
    """One request for a change to one file, with the bundled rules in full (over 1000
    tokens)."""
    files = [parse_change(Change(path, path, diff))]
    requests, skipped = build(files, bundled_spec(), Context("Read Y", "Reads Y from the env."),
                              max_tokens, tag)
    assert len(requests) == 1 and skipped == []
    return requests[0]


@pytest.fixture
def request_() -> Request:
    return review_request()


def client_for(url: str, *, api_key: str | None = "k", model: str = "test-model",
               max_output_tokens: int = 1024, timeout: float = 10.0,
               retries: int = 3) -> ModelClient:
    # A short backoff: what is retried is tested here, how long it waits in test_faults*.
    return ModelClient(base_url=url, api_key=api_key, model=model,
                       max_output_tokens=max_output_tokens, timeout=timeout, host="127.0.0.1",
                       retries=retries, backoff=0.01)


def format_types(fake: FakeOpenAI) -> list[str | None]:
    return [(r.get("response_format") or {}).get("type") for r in fake.requests]


def review_error(client: ModelClient, request: Request) -> str:
    with pytest.raises(ModelError) as caught:
        client.review(request)
    return str(caught.value)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# --- answers the model gives -------------------------------------------------------------------

def test_valid_answer_is_returned_and_request_asks_for_the_json_schema(
        llm: FakeOpenAI, request_: Request) -> None:
    llm.queue(answer(score=72, verdict="comment", summary="Reads an env var.",
                     findings=[finding("src/app.py", 3, severity="minor")]))
    client = client_for(llm.url, max_output_tokens=777)
    result = client.review(request_)
    assert result == ModelAnswer.model_validate_json(answer(
        score=72, verdict="comment", summary="Reads an env var.",
        findings=[finding("src/app.py", 3, severity="minor")]))
    [sent] = llm.requests
    assert sent["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "review", "schema": answer_schema()}}
    assert sent["model"] == "test-model"
    assert sent["max_tokens"] == 777
    assert sent["messages"] == request_.as_openai()
    assert client.mode == "json_schema"


def test_answer_in_a_json_fence_is_accepted(llm: FakeOpenAI, request_: Request) -> None:
    llm.queue(f"Here is my review:\n```json\n{answer(score=64)}\n```\nLet me know!")
    assert client_for(llm.url).review(request_).score == 64
    assert len(llm.requests) == 1


def test_answer_after_a_think_block_and_chatter_is_accepted(
        llm: FakeOpenAI, request_: Request) -> None:
    # Braces in the reasoning would break the extraction if the block were not dropped.
    llm.queue('<think>Maybe {"score": 10}? No, the change is fine.</think>\n'
              f"Sure! Here is the review: {answer(score=91, verdict='approve')} Hope it helps.")
    result = client_for(llm.url).review(request_)
    assert (result.score, result.verdict) == (91, "approve")
    assert len(llm.requests) == 1


def test_invalid_json_is_repaired_by_showing_the_model_its_error(
        llm: FakeOpenAI, request_: Request) -> None:
    llm.queue(BAD_JSON, answer(score=55))
    assert client_for(llm.url).review(request_).score == 55
    first, second = llm.requests
    assert second["messages"][:2] == first["messages"] == request_.as_openai()
    assert second["messages"][2] == {"role": "assistant", "content": BAD_JSON}
    last = second["messages"][-1]
    assert last["role"] == "user"
    assert "invalid JSON: Expecting property name enclosed in double quotes" in last["content"]
    assert second["response_format"]["type"] == "json_schema"


def test_invalid_answer_twice_is_a_model_error(llm: FakeOpenAI, request_: Request) -> None:
    llm.queue(BAD_JSON, "I cannot review this.")
    message = review_error(client_for(llm.url), request_)
    assert "invalid review twice" in message
    assert "test-model" in message
    assert len(llm.requests) == 2


def test_schema_invalid_answer_is_repaired(llm: FakeOpenAI, request_: Request) -> None:
    llm.queue(answer(findings=[finding("src/app.py", 3, severity="urgent")]),
              answer(findings=[finding("src/app.py", 3, severity="critical")]))
    result = client_for(llm.url).review(request_)
    assert [f.severity for f in result.findings] == ["critical"]
    repair = llm.requests[1]["messages"][-1]["content"]
    assert "does not match the schema" in repair
    assert "findings.0.severity" in repair


def test_lenient_spellings_are_normalised_without_a_repair(
        llm: FakeOpenAI, request_: Request) -> None:
    loose = json.loads(answer(verdict="Request Changes",
                              findings=[finding("b/src/app.py", 4, severity="Major")]))
    loose["score"] = 41.6
    llm.queue(json.dumps(loose))
    result = client_for(llm.url).review(request_)
    assert (result.score, result.verdict) == (42, "request_changes")
    [item] = result.findings
    # The "b/" is resolved against the diff when the finding is placed (tests/test_check.py).
    assert (item.path, item.severity) == ("b/src/app.py", "major")
    assert len(llm.requests) == 1


def test_answer_cut_off_twice_names_max_output_tokens(
        llm: FakeOpenAI, request_: Request) -> None:
    cut = Reply(content='{"score": 80, "verdict": "comm', finish_reason="length")
    llm.queue(cut, cut)
    message = review_error(client_for(llm.url, max_output_tokens=333), request_)
    assert "--max-output-tokens" in message
    assert "333" in message
    assert len(llm.requests) == 2  # one shorter try, no repair of a cut answer


def test_a_cut_off_answer_gets_one_try_at_a_shorter_one(
        llm: FakeOpenAI, request_: Request) -> None:
    llm.queue(Reply(content='{"score": 80, "summary": "a a a a a', finish_reason="length"),
              answer(score=61))
    result = client_for(llm.url).review(request_)
    assert result.score == 61
    first, second = llm.requests
    assert second["messages"][:-1] == first["messages"]  # the cut answer is not sent back
    assert "at most 5 findings" in second["messages"][-1]["content"]
    schema = second["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["findings"]["maxItems"] == 5
    assert first["response_format"]["json_schema"]["schema"]["properties"]["findings"][
        "maxItems"] == 12


# --- structured-output negotiation -------------------------------------------------------------

@pytest.mark.parametrize("status", [400, 422, 500])
def test_rejected_json_schema_falls_back_to_json_object_and_remembers(
        status: int, request_: Request) -> None:
    with FakeOpenAI(reject_formats={"json_schema"}, reject_status=status, models=()) as fake:
        fake.queue(answer(score=70), answer(score=71))
        client = client_for(fake.url)
        assert client.review(request_).score == 70
        assert client.review(request_).score == 71
    # A refused format is never retried, whatever its status: negotiation handles it.
    assert format_types(fake) == ["json_schema", "json_object", "json_object"]
    assert fake.requests[-1]["response_format"] == {"type": "json_object",
                                                    "schema": answer_schema()}
    assert client.mode == "json_object"


def test_a_schema_refused_for_its_bounds_is_sent_bare_not_dropped(request_: Request) -> None:
    """vLLM with a forced xgrammar backend refuses a schema with keywords its engine lacks
    (maxLength, maxItems, minimum, maximum): the same schema without them still constrains
    the answer, which json_object would not."""
    bare = ModelAnswer.model_json_schema()
    with FakeOpenAI(schema_keywords=keywords_of(bare), models=()) as fake:
        fake.queue(answer(score=70), answer(score=71))
        client = client_for(fake.url)
        assert client.review(request_).score == 70
        assert client.review(request_).score == 71
    assert format_types(fake) == ["json_schema"] * 3
    assert [r["response_format"]["json_schema"]["schema"] for r in fake.requests] == \
        [answer_schema(), bare, bare]
    assert client.mode == "json_schema"  # what review.json reports: still a schema


def test_a_json_schema_refused_as_a_type_skips_the_bare_schema(request_: Request) -> None:
    """Refused for its type (llama-cpp-python's literal_error), no json_schema can pass."""
    with FakeOpenAI(reject_formats={"json_schema"}, reject_status=500,
                    error_style="llama-cpp-python", models=()) as fake:
        fake.queue(answer(score=70))
        assert client_for(fake.url).review(request_).score == 70
    assert format_types(fake) == ["json_schema", "json_object"]


def test_server_without_structured_output_gets_the_schema_in_the_system_message(
        request_: Request) -> None:
    with FakeOpenAI(reject_formats={"json_schema", "json_object"}, models=()) as fake:
        fake.queue(answer(score=60), answer(score=61))
        client = client_for(fake.url)
        assert client.review(request_).score == 60
        assert client.review(request_).score == 61
    assert format_types(fake) == ["json_schema", "json_object", None, None]
    for sent in fake.requests[:2]:
        assert with_schema(answer_schema()) not in sent["messages"][0]["content"]
    for sent in fake.requests[2:]:
        assert "response_format" not in sent
        system = sent["messages"][0]
        assert system["role"] == "system"
        # Right after the instructions, before the rules: requests keep their common prefix.
        instructions, rules = request_.messages[0][1].split("\n\nTeam rules", 1)
        assert system["content"] == (instructions + with_schema(answer_schema())
                                     + "\n\nTeam rules" + rules)
        assert sent["messages"][1:] == request_.as_openai()[1:]
    assert client.mode == "plain"


def test_a_400_not_about_the_format_is_an_error_without_fallback(
        llm: FakeOpenAI, request_: Request) -> None:
    llm.queue(Reply(status=400, error="This model's maximum context length is 4096 tokens "
                                      "(context length exceeded)."))
    client = client_for(llm.url)
    message = review_error(client, request_)
    assert "HTTP 400" in message
    assert "context length exceeded" in message
    assert format_types(llm) == ["json_schema"]
    assert client.mode == "json_schema"


# --- server and connection failures ------------------------------------------------------------

def test_server_error_that_persists_through_retries_names_http_500(
        llm: FakeOpenAI, request_: Request) -> None:
    llm.queue(*[Reply(status=500, error="CUDA out of memory")] * 4)
    message = review_error(client_for(llm.url, retries=3), request_)
    assert "HTTP 500 (4 tries)" in message
    assert "CUDA out of memory" in message
    assert len(llm.requests) == 4  # --retries 3: at most 4 attempts


def test_wrong_api_key_is_reported_without_the_key(request_: Request) -> None:
    with FakeOpenAI(api_key="sk-the-right-one", models=()) as fake:
        message = review_error(client_for(fake.url, api_key=API_KEY), request_)
    assert "API key" in message
    assert "--api-key" in message
    assert API_KEY not in message
    assert len(fake.requests) == 1


def test_unknown_model_is_named(request_: Request) -> None:
    with FakeOpenAI(models=("test-model",)) as fake:
        message = review_error(client_for(fake.url, model="qwen-missing:1b"), request_)
    assert "'qwen-missing:1b'" in message
    assert "404" in message
    assert "--model" in message


def test_unreachable_server_names_base_url(request_: Request) -> None:
    message = review_error(client_for(closed_port_url()), request_)
    assert "cannot reach" in message
    assert "--base-url" in message


def test_slow_server_names_timeout(llm: FakeOpenAI, request_: Request) -> None:
    llm.queue(Reply(content=answer(), delay=5.0))
    message = review_error(client_for(llm.url, timeout=0.1), request_)
    assert "--timeout" in message
    assert "0.1s" in message


def test_silently_truncated_prompt_names_ollama_context_length(llm: FakeOpenAI) -> None:
    rows = "".join(f"+value_{i:04d} = compute('{i:04d}', retries=3)\n" for i in range(200))
    request_ = review_request(f"@@ -0,0 +1,200 @@\n{rows}")
    system = len(request_.messages[0][1])
    assert (request_.chars - system) // 4 > 1000  # the part no earlier run sent is checked
    llm.queue(Reply(content=answer(), prompt_tokens=200))
    message = review_error(client_for(llm.url), request_)
    assert "OLLAMA_CONTEXT_LENGTH" in message
    assert "200" in message


def test_small_prompt_is_not_checked_for_truncation(llm: FakeOpenAI) -> None:
    files = [parse_change(Change("a.py", "a.py", "@@ -1 +1 @@\n-a\n+b\n"))]
    [small], _ = build(files, Spec("none", None, None, ()), Context("t", ""), 6000, TAG)
    assert small.chars // 4 < 1000
    llm.queue(Reply(content=answer(score=66), prompt_tokens=20))
    assert client_for(llm.url).review(small).score == 66


def test_usage_counts_tokens_and_requests(llm: FakeOpenAI, request_: Request) -> None:
    llm.queue(Reply(content=BAD_JSON, prompt_tokens=3000, completion_tokens=12),
              Reply(content=answer(), prompt_tokens=3100, completion_tokens=40),
              Reply(content=answer(), prompt_tokens=2900, completion_tokens=35))
    client = client_for(llm.url)
    client.review(request_)
    client.review(request_)
    assert client.usage == Usage(prompt_tokens=9000, completion_tokens=87, requests=3)


# --- through the command line ------------------------------------------------------------------

def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.com",
                    "-c", "commit.gpgsign=false", *args], cwd=repo, env=clean_env(),
                   check=True, capture_output=True)


def make_repo(tmp_path: Path) -> Path:
    """A repository with a base commit on main and an uncommitted change."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "--quiet", "--initial-branch=main")
    (path / "calc.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    git(path, "add", "calc.py")
    git(path, "commit", "--quiet", "-m", "base")
    (path / "calc.py").write_text("def add(a, b):\n    return a - b\n", encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def review_cli(fake: FakeOpenAI, repo: Path, out: Path) -> Any:
    return run_cli("review", "--local", "--repo", str(repo), "--base-url", fake.url,
                   "--model", "m", "-o", str(out))


def test_cli_invalid_answer_twice_exits_1_with_one_error_line(
        llm: FakeOpenAI, repo: Path, tmp_path: Path) -> None:
    llm.queue(BAD_JSON, "Still not JSON.")
    out = tmp_path / "review.json"
    result = review_cli(llm, repo, out)
    assert result.code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("reviewer: error: model m returned an invalid review twice")
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists()


def test_cli_cut_off_answer_exits_1_naming_max_output_tokens(
        llm: FakeOpenAI, repo: Path, tmp_path: Path) -> None:
    llm.queue(Reply(content='{"score": 9', finish_reason="length"),
              Reply(content='{"score": 9', finish_reason="length"))
    result = review_cli(llm, repo, tmp_path / "review.json")
    assert result.code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("reviewer: error: ")
    assert "--max-output-tokens" in line
    assert "Traceback" not in result.stderr


def test_cli_valid_answer_exits_0_and_writes_the_review(
        llm: FakeOpenAI, repo: Path, tmp_path: Path) -> None:
    llm.queue(answer(score=88, verdict="approve", summary="Subtraction instead of addition?"))
    out = tmp_path / "review.json"
    result = review_cli(llm, repo, out)
    assert result.code == 0, result.stderr
    review = json.loads(out.read_text(encoding="utf-8"))
    assert (review["score"], review["verdict"]) == (88, "approve")
    assert review["files_reviewed"] == ["calc.py"]
    assert review["usage"]["requests"] == 1
    [sent] = llm.requests
    assert sent["model"] == "m"
    assert "    2       -     return a + b" in sent["messages"][1]["content"]
    assert "          2 +     return a - b" in sent["messages"][1]["content"]
