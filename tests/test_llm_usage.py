"""Reported prompt figures are evidence, not proof: prefix caches, cached tokens, context size."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reviewer.errors import ModelError
from reviewer.prompt import Request
from reviewer.seen import MIN_CHECKED_TOKENS, check_seen
from tests.conftest import answer
from tests.openai_standin import FakeOpenAI, Reply
from tests.test_llm import BAD_JSON, client_for, make_repo, review_cli, review_request


def added_lines(count: int, start: int = 1) -> str:
    """A diff adding count lines of about 45 characters each."""
    rows = "".join(f"+value_{i:04d} = compute('{i:04d}', retries=3)\n"
                   for i in range(start, start + count))
    return f"@@ -0,0 +1,{count} @@\n{rows}"


@pytest.fixture
def request_() -> Request:
    # A diff of over 1,000 tokens: what a run may not have sent before (the system message is
    # the same in every run, so a server may hold it from an earlier one) is big enough to check.
    return review_request(added_lines(200))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="reviewer")


# --- a server that counts only what is not in its prefix cache (some Ollama versions) ----------

def test_a_repair_the_server_counts_from_its_cache_is_not_taken_for_truncation(
        request_: Request, caplog: pytest.LogCaptureFixture) -> None:
    assert request_.chars // 4 >= MIN_CHECKED_TOKENS
    with FakeOpenAI(cache="uncached-only", models=()) as fake:
        fake.queue(BAD_JSON, answer(score=57))
        client = client_for(fake.url)
        assert client.review(request_).score == 57
    assert len(fake.requests) == 2
    assert client.usage.prompt_tokens < request_.chars // 4 + 100  # the repair counted ~30
    assert warnings_of(caplog) == []


def test_a_shorter_answer_retry_the_server_counts_from_its_cache_is_kept(
        request_: Request, caplog: pytest.LogCaptureFixture) -> None:
    with FakeOpenAI(cache="uncached-only", models=()) as fake:
        fake.queue(Reply(content='{"score": 80, "summary": "a a a', finish_reason="length"),
                   answer(score=63))
        assert client_for(fake.url).review(request_).score == 63
    assert warnings_of(caplog) == []


def test_a_later_request_sharing_the_rules_needs_only_its_new_part_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    first = review_request(added_lines(120), "src/a.py")
    second = review_request(added_lines(120, start=500), "src/b.py")
    with FakeOpenAI(cache="uncached-only", models=()) as fake:
        fake.queue(answer(score=71), answer(score=72))
        client = client_for(fake.url)
        assert [client.review(r).score for r in (first, second)] == [71, 72]
    system, user = (text for _, text in second.messages)
    shared = len(system) + user.index("The merge request")  # the instructions and the rules
    new_part = (second.chars - shared) // 4
    # Big enough to be checked, and far short of the whole, which the server did not count.
    assert MIN_CHECKED_TOKENS <= new_part < second.chars // 4 * 0.6
    assert warnings_of(caplog) == []


def test_requests_in_flight_together_share_their_prefix(
        caplog: pytest.LogCaptureFixture) -> None:
    # The second request reaches the server while the first is still answering; the server has
    # the first one's prefix cached already, and its answer to the second comes back first.
    first = review_request(added_lines(120), "src/a.py")
    second = review_request(added_lines(120, start=500), "src/b.py")
    with FakeOpenAI(cache="uncached-only", models=()) as fake:
        fake.queue(Reply(content=answer(score=71), delay=1.0), answer(score=72))
        client = client_for(fake.url)
        with ThreadPoolExecutor(max_workers=2) as pool:
            slow = pool.submit(client.review, first)
            while not fake.requests:
                time.sleep(0.01)
            fast = pool.submit(client.review, second)
            assert (slow.result().score, fast.result().score) == (71, 72)
    assert warnings_of(caplog) == []


# --- a context window that drops the start of the prompt (Ollama's num_ctx) --------------------

def test_a_refused_format_is_no_prefix_seen_so_truncation_still_aborts(
        request_: Request) -> None:
    with FakeOpenAI(reject_formats={"json_schema"}, context_window=300, models=()) as fake:
        fake.queue(answer())
        with pytest.raises(ModelError, match="saw only 300 of about"):
            client_for(fake.url).review(request_)
    assert [r["response_format"]["type"] for r in fake.requests] == ["json_schema",
                                                                   "json_object"]


def test_a_first_request_cut_by_the_context_window_aborts_naming_the_settings(
        request_: Request) -> None:
    with FakeOpenAI(context_window=300, models=()) as fake:
        fake.queue(answer())
        with pytest.raises(ModelError) as caught:
            client_for(fake.url).review(request_)
    message = str(caught.value)
    assert message.startswith("the model server saw only 300 of about ")
    for setting in ("OLLAMA_CONTEXT_LENGTH", "num_ctx", "--ctx-size", "--max-input-tokens"):
        assert setting in message


def test_a_later_request_cut_by_the_context_window_warns_and_keeps_the_answer(
        caplog: pytest.LogCaptureFixture) -> None:
    small = review_request(added_lines(10), "src/a.py")
    large = review_request(added_lines(250, start=500), "src/b.py", max_tokens=20_000)
    with FakeOpenAI(context_window=1500, models=()) as fake:
        fake.queue(answer(score=71), answer(score=38))
        client = client_for(fake.url)
        assert [client.review(r).score for r in (small, large)] == [71, 38]
    [warning] = warnings_of(caplog)
    assert warning.startswith("the model server counted only 1500 of about ")
    assert "\n" not in warning
    for setting in ("OLLAMA_CONTEXT_LENGTH", "num_ctx", "--ctx-size"):
        assert setting in warning


# --- cached tokens reported: inside prompt_tokens (OpenAI, vLLM, llama.cpp) or apart -----------

@pytest.mark.parametrize("cache", ["reported", "apart", "uncached-only"])
def test_a_second_run_against_a_warm_cache_is_not_taken_for_truncation(
        cache: str, request_: Request, caplog: pytest.LogCaptureFixture) -> None:
    with FakeOpenAI(cache=cache, models=()) as fake:
        fake.queue(answer(score=61), answer(score=62))
        assert client_for(fake.url).review(request_).score == 61
        # A new run: a new client that has sent nothing, and a new data tag, so what the server
        # has cached from the last run is the system message up to the tag.
        rerun = review_request(tag="mr-data-5eed1e55")
        assert client_for(fake.url).review(rerun).score == 62
    assert warnings_of(caplog) == []


def test_an_odd_figure_with_cached_tokens_reported_only_warns(
        request_: Request, caplog: pytest.LogCaptureFixture) -> None:
    with FakeOpenAI(models=()) as fake:
        fake.queue(Reply(content=answer(score=66), prompt_tokens=300, cached_tokens=100))
        assert client_for(fake.url).review(request_).score == 66
    [warning] = warnings_of(caplog)
    assert "counted only 300 of about" in warning


def test_zero_prompt_tokens_is_no_evidence(request_: Request,
                                           caplog: pytest.LogCaptureFixture) -> None:
    # Older Ollama reported 0 for a prompt served wholly from its cache (ollama/ollama#5370).
    with FakeOpenAI(models=()) as fake:
        fake.queue(Reply(content=answer(score=67), prompt_tokens=0))
        assert client_for(fake.url).review(request_).score == 67
    assert warnings_of(caplog) == []


# --- the rule itself ---------------------------------------------------------------------------

@pytest.mark.parametrize(("reported", "cached", "chars", "shared", "outcome"), [
    (2900, 0, 12_000, 0, "ok"),          # counted in full
    (200, 0, 12_000, 0, "abort"),        # a first request cut short: certain
    (200, 0, 3_000, 0, "ok"),            # too small to tell
    (0, 0, 12_000, 0, "ok"),             # no figure at all
    (200, 2800, 12_000, 0, "ok"),        # cached counted apart: 200 + 2800 seen
    (2900, 2800, 12_000, 0, "ok"),       # cached counted inside (OpenAI's semantics)
    (900, 800, 12_000, 0, "warn"),       # cached inside, yet far short: odd, not certain
    (40, 0, 12_000, 11_800, "ok"),       # a follow-up: only its new 50 tokens must show
    (3000, 0, 20_000, 4_000, "ok"),      # a later request: 3000 seen of its new 4000
    (1000, 0, 20_000, 4_000, "warn"),    # ... 1000 seen: far short, but a prefix was sent
])
def test_check_seen(reported: int, cached: int, chars: int, shared: int, outcome: str,
                    caplog: pytest.LogCaptureFixture) -> None:
    if outcome == "abort":
        with pytest.raises(ModelError, match="OLLAMA_CONTEXT_LENGTH"):
            check_seen(reported, cached, chars, shared)
        return
    check_seen(reported, cached, chars, shared)
    assert bool(warnings_of(caplog)) == (outcome == "warn")


# --- through the command line ------------------------------------------------------------------

def test_cli_repair_on_a_server_counting_only_uncached_tokens_completes(
        tmp_path: Path) -> None:
    with FakeOpenAI(cache="uncached-only", models=()) as fake:
        fake.queue(BAD_JSON, answer(score=74))
        out = tmp_path / "review.json"
        repo = make_repo(tmp_path)
        (repo / "calc.py").write_text("".join(f"value_{i:04d} = compute('{i:04d}', retries=3)\n"
                                              for i in range(150)), encoding="utf-8")
        result = review_cli(fake, repo, out)
    first = sum(len(m["content"]) for m in fake.requests[0]["messages"])
    assert first // 4 >= MIN_CHECKED_TOKENS  # the request was big enough to be checked
    assert result.code == 0, result.stderr
    assert "saw only" not in result.stderr
    assert out.exists()


def test_a_rule_line_reading_user_does_not_cut_the_cached_system_message_short(
        tmp_path: Path) -> None:
    """The system message is known by its length, not found by searching the prompt for a
    "user" line: a rule with such a line must not make a warm cache look like truncation."""
    from reviewer.diff import Change, parse_change
    from reviewer.prompt import Context, build
    from reviewer.spec import load_dir

    (tmp_path / "rule.md").write_text(
        "---\nid: UX-001\ntitle: Messages\nseverity: minor\n---\nWrite for the\nuser\n"
        + "who reads the message, in plain words, without jargon. " * 120 + "\n")
    rules = load_dir(tmp_path, str(tmp_path))

    def request(tag: str) -> Request:
        files = [parse_change(Change("src/app.py", "src/app.py", added_lines(40)))]
        return build(files, rules, Context("T", ""), 12000, tag)[0][0]
    with FakeOpenAI(cache="uncached-only", models=()) as fake:
        fake.queue(answer(score=61), answer(score=62))
        assert client_for(fake.url).review(request("mr-data-00000001")).score == 61
        assert client_for(fake.url).review(request("mr-data-00000002")).score == 62
