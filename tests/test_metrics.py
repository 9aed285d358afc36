"""Metric kernels: NDCH, hull values, AIQ (paper and upstream), max quality, PGR/APGR/CPT.

The references below are deliberately naive: brute force over all pairs of points, and a plain
re-implementation of the upstream hull procedure.  Integer coordinates keep them exact.
"""

from __future__ import annotations

import doctest
import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import ArrayLike

import routerbench.engine.metrics as metrics_module
from routerbench.engine.metrics import (
    aiq,
    aiq_rows,
    aiq_upstream_path,
    apgr,
    common_range,
    cpt,
    hull_value,
    max_quality,
    ndch,
    pgr,
)

Points = tuple[np.ndarray, np.ndarray]

# ----------------------------------------------------------------------------- references


def brute_value(cost: ArrayLike, quality: ArrayLike, x: ArrayLike) -> np.ndarray:
    """R̃(x) as the best quality of a mix of two points costing at most x (0 if none can)."""
    c, q = np.asarray(cost, float), np.asarray(quality, float)
    xs = np.atleast_1d(np.asarray(x, float))[:, None, None]
    ci, cj, qi, qj = c[None, :, None], c[None, None, :], q[None, :, None], q[None, None, :]
    alone = np.where(c[None, :] <= xs[:, :, 0], q[None, :], -np.inf).max(axis=1)
    spans = (ci <= xs) & (xs < cj)  # mix i and j to cost exactly x
    with np.errstate(divide="ignore", invalid="ignore"):
        mixed = np.where(spans, qi + (qj - qi) * (xs - ci) / (cj - ci), -np.inf).max(axis=(1, 2))
    best = np.maximum(alone, mixed)
    return np.where(np.isfinite(best), best, 0.0)


def brute_vertices(cost: ArrayLike, quality: ArrayLike) -> list[tuple[float, float]]:
    """NDCH vertices: points no cheaper-or-equal point matches and no chord reaches (O(n^3))."""
    c, q = np.asarray(cost, float).tolist(), np.asarray(quality, float).tolist()
    pts = sorted(set(zip(c, q, strict=True)))
    out = []
    for ck, qk in pts:
        if any(cj <= ck and qj >= qk and (cj, qj) != (ck, qk) for cj, qj in pts):
            continue
        if any(
            ci < ck < cj and (qi - qk) * (cj - ci) + (qj - qi) * (ck - ci) >= 0
            for ci, qi in pts
            for cj, qj in pts
        ):
            continue
        out.append((ck, qk))
    return out


def reference_chain(cost: ArrayLike, quality: ArrayLike) -> list[tuple[float, float]]:
    """Textbook Andrew monotone chain on all points, then cut at the first maximum quality."""
    c, q = np.asarray(cost, float), np.asarray(quality, float)
    order = np.lexsort((q, c))
    hull: list[tuple[float, float]] = []
    for x, y in zip(c[order].tolist(), q[order].tolist(), strict=True):
        while hull and hull[-1][0] == x:  # same cost: the later point is at least as good
            hull.pop()
        while len(hull) >= 2:
            (ax, ay), (bx, by) = hull[-2], hull[-1]
            if (bx - ax) * (y - ay) - (by - ay) * (x - ax) < 0:
                break
            hull.pop()
        hull.append((x, y))
    top = [y for _, y in hull]
    return hull[: top.index(max(top)) + 1]


def upstream_hull(cost: ArrayLike, quality: ArrayLike) -> list[tuple[float, float]]:
    """The original repo's hull procedure as described: sample the upper hull at every interior
    cost by trying all chords, start at the cheapest point, add the dearest point if it is not
    lower than the last sample, then drop each point lower than its predecessor (one pass).
    O(n^3); needs at least three distinct costs."""
    c, q = np.asarray(cost, float), np.asarray(quality, float)
    order = np.argsort(c, kind="stable")
    pts = list(zip(c[order].tolist(), q[order].tolist(), strict=True))
    lo, hi = pts[0][0], pts[-1][0]
    samples = []
    for x in sorted({px for px, _ in pts if lo < px < hi}):
        best = max(py for px, py in pts if px == x)
        for x1, y1 in pts:
            for x2, y2 in pts:
                if x1 < x < x2:
                    best = max(best, y1 + (y2 - y1) * (x - x1) / (x2 - x1))
        samples.append((x, best))
    hull = [pts[0], *samples]
    if pts[-1][1] >= samples[-1][1]:
        hull.append(pts[-1])
    return [p for k, p in enumerate(hull) if k == 0 or p[1] >= hull[k - 1][1]]


