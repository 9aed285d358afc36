"""Cell evaluation: splits, sharding, failures, bootstrap, exact paths."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from routerbench.engine import synth
from routerbench.engine.data import RoutingData
from routerbench.engine.evaluate import BLOCK
from routerbench.sweeps.cells import (
    Cell,
    block_nodes,
    evaluate_cell,
    fit_family,
    merge_paths,
    reduce_stats,
    shard_stats,
)
from routerbench.sweeps.execute import plan, run_grid
from routerbench.sweeps.spec import parse
from routerbench.sweeps.split import make_splits


@pytest.fixture(scope="module")
def data():
    return synth.generate(12000, seed=4)


class TestSplits:
    def test_kfold_partitions_each_family(self, data) -> None:
        """k folds: test sets partition every family; train is the rest of the family."""
        fams = ["mmlu", "hellaswag"]
        splits = make_splits(data, fams, "kfold", seeds=[3], folds=4)
        assert len(splits) == 4
        for f in fams:
            rows = np.flatnonzero(data.families == f)
            tests = np.concatenate([s.test[f] for s in splits])
            assert sorted(tests.tolist()) == rows.tolist()
            for s in splits:
                assert set(s.train[f]) | set(s.test[f]) == set(rows)
                assert not set(s.train[f]) & set(s.test[f])

    def test_ood_trains_on_other_families(self, data) -> None:
        """Out of distribution: test is the whole family, train every other selected family."""
        (sp,) = make_splits(data, ["mmlu", "hellaswag", "winogrande"], "ood")
        assert set(data.families[sp.test["mmlu"]]) == {"mmlu"}
        assert set(data.families[sp.train["mmlu"]]) == {"hellaswag", "winogrande"}


def one_family(n: int, seed: int = 0) -> RoutingData:
    """n prompts of one family, 4 models, with features that predict the outcomes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    q = (x[:, :4] + rng.normal(size=(n, 4)) > 0).astype(float)
    c = np.exp(np.linspace(-9, -6, 4)) * rng.uniform(0.5, 1.5, (n, 4))
    return RoutingData(
        quality=q,
        cost=c,
        models=list("abcd"),
        prompt_ids=[f"p{i}" for i in range(n)],
        eval_names=["hellaswag"] * n,
        features=x,
    )


