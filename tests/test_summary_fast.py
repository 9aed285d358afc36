"""The vectorised summary (issue 12): ``aiq_rows`` over all replicates at once and ``summarize``
batching a family's curves, bit for bit against the per-replicate, per-curve way.

The references here are the straightforward ones: ``aiq(*ndch(row))`` for each replicate, and
``interval`` called once per curve (or per gap); ``summarize`` run with them patched in must give
exactly the same tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.engine import metrics
from routerbench.engine.bootstrap import interval
from routerbench.engine.metrics import aiq, aiq_rows, ndch
from routerbench.sweeps import summary
from routerbench.sweeps.cells import Cell, CellResult
from routerbench.sweeps.summary import POINT_COLUMNS, gap_closed, summarize


def naive_aiq_rows(cost: np.ndarray, quality: np.ndarray, c_min: float, c_max: float) -> np.ndarray:
    """One replicate at a time: the hull, then its AIQ."""
    return np.array(
        [aiq(*ndch(c, q), c_min, c_max) for c, q in zip(cost, quality, strict=True)],
        dtype=np.float64,
    )


def naive_intervals(
    samples: Sequence[np.ndarray], confidence: float, bounds: tuple[float, float]
) -> list[np.ndarray]:
    """One quantile call per curve."""
    return [interval(s, confidence, bounds=bounds) for s in samples]


def assert_bits(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal bit for bit (a zero's sign included)."""
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.view(np.int64), expected.view(np.int64))


VALUES = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 4.0]) | st.floats(0, 4, width=64)


class TestAiqRows:
    @settings(max_examples=300, deadline=None)
    @given(
        k=st.integers(1, 40),
        b=st.integers(1, 8),
        data=st.data(),
        ends=st.tuples(VALUES, VALUES).map(sorted),
        equal=st.booleans(),
    )
    def test_equals_per_replicate(self, k: int, b: int, data, ends, equal: bool) -> None:
        """Ties, repeated points and costs on and beyond the range's ends; a degenerate range."""
        c_min, c_max = (ends[0], ends[0]) if equal else ends
        c = np.array(data.draw(st.lists(VALUES, min_size=b * k, max_size=b * k))).reshape(b, k)
        qualities = st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0, 1)
        q = np.array(data.draw(st.lists(qualities, min_size=b * k, max_size=b * k))).reshape(b, k)
        assert_bits(aiq_rows(c, q, c_min, c_max), naive_aiq_rows(c, q, c_min, c_max))

    @pytest.mark.parametrize("k", [3, 7, 8, 9, 16, 33, 129, 300])
    @pytest.mark.parametrize(
        "shape", ["uniform", "concave", "concave+noise", "one high point", "collinear"]
    )
    def test_hard_shapes(self, k: int, shape: str) -> None:
        """Many vertices (sums of more than 8 and 128 terms, in NumPy's pairwise order), many
        passes of ndch, rows that ndch finishes with the monotone chain, near-collinear points."""
        rng = np.random.default_rng(k)
        c = np.sort(rng.uniform(0.0, 1.0, (25, k)), axis=1)
        q = {
            "uniform": rng.uniform(0.0, 1.0, (25, k)),
            "concave": np.sqrt(c),
            "concave+noise": np.sqrt(c) + rng.normal(0.0, 1e-9, (25, k)),
            "one high point": np.column_stack([np.sqrt(c[:, :-1]), np.full(25, 10.0)]),
            "collinear": 0.3 * c + 0.1 + rng.choice([0.0, 1e-17, -1e-17], (25, k)),
        }[shape]
        for c_min, c_max in [(0.0, 1.0), (0.2, 0.7), (0.5, 0.5), (1.5, 2.0)]:
            assert_bits(aiq_rows(c, q, c_min, c_max), naive_aiq_rows(c, q, c_min, c_max))

    def test_chain_rows_are_covered(self) -> None:
        """The "one high point" rows do reach the monotone chain (the case above tests it)."""
        c = np.sort(np.random.default_rng(0).uniform(0.0, 1.0, (4, 40)), axis=1)
        q = np.column_stack([np.sqrt(c[:, :-1]), np.full(4, 10.0)])
        with mock.patch.object(metrics, "_chain", wraps=metrics._chain) as chain:
            aiq_rows(c, q, 0.0, 1.0)
        assert chain.call_count == 4

    def test_blocks(self) -> None:
        """More rows than one block of about a million points holds: the same as row by row."""
        rng = np.random.default_rng(1)
        c, q = rng.uniform(0.0, 1.0, (5300, 200)), rng.uniform(0.0, 1.0, (5300, 200))
        assert 5300 * 200 > 1 << 20
        assert_bits(aiq_rows(c, q, 0.1, 0.9), naive_aiq_rows(c, q, 0.1, 0.9))

    def test_no_rows(self) -> None:
        assert aiq_rows(np.empty((0, 3)), np.empty((0, 3)), 0.0, 1.0).shape == (0,)

    def test_bad_input(self) -> None:
        with pytest.raises(ValueError, match=r"cost must be finite, got inf at row 1, column 0"):
            aiq_rows([[1.0, 2.0], [np.inf, 1.0]], [[0.5, 0.5], [0.5, 0.5]], 0.0, 1.0)