def upstream_aiq(curves: list[Points]) -> list[float]:
    """calc_AIQ as described: extend flat to the largest hull cost X, trapezoids, divide by X."""
    hulls = [upstream_hull(c, q) for c, q in curves]
    x_max = max(h[-1][0] for h in hulls)
    out = []
    for h in hulls:
        pts = [*h, (x_max, h[-1][1])]
        area = sum((x2 - x1) * (y1 + y2) / 2 for (x1, y1), (x2, y2) in itertools.pairwise(pts))
        out.append(area / x_max if x_max else float("nan"))
    return out


# ----------------------------------------------------------------------------- strategies

small = st.integers(0, 20)
int_points = st.lists(st.tuples(small, small), min_size=1, max_size=25).map(
    lambda pts: (np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float))
)
float_points = st.lists(
    st.tuples(st.floats(0, 1e3, allow_subnormal=False), st.floats(0, 1, allow_subnormal=False)),
    min_size=1,
    max_size=40,
).map(lambda pts: (np.array([p[0] for p in pts]), np.array([p[1] for p in pts])))


def _upstream_ok(pts: Points) -> bool:
    """Inputs upstream handles deterministically: >= 3 costs, one point at each extreme cost."""
    c = pts[0]
    return len(np.unique(c)) >= 3 and (c == c.min()).sum() == 1 and (c == c.max()).sum() == 1


upstream_curves = st.lists(int_points.filter(_upstream_ok), min_size=1, max_size=3)


def as_pairs(hc: np.ndarray, hq: np.ndarray) -> list[tuple[float, float]]:
    return list(zip(hc.tolist(), hq.tolist(), strict=True))


# ----------------------------------------------------------------------------- tests


