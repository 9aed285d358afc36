"""The oracle frontier, the gap closed and paired comparisons, against direct computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.engine.bootstrap import poisson_weights
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError
from routerbench.engine.metrics import aiq, ndch
from routerbench.engine.splits import upstream_split
from routerbench.engine.synth import generate
from routerbench.routers.base import create
from routerbench.routers.frontier import lambda_grid
from routerbench.sweeps.compare import paired, pairs, rank_bands
from routerbench.sweeps.report import pairs_text
from routerbench.sweeps.run import evaluate


def small(quality: np.ndarray, cost: np.ndarray) -> RoutingData:
    n, m = quality.shape
    return RoutingData(
        quality=quality,
        cost=cost,
        models=tuple(f"m{j}" for j in range(m)),
        prompt_ids=np.arange(n).astype(str),
        eval_names=np.array(["mmlu-x"] * n),
    )


def all_routings(q: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean cost and quality of every deterministic routing of the prompts (brute force)."""
    n, m = q.shape
    choices = np.array(list(itertools.product(range(m), repeat=n)))
    rows = np.arange(n)
    return c[rows, choices].mean(axis=1), q[rows, choices].mean(axis=1)


outcomes = st.integers(2, 5).flatmap(
    lambda n: st.integers(2, 3).flatmap(
        lambda m: st.tuples(
            st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=n * m, max_size=n * m),
            st.lists(st.integers(1, 8), min_size=n * m, max_size=n * m),
            st.just((n, m)),
        )
    )
)


class TestFrontierPath:
    @settings(max_examples=60, deadline=None)
    @given(outcomes)
    def test_hull_is_the_envelope_of_every_routing(self, drawn) -> None:
        """The frontier's exact path has the hull of all m**n routings (brute force)."""
        qs, cs, shape = drawn
        q = np.array(qs).reshape(shape)
        c = np.array(cs, dtype=np.float64).reshape(shape) / 8.0
        data = small(q, c)
        fitted = create("frontier").fit(data)
        _, cost_sum, quality_sum, n = fitted.exact_path(fitted.score(data), data)
        got = ndch(cost_sum / n, quality_sum / n)
        want = ndch(*all_routings(q, c))
        # The same piecewise-linear function (a collinear vertex may appear in one only).
        assert got[0][0] == pytest.approx(want[0][0]) and got[0][-1] == pytest.approx(want[0][-1])
        x = np.union1d(got[0], want[0])
        np.testing.assert_allclose(np.interp(x, *got), np.interp(x, *want), atol=1e-12)

    def test_last_knob_is_the_oracle(self) -> None:
        """At λ = +inf every prompt gets the best model, the cheapest among equals."""
        d = generate(400, 3)
        fitted = create("frontier").fit(d)
        oracle = create("oracle").fit(d)
        got = fitted.decide(fitted.score(d), np.array([np.inf]))[0]
        np.testing.assert_array_equal(got, oracle.score(d))

    def test_grid_spans_the_training_path(self) -> None:
        """The λ grid has at most `grid` values, increasing, from just above 0 to +inf."""
        d = generate(2000, 1)
        g = lambda_grid(d, 16)
        assert len(g) <= 16 and g[0] > 0 and np.isposinf(g[-1])
        assert np.all(np.diff(g) > 0)

    def test_bad_grid_refused(self) -> None:
        """A grid below 2 points is a one-line RouterError."""
        with pytest.raises(RouterError, match=r"grid must be an integer >= 2 \(got 1\)"):
            create("frontier", grid=1)


@pytest.fixture(scope="module")
def run():
    d = generate(3000, 0)
    routers = [
        create("frontier"),
        create("zero"),
        create("oracle"),
        create("single", model=d.models[0]),
        create("random"),
        create("knn", k=10),
    ]
    return d, evaluate(d, routers, bootstrap=60, seed=5, families=["mmlu", "hellaswag"])


class TestGapClosed:
    def test_frontier_is_the_ceiling(self, run) -> None:
        """No router's AIQ exceeds its family's frontier AIQ; aiq_frontier is that value."""
        _, res = run
        cv = res.curves
        for _, g in cv.groupby("family"):
            front = g.loc[g["router"] == "frontier", "aiq"].item()
            assert (g["aiq"] <= front + 1e-12).all()
            assert (g["aiq_frontier"] == front).all()

    def test_gap_matches_definition(self, run) -> None:
        """gap = (a - zero) / (frontier - zero), 0 for zero and 1 for the frontier."""
        _, res = run
        for _, g in res.curves.groupby("family"):
            z = g.loc[g["router"] == "zero", "aiq"].item()
            f = g.loc[g["router"] == "frontier", "aiq"].item()
            np.testing.assert_allclose(g["gap_closed"], (g["aiq"] - z) / (f - z), rtol=1e-12)
            assert g.loc[g["router"] == "zero", "gap_closed"].item() == 0.0
            assert g.loc[g["router"] == "frontier", "gap_closed"].item() == 1.0

    def test_gap_interval_from_paired_replicates(self, run) -> None:
        """The gap's interval is the percentile interval of per-replicate gaps."""
        _, res = run
        for _, g in res.curves.groupby("family"):
            z, f = (
                np.array(g.loc[g["router"] == r, "aiq_reps"].item()) for r in ("zero", "frontier")
            )
            for _, row in g.iterrows():
                per = (np.array(row["aiq_reps"]) - z) / (f - z)
                lo, hi = np.quantile(per[np.isfinite(per)], [0.025, 0.975])
                assert row["gap_closed_lo"] == pytest.approx(lo, abs=1e-12)
                assert row["gap_closed_hi"] == pytest.approx(hi, abs=1e-12)


