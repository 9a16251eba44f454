"""Lean requests with a stable prefix: what the fixed part of a request costs at real context
sizes, the condensed rules, and the bytes two runs share."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewer.context import Window, input_budget
from reviewer.diff import Change, FileDiff, parse_change
from reviewer.model import answer_schema
from reviewer.prompt import (
    SYSTEM,
    Context,
    Request,
    build,
    condense,
    full_rules_tokens,
    ordered,
    schema_into,
)
from reviewer.spec import Rule, Spec, load_dir

BUNDLED = load_dir(Path(__file__).parent.parent / "spec", "bundled")
CTX = Context("Rework the order service", "Splits the service into modules.")
TAG = "mr-data-0a1b2c3d"


def code_file(n: int, lines: int = 70) -> FileDiff:
    """A modified Python file: one hunk replacing lines//2 lines with lines//2 new ones."""
    half = lines // 2
    removed = "".join(f"-    total_{n}_{i} = compute(order.items[{i}], tax=rate)\n"
                      for i in range(half))
    added = "".join(f"+    total_{n}_{i} = compute(order.items[{i}], tax=rate, rounding=up)\n"
                    for i in range(half))
    path = f"src/service/mod_{n:03d}.py"
    return parse_change(Change(path, path, f"@@ -10,{half} +10,{half} @@\n{removed}{added}"))


def hundred_files() -> list[FileDiff]:
    return [code_file(n) for n in range(100)]


def diff_chars(request: Request) -> int:
    """Characters of the files' diff text, found from outside: from the first file header to
    the closing data marker."""
    user = request.messages[1][1]
    return user.index(f"</{TAG}>") - user.index("\nFile: ") - 1


def fixed_share(requests: list[Request]) -> float:
    total = sum(r.chars for r in requests)
    return 1 - sum(diff_chars(r) for r in requests) / total


def budget_at(window: int) -> int:
    return input_budget(Window(window, "test"), 2048, None, 6000)[0]


def rule(rule_id: str, paths: tuple[str, ...], body: str = "Body.") -> Rule:
    return Rule(rule_id, f"Title of {rule_id}", "major", paths, body, f"{rule_id}.md", 1)


# --- the fixed part, measured --------------------------------------------------------------------

@pytest.mark.parametrize(("window", "target"), [(32768, 0.15), (8192, 0.35)])
def test_the_fixed_part_of_a_hundred_file_review_stays_under_its_target(
        window: int, target: float) -> None:
    requests, skipped = build(hundred_files(), BUNDLED, CTX, budget_at(window), TAG)
    assert skipped == []
    assert fixed_share(requests) < target
    # The request's own figure is the same measure.
    assert all(r.fixed == r.chars - diff_chars(r) for r in requests)


def test_full_rules_at_a_large_context_condensed_at_ollamas_default() -> None:
    [large], _ = build([code_file(1)], BUNDLED, CTX, budget_at(32768), TAG)
    [small], _ = build([code_file(1, lines=10)], BUNDLED, CTX, budget_at(4096), TAG)
    assert not large.condensed and small.condensed
    full, short = large.messages[0][1], small.messages[0][1]
    for each in BUNDLED.rules:
        if each.applies_to("src/service/mod_001.py"):
            assert f"## {each.id} ({each.severity}): {each.title}\n{each.body}" in full
            assert condense(each) in short
        else:
            assert each.id not in full + short
    assert "Look for:" in full and "Look for:" not in short
    assert len(short) - len(SYSTEM) < (len(full) - len(SYSTEM)) / 4


def test_a_condensed_rule_is_its_id_severity_title_and_first_sentence() -> None:
    sql = next(r for r in BUNDLED.rules if r.id == "COR-001")
    assert condense(sql) == ("- COR-001 (major): Error swallowed, ignored or caught too broadly. "
                             "A failure is hidden and the program carries on with bad data.")


def test_ollamas_default_context_reviews_the_bundled_spec_with_room_for_diff() -> None:
    # 4,096 tokens: 1,024 for the answer, the rest for a prompt that holds whole files of
    # 40 changed lines.
    files = [code_file(n, lines=40) for n in range(100)]
    requests, skipped = build(files, BUNDLED, CTX, budget_at(4096), TAG)
    assert skipped == []
    assert all(r.condensed for r in requests)
    assert len(requests) == 100  # one whole file each, none cut into pieces
    assert all(r.fixed < diff_chars(r) * 1.2 for r in requests)


def test_the_full_rules_need_the_budget_full_rules_tokens_names() -> None:
    needed = full_rules_tokens(BUNDLED)
    [at], _ = build([code_file(1)], BUNDLED, CTX, needed, TAG)
    [below], _ = build([code_file(1)], BUNDLED, CTX, needed - 1, TAG)
    assert not at.condensed and below.condensed


# --- a stable prefix -----------------------------------------------------------------------------

def test_rules_for_every_file_come_before_path_scoped_ones() -> None:
    spec = Spec("t", None, None, (rule("GO-001", ("*.go",)), rule("ALL-001", ("**",)),
                                  rule("PY-001", ("*.py",)), rule("ALL-002", ("*",))))
    assert [r.id for r in ordered(spec.rules)] == ["ALL-001", "ALL-002", "GO-001", "PY-001"]


def test_requests_of_a_run_share_the_instructions_and_the_rules_for_every_file() -> None:
    spec = Spec("t", None, None, (rule("ALL-001", ("**",), "Everywhere. " * 30),
                                  rule("TST-001", ("test_*.py",), "Tests only.")))
    files = [*hundred_files()[:40], parse_change(Change(
        "tests/test_x.py", "tests/test_x.py", "@@ -1 +1 @@\n-a\n+b\n"))]
    requests, _ = build(files, spec, CTX, 3000, TAG)
    assert len(requests) > 2
    systems = {r.messages[0][1] for r in requests}
    assert len(systems) == 2  # with and without the test rule
    common = min(systems, key=len)
    assert all(s.startswith(common) for s in systems)
    assert "ALL-001" in common and "TST-001" not in common


def test_two_runs_send_the_same_system_message_and_differ_only_by_the_marker() -> None:
    first, _ = build(hundred_files(), BUNDLED, CTX, budget_at(8192), TAG)
    second, _ = build(hundred_files(), BUNDLED, CTX, budget_at(8192), "mr-data-99887766")
    assert [r.messages[0] for r in first] == [r.messages[0] for r in second]
    for a, b in zip(first, second, strict=True):
        assert a.messages[1][1].replace(TAG, "mr-data-99887766") == b.messages[1][1]


def test_the_schema_for_a_plain_server_goes_between_the_instructions_and_the_rules() -> None:
    [request], _ = build([code_file(1)], BUNDLED, CTX, budget_at(32768), TAG)
    system = request.messages[0][1]
    with_schema = schema_into(system, answer_schema())
    assert with_schema.startswith(SYSTEM + "\n\nThe answer must validate")
    assert with_schema.endswith(system[len(SYSTEM):])