class TestNdch:
    @settings(max_examples=200, deadline=None)
    @given(int_points)
    def test_vertices_match_brute_force(self, pts: Points) -> None:
        """The vertices are exactly the brute-force O(n^3) NDCH vertices."""
        assert as_pairs(*ndch(*pts)) == brute_vertices(*pts)

    @settings(max_examples=150, deadline=None)
    @given(int_points)
    def test_chain_alone_matches_brute_force(self, pts: Points) -> None:
        """The monotone-chain fallback alone, run on the undominated points, gives the same."""
        c, q = pts
        other = [
            (c <= ck) & (q >= qk) & ((c != ck) | (q != qk)) for ck, qk in zip(c, q, strict=True)
        ]
        undominated = sorted(
            {(ck, qk) for ck, qk, o in zip(c, q, other, strict=True) if not o.any()}
        )
        xs, ys = np.array(undominated).T
        assert as_pairs(*metrics_module._chain(xs, ys)) == brute_vertices(c, q)

    @settings(max_examples=150, deadline=None)
    @given(int_points)
    def test_values_match_best_mixture(self, pts: Points) -> None:
        """R̃ equals the best quality of any two-point mix within budget, on and between costs."""
        xs = np.unique(np.concatenate([pts[0], pts[0] + 0.5, pts[0] - 0.25, [-1.0, 30.0]]))
        np.testing.assert_allclose(hull_value(*ndch(*pts), xs), brute_value(*pts, xs), atol=1e-12)

    @settings(max_examples=150, deadline=None)
    @given(int_points)
    def test_concave_and_increasing(self, pts: Points) -> None:
        """Cost and quality strictly increase; every middle vertex is strictly above its chord."""
        hc, hq = ndch(*pts)
        assert (np.diff(hc) > 0).all() and (np.diff(hq) > 0).all()
        cross = (hc[1:-1] - hc[:-2]) * (hq[2:] - hq[:-2]) - (hq[1:-1] - hq[:-2]) * (
            hc[2:] - hc[:-2]
        )
        assert (cross < 0).all()

    @settings(max_examples=150, deadline=None)
    @given(float_points)
    def test_dominates_every_point(self, pts: Points) -> None:
        """No input point lies above R̃, and the hull starts at the cheapest cost."""
        hc, hq = ndch(*pts)
        assert hc[0] == pts[0].min()
        assert (hull_value(hc, hq, pts[0]) >= pts[1] - 1e-9).all()

    @settings(max_examples=150, deadline=None)
    @given(float_points)
    def test_vertices_are_input_points(self, pts: Points) -> None:
        """Each vertex is one of the input points; the ends are the best cheapest point and the
        cheapest best point."""
        c, q = pts
        hc, hq = ndch(c, q)
        given_pts = set(zip(c.tolist(), q.tolist(), strict=True))
        assert set(as_pairs(hc, hq)) <= given_pts
        assert hq[0] == q[c == c.min()].max()
        assert hq[-1] == q.max() and hc[-1] == c[q == q.max()].min()

    @settings(max_examples=100, deadline=None)
    @given(float_points, st.randoms(use_true_random=False))
    def test_order_and_duplicates_ignored(self, pts: Points, rnd: random.Random) -> None:
        """Shuffling the points and repeating some of them gives the identical hull."""
        c, q = pts
        idx = list(range(len(c))) + [rnd.randrange(len(c)) for _ in range(len(c))]
        rnd.shuffle(idx)
        for a, b in zip(ndch(c, q), ndch(c[idx], q[idx]), strict=True):
            np.testing.assert_array_equal(a, b)

    @pytest.mark.parametrize(
        ("cost", "quality", "expected"),
        [
            ([2.0], [0.5], [(2.0, 0.5)]),
            ([2.0, 2.0, 2.0], [0.5, 0.5, 0.5], [(2.0, 0.5)]),
            ([3.0, 3.0, 3.0], [0.1, 0.9, 0.4], [(3.0, 0.9)]),
            ([1.0, 2.0], [0.2, 0.8], [(1.0, 0.2), (2.0, 0.8)]),
            ([1.0, 2.0], [0.8, 0.2], [(1.0, 0.8)]),
            ([1.0, 2.0], [0.5, 0.5], [(1.0, 0.5)]),
            ([1.0, 1.0, 2.0, 2.0], [0.1, 0.3, 0.2, 0.9], [(1.0, 0.3), (2.0, 0.9)]),
            ([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0], [(0.0, 0.0), (3.0, 3.0)]),
            ([0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 3.0, 1.0], [(0.0, 0.0), (1.0, 2.0), (2.0, 3.0)]),
            ([0.0, 1.0, 4.0], [0.0, 0.5, 3.0], [(0.0, 0.0), (4.0, 3.0)]),
        ],
        ids=[
            "single",
            "repeated",
            "same-cost",
            "two-up",
            "two-down",
            "two-flat",
            "cost-ties",
            "collinear",
            "falling-tail",
            "dent",
        ],
    )
    def test_hand_cases(self, cost: list, quality: list, expected: list) -> None:
        """Degenerate and small inputs give the hull worked out by hand."""
        assert as_pairs(*ndch(cost, quality)) == expected

    @pytest.mark.parametrize("shape", ["concave", "cascade", "noisy"])
    def test_large_inputs_match_textbook_chain(self, shape: str) -> None:
        """On 20,000 integer points (all pruning paths) the hull equals a plain monotone chain."""
        rng = np.random.default_rng(7)
        c = rng.permutation(20_000).astype(float)
        q = np.floor(np.sqrt(c) * 1_000)
        if shape == "cascade":  # every pass drops one point: the chain must finish the job
            q[c == c.max()] = 1e7
        if shape == "noisy":
            q += rng.integers(0, 40, c.size)
        assert as_pairs(*ndch(c, q)) == reference_chain(c, q)

    @pytest.mark.parametrize(
        ("cost", "quality", "needle"),
        [
            ([1.0, 2.0, np.nan], [0.1, 0.2, 0.3], "cost must be finite, got nan at index 2"),
            ([1.0, 2.0], [np.nan, 0.2], "quality must be finite, got nan at index 0"),
            ([1.0, np.inf], [0.1, 0.2], "cost must be finite, got inf at index 1"),
            ([], [], "need at least one point"),
            ([1.0, 2.0], [0.1], "equal length"),
            ([[1.0]], [[0.1]], "1-D"),
        ],
    )
    def test_refuses_bad_input(self, cost: list, quality: list, needle: str) -> None:
        """NaN, infinite, empty or misshapen input is a one-line ValueError naming the problem."""
        with pytest.raises(ValueError, match="ndch") as e:
            ndch(cost, quality)
        assert needle in str(e.value) and "\n" not in str(e.value)