def direct_replicates(d: RoutingData, choice: np.ndarray, rows: np.ndarray, seed: int, b: int):
    """Replicate mean cost and quality of a one-point router, from the weights directly."""
    w = poisson_weights(seed, d.keys()[rows], b)
    c = d.cost[rows, choice[rows]]
    q = d.quality[rows, choice[rows]]
    return (w @ c) / w.sum(axis=1), (w @ q) / w.sum(axis=1)


class TestPaired:
    def test_paired_interval_is_a_direct_computation(self, run) -> None:
        """oracle − single: the paired AIQ interval equals one computed from the weights."""
        d, res = run
        fam = "mmlu"
        cv = res.curves[res.curves["family"] == fam]
        rows = np.flatnonzero((d.families == fam) & ~upstream_split(d.families))
        c_min, c_max = cv["c_min"].iloc[0], cv["c_max"].iloc[0]
        oracle = create("oracle").fit(d).score(d)
        single = np.zeros(d.n_prompts, dtype=np.int64)
        reps = []
        for choice in (oracle, single):
            mc, mq = direct_replicates(d, choice, rows, 5, 60)
            reps.append(
                np.array([aiq(*ndch([c], [q]), c_min, c_max) for c, q in zip(mc, mq, strict=True)])
            )
        want = np.quantile(reps[0] - reps[1], [0.025, 0.975])
        a = cv[cv["router"] == "oracle"].iloc[0]
        b = cv[cv["router"] == "single"].iloc[0]
        got = paired(a, b)
        assert got["aiq_diff"] == pytest.approx(a["aiq"] - b["aiq"])
        np.testing.assert_allclose([got["aiq_diff_lo"], got["aiq_diff_hi"]], want, atol=1e-12)
        assert got["aiq_significant"] == bool(want[0] > 0 or want[1] < 0)

    def test_paired_is_narrower_than_unpaired(self, run) -> None:
        """Pairing removes the shared prompt noise: knn vs zero differ less than their spread."""
        _, res = run
        cv = res.curves[res.curves["family"] == "mmlu"]
        a = cv[cv["router"] == "knn"].iloc[0]
        b = cv[cv["router"] == "zero"].iloc[0]
        got = paired(a, b)
        width = got["aiq_diff_hi"] - got["aiq_diff_lo"]
        assert width < (a["aiq_hi"] - a["aiq_lo"]) + (b["aiq_hi"] - b["aiq_lo"])

    def test_rank_bands_direct(self) -> None:
        """A band starts where the paired interval of (above − this) lies above 0."""
        rng = np.random.default_rng(0)
        base = rng.normal(size=200)
        reps = [base + 0.5, base + 0.5 + rng.normal(0, 0.01, 200), base, base - 0.001]
        values = [float(np.mean(r)) for r in reps]
        want = [1]
        for i in range(1, 4):
            lo = np.quantile(np.array(reps[i - 1]) - np.array(reps[i]), 0.025)
            want.append(want[-1] + int(lo > 0))
        assert rank_bands(values, reps) == want == [1, 1, 2, 3]


class TestPairs:
    def test_every_pair_equals_a_direct_computation(self, run) -> None:
        """pairs(): one row per pair of a family, higher AIQ first, intervals from the reps."""
        _, res = run
        got = pairs(res.curves)
        for fam, g in res.curves.groupby("family"):
            n = len(g)
            rows = got[got["family"] == fam]
            assert len(rows) == n * (n - 1) // 2
            by = g.set_index("label")
            for r in rows.itertuples():
                a, b = by.loc[r.a], by.loc[r.b]
                assert a["aiq"] >= b["aiq"]
                d = np.array(a["aiq_reps"]) - np.array(b["aiq_reps"])
                lo, hi = np.quantile(d[np.isfinite(d)], [0.025, 0.975])
                assert (r.aiq_diff_lo, r.aiq_diff_hi) == pytest.approx((lo, hi), abs=1e-12)

    def test_report_lists_router_pairs_only(self, run) -> None:
        """report --pairs: the routers' pairs (no reference), each with its interval."""
        _, res = run
        text = pairs_text(res.curves)
        assert "knn" in text and "random" in text
        for ref in ("frontier", "oracle", "zero", "single:"):
            assert ref not in text
        lines = [x for x in text.splitlines()[1:] if x.strip()]
        assert len(lines) == 2  # knn vs random, in each of the two families
        assert not text.startswith("SYNTHETIC")
        assert pairs_text(res.curves, synthetic=True).startswith("SYNTHETIC DATA")
