"""`eval merge` takes shards only when every shard of one run is there: a lone shard, or
shards of different splits, would otherwise pass for the whole run."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewer.errors import UsageError
from reviewer.eval import results
from reviewer.eval.merge import merge
from reviewer.eval.results import EvalResult
from tests.conftest import run_cli
from tests.test_eval_report import case, defect, found, result


def part(name: str, shard: str | None) -> EvalResult:
    """A one-case result of shard `shard`, its case found."""
    one = case(name, "python", [defect(5, "COR-005", "major")], [found(5)])
    return result([one], repeat=1).model_copy(update={"shard": shard})


def merged(*labels: str | None) -> EvalResult:
    return merge([(Path(f"{n}.json"), part(f"c{n}", label)) for n, label in enumerate(labels)])


@pytest.mark.parametrize(("labels", "message"), [
    (["1/2"], "shard 2/2 is missing: merge every shard of the run (eval run --shard)"),
    (["1/4", "3/4"], "shards 2/4, 4/4 are missing: merge every shard of the run "
                     "(eval run --shard)"),
    (["1/2", "2/3"], "0.json is shard 1/2, 1.json shard 2/3: not the shards of one run"),
    (["2/2", "2/2", "1/2"], "0.json and 1.json are both shard 2/2"),
    ([None, "1/2"], "0.json is a whole run, 1.json shard 1/2: merge the shards of one run, "
                    "and only them"),
    (["1/2", None], "1.json is a whole run, 0.json shard 1/2: merge the shards of one run, "
                    "and only them"),
    (["x"], "0.json says it is shard 'x', which is not I/N"),
])
def test_shards_that_are_not_one_whole_run_are_refused(labels: list[str | None],
                                                        message: str) -> None:
    with pytest.raises(UsageError) as caught:
        merged(*labels)
    assert str(caught.value) == message


def test_every_shard_once_or_whole_results_merge() -> None:
    got = merged("2/3", "3/3", "1/3")
    assert (got.shard, [c.id for c in got.cases], got.overall.recall) == \
        (None, ["c0", "c1", "c2"], 1.0)
    # Whole results of different cases (a corpus grown since) may still be joined.
    assert [c.id for c in merged(None, None).cases] == ["c0", "c1"]


def test_a_lone_shard_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    results.write(part("alpha", "1/2"), tmp_path / "shard-1.json")
    out = tmp_path / "merged.json"
    got = run_cli("eval", "merge", str(tmp_path / "shard-1.json"), "-o", str(out))
    assert (got.code, got.stderr) == (2, "reviewer: error: shard 2/2 is missing: merge every "
                                         "shard of the run (eval run --shard)\n")
    assert not out.exists()