def _cells() -> list[tuple[str, dict]]:
    """Real router configurations (their ids and params are built from the routers)."""
    return [
        ("single", {"model": "a"}),
        ("single", {"model": "b"}),
        ("zero", {}),
        ("knn", {"k": 3}),
        ("knn", {"k": 5}),
        ("cascade", {"eps": 0.1}),
        ("frontier", {}),
    ]


@st.composite
def cell_results(draw: st.DrawFn) -> list[CellResult]:
    """Cells on two families with random points, knob counts, exact paths and replicates: some
    replicates without weight (NaN rows) and families too small for an interval in "fa"."""
    b = draw(st.integers(2, 12))
    fams = {"fa": draw(st.integers(1, 40)), "fb": draw(st.integers(2, 40))}  # test prompts
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    results = []
    for index, (router, params) in enumerate(_cells()):
        cell = Cell(index, router, params, "s")
        res = CellResult(cell)
        k = 1 if router == "single" else draw(st.sampled_from([1, 3, 5, 8]))
        for fam, n in fams.items():
            cost = rng.choice([0.5, 1.0, 2.0], k) * rng.uniform(0.5, 1.5, k)
            quality = rng.uniform(0.0, 1.0, k)
            for j in range(k):
                row: dict[str, Any] = dict.fromkeys(POINT_COLUMNS, "")
                row.update(
                    cell_id=cell.cell_id,
                    family=fam,
                    split="s",
                    router=router,
                    params=cell.params_json,
                    knob=float(j),
                    cost_sum=cost[j] * n,
                    cost_mean=cost[j],
                    quality_mean=quality[j],
                    n=n,
                    status="ok",
                    seconds=0.0,
                )
                res.rows.append(row)
            boot_c = cost * rng.uniform(0.8, 1.2, (b, k))
            boot_q = np.clip(quality + rng.normal(0.0, 0.1, (b, k)), 0.0, 1.0)
            if fam == "fa" and draw(st.booleans()):  # replicates that gave no prompt weight
                empty = rng.uniform(size=b) < 0.3
                boot_c[empty], boot_q[empty] = np.nan, np.nan
            res.boot[fam] = (boot_c, boot_q)
            if k > 1 and draw(st.booleans()):  # an exact path through the grid's points
                m = draw(st.integers(2, 30))
                res.exact[fam] = (rng.uniform(0.4, 2.5, m), rng.uniform(0.0, 1.0, m))
        results.append(res)
    return results


def naive_summarize(results: list[CellResult], **kw) -> summary.Results:
    with (
        mock.patch.object(summary, "aiq_rows", naive_aiq_rows),
        mock.patch.object(summary, "_intervals", naive_intervals),
    ):
        return summarize(results, **kw)


class TestSummarize:
    @settings(max_examples=40, deadline=None)
    @given(results=cell_results(), aiq_range=st.sampled_from(["common", "single-models"]))
    def test_equals_per_curve(self, results: list[CellResult], aiq_range: str) -> None:
        """Every value of the points and curves tables, replicates included, bit for bit."""
        ranges = {("s", "fa"): (0.5, 2.0), ("s", "fb"): (0.6, 1.8)}
        got = summarize(results, ranges, aiq_range=aiq_range, confidence=0.9)
        expected = naive_summarize(results, ranges=ranges, aiq_range=aiq_range, confidence=0.9)
        pd.testing.assert_frame_equal(got.points, expected.points, check_exact=True)
        reps = ["aiq_reps", "max_quality_reps"]  # lists with NaN: compared below
        pd.testing.assert_frame_equal(
            got.curves.drop(columns=reps), expected.curves.drop(columns=reps), check_exact=True
        )
        for col in reps:
            for a, e in zip(got.curves[col], expected.curves[col], strict=True):
                assert_bits(np.array(a, dtype=np.float64), np.array(e, dtype=np.float64))
        assert got.curves["aiq_lo"].notna().any()  # the intervals were there to compare

    @settings(max_examples=100, deadline=None)
    @given(
        reps=st.lists(
            st.lists(st.floats(0, 1) | st.just(math.nan), min_size=6, max_size=6),
            min_size=3,
            max_size=6,
        )
    )
    def test_gap_closed_per_row(self, reps: list[list[float]]) -> None:
        """Gaps with replicates left out (f <= z, NaN) have intervals of their own lengths."""
        routers = ["zero", "frontier"] + ["knn"] * (len(reps) - 2)

        def rows() -> list[dict]:
            return [
                {
                    "router": r,
                    "params": "{}",
                    "aiq": float(np.nanmean([*a, 0.0]) + i),
                    "aiq_reps": a,
                }
                for i, (r, a) in enumerate(zip(routers, reps, strict=True))
            ]

        got, expected = rows(), rows()
        gap_closed(got, 0.9)
        with mock.patch.object(summary, "_intervals", naive_intervals):
            gap_closed(expected, 0.9)
        for g, e in zip(got, expected, strict=True):
            for key in ("gap_closed", "gap_closed_lo", "gap_closed_hi", "aiq_frontier"):
                assert_bits(np.array(g[key], dtype=np.float64), np.array(e[key], dtype=np.float64))
