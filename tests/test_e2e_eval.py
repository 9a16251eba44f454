"""`reviewer eval run` on a few starter cases with the real small model (llama.cpp).

The figures are recorded (printed, and kept in the results file), not asserted: a 135M model
finds little; what must hold is that the run completes and every figure is computed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reviewer.eval.results import EvalResult
from tests.conftest import run_cli
from tests.test_e2e_llama import model_server

pytestmark = pytest.mark.e2e
__all__ = ["model_server"]  # the fixture, served once for this module too

STARTER = Path(__file__).resolve().parent.parent / "eval" / "cases"
FEW = ("py-pagination-off-by-one", "go-map-race", "js-prettier-formatting")


def test_the_real_model_over_a_few_starter_cases(model_server: str, tmp_path: Path) -> None:
    for name in FEW:
        shutil.copytree(STARTER / name, tmp_path / "corpus" / "cases" / name)
    out = tmp_path / "eval.json"
    result = run_cli("eval", "run", str(tmp_path / "corpus"), "--base-url", model_server,
                     "--model", "smollm2", "--concurrency", "1", "-o", str(out), timeout=600)
    assert result.code == 0, result.stderr
    got = EvalResult.model_validate_json(out.read_text())
    assert [c.id for c in got.cases] == sorted(FEW)
    assert got.overall.runs == 3 and got.overall.defects == 2
    print(f"\nreal model on {len(FEW)} starter cases: {got.overall.model_dump_json()}")