class TestHullValue:
    def test_interpolates_flat_right_zero_left(self) -> None:
        """Linear between vertices, exact at them, flat after the last, 0 before the first."""
        got = hull_value([1.0, 3.0, 5.0], [0.25, 0.75, 1.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 9.0])
        assert got.tolist() == [0.0, 0.25, 0.5, 0.75, 0.875, 1.0, 1.0]

    def test_scalar_and_single_vertex(self) -> None:
        """A single-vertex hull is a step from 0 to its quality; a scalar gives a 0-d array."""
        assert hull_value([2.0], [0.5], [1.0, 2.0, 3.0]).tolist() == [0.0, 0.5, 0.5]
        assert hull_value([2.0], [0.5], 2.5).shape == ()

    def test_refuses_unsorted_hull(self) -> None:
        """A hull whose costs do not strictly increase is refused."""
        with pytest.raises(ValueError, match="strictly increasing"):
            hull_value([2.0, 1.0], [0.1, 0.2], 1.5)


class TestCommonRange:
    def test_max_first_and_max_last(self) -> None:
        """c_min is the largest first cost, c_max the largest last cost."""
        hulls = [([1.0, 4.0], [0.1, 0.5]), ([2.0, 3.0], [0.2, 0.6]), ([0.5], [0.3])]
        assert common_range(hulls) == (2.0, 4.0)

    def test_single_and_empty(self) -> None:
        """One hull gives its own span; no hull is refused."""
        assert common_range([([1.0, 2.0], [0.1, 0.2])]) == (1.0, 2.0)
        with pytest.raises(ValueError, match="at least one hull"):
            common_range([])


class TestAiq:
    def test_hand_case(self) -> None:
        """Ramp 0.25 -> 0.75 over [1, 3] then flat to 5: mean (0.5*2 + 0.75*2)/4."""
        assert aiq([1.0, 3.0], [0.25, 0.75], 1.0, 5.0) == pytest.approx(0.625)

    def test_zero_left_of_hull(self) -> None:
        """Cost below the hull's first vertex contributes 0 to the integral."""
        assert aiq([2.0], [1.0], 0.0, 4.0) == pytest.approx(0.5)
        assert aiq([2.0], [1.0], 0.0, 1.0) == 0.0

    def test_degenerate_range(self) -> None:
        """c_min == c_max gives R̃ there; c_max < c_min and NaN bounds are refused."""
        assert aiq([1.0, 3.0], [0.25, 0.75], 2.0, 2.0) == pytest.approx(0.5)
        with pytest.raises(ValueError, match="c_min <= c_max"):
            aiq([1.0, 3.0], [0.25, 0.75], 3.0, 2.0)
        with pytest.raises(ValueError, match="finite"):
            aiq([1.0, 3.0], [0.25, 0.75], np.nan, 2.0)

    @settings(max_examples=100, deadline=None)
    @given(int_points, st.floats(0, 1), st.floats(0, 1))
    def test_between_end_values(self, pts: Points, a: float, b: float) -> None:
        """Within the hull's span, AIQ lies between R̃(c_min) and R̃(c_max), hence within the
        hull's quality range."""
        hc, hq = ndch(*pts)
        lo, hi = sorted((a, b))
        c_min, c_max = hc[0] + lo * (hc[-1] + 5 - hc[0]), hc[0] + hi * (hc[-1] + 5 - hc[0])
        got = aiq(hc, hq, c_min, c_max)
        assert hull_value(hc, hq, c_min) - 1e-9 <= got <= hull_value(hc, hq, c_max) + 1e-9
        assert hq.min() - 1e-9 <= got <= hq.max() + 1e-9

    @settings(max_examples=60, deadline=None)
    @given(int_points, st.floats(-5, 30), st.floats(0.5, 30))
    def test_equals_fine_numeric_integral(self, pts: Points, c_min: float, width: float) -> None:
        """AIQ equals a midpoint-rule integral of the brute-force R̃ on 4,000 cells."""
        hc, hq = ndch(*pts)
        edges = np.linspace(c_min, c_min + width, 4_001)
        numeric = brute_value(*pts, (edges[1:] + edges[:-1]) / 2).mean()
        assert aiq(hc, hq, c_min, c_min + width) == pytest.approx(numeric, abs=5e-3)

    @settings(max_examples=100, deadline=None)
    @given(int_points, st.floats(-5, 30), st.floats(0, 10), st.floats(0, 10))
    def test_additive_over_ranges(self, pts: Points, a: float, w1: float, w2: float) -> None:
        """Integrals over [a, b] and [b, c] add up to the integral over [a, c]."""
        hc, hq = ndch(*pts)
        b, c = a + w1, a + w1 + w2
        whole = aiq(hc, hq, a, c) * (c - a)
        parts = aiq(hc, hq, a, b) * (b - a) + aiq(hc, hq, b, c) * (c - b)
        assert whole == pytest.approx(parts, abs=1e-9)