class TestSharding:
    def test_any_block_sharding_is_identical(self) -> None:
        """Statistics of block-aligned shards reduce to exactly the single-shard result."""
        data = one_family(3 * BLOCK + BLOCK // 2)
        (sp,) = make_splits(data, ["hellaswag"], "upstream")
        assert len(sp.test["hellaswag"]) > BLOCK  # several blocks
        cell = Cell(0, "knn", {"k": 5}, sp.name)
        fit = fit_family(data, cell, "hellaswag", sp.train["hellaswag"], sp.test["hellaswag"])
        n = len(fit.test_rows)
        whole = reduce_stats(
            fit, block_nodes(fit, 0, shard_stats(data, fit, 0, n, bootstrap=20, seed=1))
        )
        first = block_nodes(fit, 0, shard_stats(data, fit, 0, BLOCK, bootstrap=20, seed=1))
        rest = block_nodes(fit, 1, shard_stats(data, fit, BLOCK, n, bootstrap=20, seed=1))
        assert list(first) == [(0, 0)] and (0, 1) in rest  # block 1 waits for block 0
        sharded = reduce_stats(fit, {**first, **rest})
        pd.testing.assert_frame_equal(pd.DataFrame(whole.rows), pd.DataFrame(sharded.rows))
        for a, b in zip(whole.boot["hellaswag"], sharded.boot["hellaswag"], strict=True):
            assert (a == b).all()

    def test_unaligned_shard_refused(self, data) -> None:
        """A shard that does not start on a block boundary is refused."""
        (sp,) = make_splits(data, ["hellaswag"], "upstream")
        cell = Cell(0, "oracle", {}, sp.name)
        fit = fit_family(data, cell, "hellaswag", sp.train["hellaswag"], sp.test["hellaswag"])
        with pytest.raises(ValueError, match="multiple of BLOCK"):
            shard_stats(data, fit, 7, 100)


class TestEvaluateCell:
    def test_failed_cell_becomes_row(self, data) -> None:
        """A router that fails on a family gives a failed row with its error, not a crash."""
        (sp,) = make_splits(data, ["mbpp"], "upstream")
        huge = len(sp.train["mbpp"]) + 1
        res = evaluate_cell(data, Cell(0, "knn", {"k": huge}, sp.name), sp)
        (row,) = res.rows
        assert row["status"] == "failed" and "k" in row["error"]
        with pytest.raises(Exception, match="k"):
            evaluate_cell(data, Cell(0, "knn", {"k": huge}, sp.name), sp, fail_fast=True)

    def test_exact_path_curve_dominates_grid(self, data) -> None:
        """With an exact path, the curve's AIQ is at least the grid's (the grid is on the path)."""
        spec = parse(
            {
                "routers": [{"name": "knn"}],
                "data": {"families": ["mmlu"]},
                "metrics": {"bootstrap": 0},
            }
        )
        p = plan(spec, data)
        res = run_grid(spec, p)
        (curve,) = res.curves[res.curves["router"] == "knn"].itertuples()
        pts = res.points[res.points["router"] == "knn"]
        from routerbench.engine.metrics import aiq, ndch

        grid_aiq = aiq(*ndch(pts["cost_mean"], pts["quality_mean"]), curve.c_min, curve.c_max)
        assert curve.aiq >= grid_aiq - 1e-12

    def test_bootstrap_intervals_bracket_estimates(self, data) -> None:
        """Intervals exist for every curve and bracket the point estimates (almost always)."""
        spec = parse(
            {"routers": [{"name": "oracle"}, {"name": "random"}], "metrics": {"bootstrap": 100}}
        )
        res = run_grid(spec, plan(spec, data))
        c = res.curves
        assert c[["aiq_lo", "aiq_hi"]].notna().all().all()
        inside = (c["aiq_lo"] <= c["aiq"] + 1e-9) & (c["aiq"] <= c["aiq_hi"] + 1e-9)
        assert inside.mean() >= 0.9
        assert (c["aiq_hi"] - c["aiq_lo"] > 0).all()

    def test_same_spec_same_numbers(self, data) -> None:
        """Running a spec twice gives identical tables."""
        spec = parse(
            {
                "routers": [{"name": "zero"}, {"name": "knn", "grid": {"k": [3]}}],
                "split": {"kind": "seeded", "seeds": [5]},
                "metrics": {"bootstrap": 30},
            }
        )
        a, b = run_grid(spec, plan(spec, data)), run_grid(spec, plan(spec, data))
        pd.testing.assert_frame_equal(
            a.points.drop(columns="seconds"), b.points.drop(columns="seconds")
        )
        pd.testing.assert_frame_equal(a.curves, b.curves)

    def test_cells_have_stable_ids(self, data) -> None:
        """Cell ids depend on router, params, split and position only."""
        spec = parse({"routers": [{"name": "knn", "grid": {"k": [3, 4]}}]})
        ids = [c.cell_id for c in plan(spec, data).cells]
        assert ids == [c.cell_id for c in plan(spec, data).cells] and len(set(ids)) == 4
        assert [c.router for c in plan(spec, data).cells] == ["knn", "knn", "zero", "frontier"]
        c = plan(spec, data).cells[0]
        assert dataclasses.replace(c, params={"k": 9}).cell_id != c.cell_id


class TestMergePaths:
    def test_sums_step_functions_at_every_knot(self) -> None:
        """The merged path at each knot is the sum of each block's value in force there."""
        a = (np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([0.5, 0.7]))
        b = (np.array([0.0, 0.5, 3.0]), np.array([10.0, 20.0, 30.0]), np.array([0.0, 1.0, 2.0]))
        knots, cost, quality = merge_paths([a, b])
        assert knots.tolist() == [0.0, 0.5, 1.0, 3.0]
        assert cost.tolist() == [11.0, 21.0, 22.0, 32.0]
        assert quality.tolist() == [0.5, 1.5, 1.7, 2.7]

    def test_refuses_paths_with_different_first_knots(self) -> None:
        """Blocks starting at different knob values are refused, not read through index -1."""
        a = (np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([0.0, 0.0]))
        b = (np.array([0.5, 2.0]), np.array([10.0, 20.0]), np.array([0.0, 0.0]))
        with pytest.raises(ValueError, match="start at different knob values"):
            merge_paths([a, b])