class TestAiqRows:
    @settings(max_examples=200, deadline=None)
    @given(
        k=st.integers(1, 4),
        b=st.integers(1, 6),
        data=st.data(),
        lo=st.floats(0, 3, allow_nan=False),
        width=st.sampled_from([0.0, 0.5, 1.0, 2.5]),
    )
    def test_equals_aiq_of_each_row(self, k: int, b: int, data, lo: float, width: float) -> None:
        """Bit for bit ``aiq(*ndch(row))`` per row, one-point rows (vectorised) included; costs
        on the range's ends and beyond it."""
        vals = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 3.5, 6.0]) | st.floats(0, 6)
        c = np.array(data.draw(st.lists(vals, min_size=b * k, max_size=b * k))).reshape(b, k)
        q = np.array(data.draw(st.lists(st.floats(0, 1), min_size=b * k, max_size=b * k))).reshape(
            b, k
        )
        expected = [aiq(*ndch(c[i], q[i]), lo, lo + width) for i in range(b)]
        np.testing.assert_array_equal(aiq_rows(c, q, lo, lo + width), expected)

    def test_bad_input(self) -> None:
        with pytest.raises(ValueError, match="aiq_rows: cost and quality must be 2-D"):
            aiq_rows([1.0], [1.0], 0.0, 1.0)
        with pytest.raises(ValueError, match="quality must be finite"):
            aiq_rows([[1.0]], [[np.nan]], 0.0, 1.0)
        with pytest.raises(ValueError, match="c_min <= c_max"):
            aiq_rows([[1.0]], [[1.0]], 2.0, 1.0)


class TestAiqUpstreamPath:
    @settings(max_examples=100, deadline=None)
    @given(upstream_curves)
    def test_matches_upstream_procedure(self, curves: list) -> None:
        """Equals the upstream hull and calc_AIQ arithmetic up to rounding where upstream is
        deterministic (at least 3 costs, one point at each extreme cost)."""
        np.testing.assert_allclose(aiq_upstream_path(curves), upstream_aiq(curves), rtol=1e-12)

    def test_flat_top_extends_range(self) -> None:
        """A flat top keeps the upstream hull going: X is the dearest point of best quality."""
        # hull (0,0)-(1,1), flat to X = 2: area 0.5 + 1 = 1.5, over X = 2
        assert aiq_upstream_path([([0.0, 1.0, 2.0], [0.0, 1.0, 1.0])]).tolist() == [0.75]

    def test_depends_on_comparison_set(self) -> None:
        """Adding a dearer router changes X and hence every router's upstream AIQ."""
        a = ([1.0, 2.0], [0.5, 1.0])
        alone = aiq_upstream_path([a])[0]  # (0.75 * 1) / 2
        with_b = aiq_upstream_path(
            [a, ([1.0, 4.0], [0.25, 0.5])]
        )  # A: (0.75 + 2) / 4; B: 0.375*3/4
        assert alone == pytest.approx(0.375)
        np.testing.assert_allclose(with_b, [2.75 / 4, 1.125 / 4])

    def test_relation_to_paper_aiq(self) -> None:
        """Upstream AIQ = paper AIQ over [own first cost, X] scaled by (X - first cost) / X."""
        curves = [([1.0, 2.0, 3.0], [0.2, 0.6, 0.7]), ([0.5, 4.0, 6.0], [0.1, 0.5, 0.5])]
        x_max = 6.0  # the second router's flat top reaches cost 6
        for got, (c, q) in zip(aiq_upstream_path(curves), curves, strict=True):
            hc, hq = ndch(c, q)
            assert got == pytest.approx(aiq(hc, hq, hc[0], x_max) * (x_max - hc[0]) / x_max)

    def test_few_costs_and_zero_range(self) -> None:
        """Two distinct costs work (upstream fails there, see aiq_upstream); all-zero costs give NaN
        like 0/0."""
        assert aiq_upstream_path([([1.0, 2.0], [0.5, 0.5])]).tolist() == [0.25]  # 0.5 * 1 / X=2
        assert np.isnan(aiq_upstream_path([([0.0, 0.0], [0.5, 0.7])])).all()
        with pytest.raises(ValueError, match="aiq_upstream_path: need at least one curve"):
            aiq_upstream_path([])


class TestMaxQuality:
    @settings(max_examples=100, deadline=None)
    @given(int_points)
    def test_first_point_reaching_max(self, pts: Points) -> None:
        """Returns the best quality and the cost of the first point (in order) reaching it."""
        best, at = -np.inf, np.nan
        for c, q in zip(*pts, strict=True):
            if q > best:
                best, at = q, c
        assert max_quality(*pts) == (best, at)

    def test_ties_take_first(self) -> None:
        """A later, cheaper point with the same quality does not replace the first."""
        assert max_quality([3.0, 1.0, 2.0], [0.9, 0.9, 0.5]) == (0.9, 3.0)

    def test_refuses_nan(self) -> None:
        """NaN quality is refused."""
        with pytest.raises(ValueError, match="quality must be finite"):
            max_quality([1.0], [np.nan])


class TestPgr:
    def test_hand_values(self) -> None:
        """Weak maps to 0, strong to 1, halfway to 0.5, beyond strong above 1."""
        assert pgr([0.5, 1.0, 0.75, 1.25], 0.5, 1.0).tolist() == [0.0, 1.0, 0.5, 1.5]

    def test_refuses_no_gap(self) -> None:
        """A strong model that is not better than the weak one is refused."""
        with pytest.raises(ValueError, match="q_strong > q_weak"):
            pgr([0.5], 0.7, 0.7)


class TestApgr:
    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.floats(0, 1), max_size=10), st.floats(0, 0.5), st.floats(0.01, 0.5))
    def test_straight_line_is_half(self, shares: list, q_weak: float, gap: float) -> None:
        """Points on the line from weak (share 0) to strong (share 1) give APGR 0.5."""
        s = np.array([0.0, *shares, 1.0])
        assert apgr(s, q_weak + gap * s, q_weak, q_weak + gap) == pytest.approx(0.5, abs=1e-9)

    def test_hand_cases(self) -> None:
        """One point, a dip that the envelope fills, and a router that never improves."""
        assert apgr([0.5], [0.875], 0.5, 1.0) == pytest.approx(0.625)  # PGR 0, .75, 1
        dip = apgr([0.0, 0.5, 0.75, 1.0], [0.5, 1.0, 0.5, 1.0], 0.5, 1.0)
        assert dip == pytest.approx(0.25 + 0.5)  # ramp to 1 at 0.5, then held at 1
        flat = apgr([0.0, 0.5, 1.0], [0.5, 0.5, 0.5], 0.5, 1.0)
        assert flat == pytest.approx(0.0)  # no endpoint added: share 1 is given

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12),
        st.integers(0, 100),
    )
    def test_monotone_in_quality_and_order_free(self, pts: list, which: int) -> None:
        """Raising a point's quality never lowers APGR, and point order does not matter."""
        s, q = np.array(pts).T
        base = apgr(s, q, 0.25, 0.75)
        raised = q.copy()
        raised[which % q.size] += 0.1
        assert apgr(s, raised, 0.25, 0.75) >= base - 1e-12
        assert apgr(s[::-1], q[::-1], 0.25, 0.75) == base

    def test_refuses_bad_share(self) -> None:
        """Shares outside [0, 1] and NaN are refused."""
        with pytest.raises(ValueError, match=r"strong_share must lie in \[0, 1\]"):
            apgr([1.5], [0.6], 0.5, 1.0)
        with pytest.raises(ValueError, match="strong_share must be finite"):
            apgr([np.nan], [0.6], 0.5, 1.0)


class TestCpt:
    @settings(max_examples=100, deadline=None)
    @given(st.floats(0, 1), st.floats(0, 0.5), st.floats(0.01, 0.5))
    def test_straight_line_is_identity(self, target: float, q_weak: float, gap: float) -> None:
        """On the straight line from weak to strong, reaching PGR t takes share t."""
        s = np.array([0.0, 0.3, 1.0])
        got = cpt(s, q_weak + gap * s, q_weak, q_weak + gap, target)
        assert got == pytest.approx(target, abs=1e-9)

    def test_hand_cases(self) -> None:
        """Single point, a dip, an unreachable target and the awkward decimal endpoints."""
        assert cpt([0.5], [0.875], 0.5, 1.0, 0.375) == pytest.approx(0.25)
        dip = [0.0, 0.2, 0.6, 1.0], [0.5, 0.9, 0.7, 1.0]  # PGR 0, .8, .4, 1: envelope .8 on .2-.6
        assert cpt(*dip, 0.5, 1.0, 0.8) == pytest.approx(0.2)
        assert cpt(*dip, 0.5, 1.0, 0.9) == pytest.approx(0.8)  # .8 at .6 -> 1 at 1
        assert np.isnan(cpt([0.0, 1.0], [0.5, 0.9], 0.5, 1.0, 0.9))
        assert cpt([0.5], [0.4], 0.1, 0.7, 1.0) == 1.0  # the added (1, q_strong) is reached
        assert cpt([0.5], [0.4], 0.1, 0.7, 0.0) == 0.0

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12),
        st.lists(st.floats(-0.5, 1.5), min_size=2, max_size=6),
    )
    def test_monotone_in_target(self, pts: list, targets: list) -> None:
        """A higher target never needs a smaller share; NaNs only above every reachable one."""
        s, q = np.array(pts).T
        got = [cpt(s, q, 0.25, 0.75, t) for t in sorted(targets)]
        reached = [g for g in got if not np.isnan(g)]
        assert reached == sorted(reached)
        assert all(np.isnan(g) for g in got[len(reached) :])

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12),
        st.floats(0, 1),
    )
    def test_least_share_on_envelope(self, pts: list, target: float) -> None:
        """The envelope (running best PGR) reaches the target at the answer and not before."""
        s, q = np.array(pts).T
        got = cpt(s, q, 0.25, 0.75, target)
        best: dict[float, float] = {0.0: 0.0, 1.0: 1.0}  # endpoints, overridden if given
        for share in set(s.tolist()):
            best[share] = pgr(q[s == share], 0.25, 0.75).max()
        xs = sorted(best)
        env = np.maximum.accumulate([best[x] for x in xs])
        grid = np.linspace(0, 1, 2001)
        hit = grid[np.interp(grid, xs, env) >= target]
        if hit.size == 0:
            assert np.isnan(got) or got > 1 - 1e-3
        else:
            assert hit[0] - 1e-3 <= got <= hit[0] + 1e-6

    def test_refuses_nan_target(self) -> None:
        """A NaN target is refused."""
        with pytest.raises(ValueError, match="target must be finite"):
            cpt([0.5], [0.6], 0.5, 1.0, np.nan)


class TestDocstrings:
    def test_examples_run(self) -> None:
        """Every docstring example in the module runs and prints what it shows."""
        result = doctest.testmod(metrics_module)
        assert result.attempted >= 9 and result.failed == 0
