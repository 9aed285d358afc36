"""The original RouterBench code's hull and AIQ (``upstream_hull``, ``aiq_upstream``), bit for bit.

The reference here is a clean-room transcription of the original's rules (evaluation/AIQ.py at
commit 30e0925a), written from their description in a deliberately literal, slow style: Python
loops over every pair and every point, each chord value taken from ``np.interp`` on two-point
arrays, the entries kept in a dict in the order they are first met.  Production is vectorised;
the two are compared with ``==`` (``assert_array_equal``), never with a tolerance.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import ArrayLike

from routerbench.engine.metrics import (
    UpstreamHullError,
    aiq_upstream,
    aiq_upstream_path,
    upstream_hull,
)

Curve = tuple[list[float], list[float]]

# ----------------------------------------------------------------------------- reference


def literal_hull(cost: ArrayLike, quality: ArrayLike) -> tuple[np.ndarray, np.ndarray] | None:
    """The original's hull rules, literally; None where the original raises IndexError."""
    # The original stacks (cost, quality) rows and argsorts the cost column (default kind).
    table = np.column_stack((np.asarray(cost, float), np.asarray(quality, float)))
    rows = [(float(x), float(y)) for x, y in table[table[:, 0].argsort()]]
    found: dict[float, float] = {}  # cost -> value, in the order each cost is first met
    for a, b in itertools.combinations_with_replacement(range(len(rows)), 2):
        (x1, y1), (x2, y2) = rows[a], rows[b]
        for x, y in rows:
            if not x1 < x < x2:
                continue
            chord = float(np.interp(x, np.array([x1, x2]), np.array([y1, y2])))
            candidate = chord if y < chord else y
            if x not in found or candidate > found[x]:
                found[x] = candidate
    if not found:
        return None
    xs, ys = list(found), list(found.values())
    (x_first, y_first), (x_last, y_last) = rows[0], rows[-1]
    if x_last not in found and y_last >= ys[-1]:  # compared with the last entry met
        xs.append(x_last)
        ys.append(y_last)
    if x_first not in found:
        xs.insert(0, x_first)
        ys.insert(0, y_first)
    hull = np.array([xs, ys]).T
    hull = hull[hull[:, 0].argsort()]
    lower = [k for k in range(1, len(hull)) if hull[k, 1] < hull[k - 1, 1]]  # one pass
    kept = [k for k in range(len(hull)) if k not in lower]
    return hull[kept, 0], hull[kept, 1]


def literal_aiq(curves: list[Curve]) -> list[float]:
    """calc_AIQ's rules on the literal hulls: flat to the largest hull cost X, trapezoids, / X."""
    hulls = [literal_hull(c, q) for c, q in curves]
    ends = [float(np.max(h[0])) for h in hulls if h is not None]
    out = []
    for h in hulls:
        if h is None or not ends or max(ends) == 0.0:
            out.append(float("nan"))
            continue
        x_max = max(ends)
        out.append(float(np.trapezoid([*h[1], h[1][-1]], [*h[0], x_max]) / x_max))
    return out


def check_hull(cost: ArrayLike, quality: ArrayLike) -> None:
    """upstream_hull equals literal_hull bit for bit, or both fail."""
    expected = literal_hull(cost, quality)
    if expected is None:
        with pytest.raises(UpstreamHullError, match="needs at least 3 distinct costs"):
            upstream_hull(cost, quality)
        return
    hc, hq = upstream_hull(cost, quality)
    np.testing.assert_array_equal(hc, expected[0])
    np.testing.assert_array_equal(hq, expected[1])


def check_aiq(curves: list[Curve]) -> None:
    """aiq_upstream equals literal_aiq bit for bit; a reason exactly where the value is NaN."""
    values, reasons = aiq_upstream(curves)
    np.testing.assert_array_equal(values, literal_aiq(curves))
    assert [bool(r) for r in reasons] == np.isnan(values).tolist()
    assert all("\n" not in r for r in reasons)


# ----------------------------------------------------------------------------- strategies

# Coarse grids (tenths are not dyadic: chords round) so that ties in cost and quality happen.
grid_curve = st.lists(
    st.tuples(st.integers(0, 8).map(lambda k: k / 10), st.integers(0, 10).map(lambda k: k / 10)),
    min_size=1,
    max_size=9,
).map(lambda pts: ([p[0] for p in pts], [p[1] for p in pts]))
float_curve = st.lists(st.tuples(st.floats(0, 1e3), st.floats(0, 1)), min_size=3, max_size=8).map(
    lambda pts: ([p[0] for p in pts], [p[1] for p in pts])
)


def _deterministic(curve: Curve) -> bool:
    """At least 3 distinct costs and one point at each extreme cost: no tie for argsort to break."""
    c = np.asarray(curve[0])
    return len(set(c.tolist())) >= 3 and (c == c.min()).sum() == 1 and (c == c.max()).sum() == 1


# ----------------------------------------------------------------------------- tests


class TestUpstreamHull:
    @settings(max_examples=300)
    @given(grid_curve)
    def test_matches_literal_on_grid(self, curve: Curve) -> None:
        """Bit for bit the literal rules on a coarse grid (ties, duplicates, failures)."""
        check_hull(*curve)

    @settings(max_examples=200)
    @given(float_curve)
    def test_matches_literal_on_floats(self, curve: Curve) -> None:
        """Bit for bit on arbitrary floats: every chord value is np.interp's."""
        check_hull(*curve)

    def test_many_points_in_blocks(self) -> None:
        """121 points, chords computed in two blocks of left points: the vertices (every fourth
        cost, on a concave curve) lift the points between them, the dearest ones by chords from
        the second block; the literal rules agree."""
        cost = np.arange(121) / 7
        vertex = np.arange(121) % 4 == 0
        quality = np.sqrt(cost) - np.where(vertex, 0.0, 0.25)
        hc, hq = upstream_hull(cost, quality)
        assert hc.tolist() == cost.tolist()
        assert (hq[~vertex] > quality[~vertex]).all() and (hq[vertex] == quality[vertex]).all()
        check_hull(cost, quality)

    @pytest.mark.parametrize(
        ("cost", "quality", "hull"),
        [
            # (1, 0) is lifted onto the chord (0, 0)-(2, 1)
            ([0.0, 1.0, 2.0], [0.0, 0.0, 1.0], ([0.0, 1.0, 2.0], [0.0, 0.5, 1.0])),
            # a tie at cost 1 and a duplicate point merge into one entry, the best
            (
                [0.0, 1.0, 1.0, 2.0, 1.0],
                [0.0, 0.2, 0.6, 0.8, 0.6],
                ([0.0, 1.0, 2.0], [0.0, 0.6, 0.8]),
            ),
            # the last point, below the last entry, is not appended
            ([0.0, 1.0, 2.0], [0.0, 1.0, 0.5], ([0.0, 1.0], [0.0, 1.0])),
            # ... but one equal to it is
            ([0.0, 1.0, 2.0], [0.0, 1.0, 1.0], ([0.0, 1.0, 2.0], [0.0, 1.0, 1.0])),
            # the first point is kept, every lower entry after it dropped
            ([0.0, 1.0, 2.0], [1.0, 0.2, 0.3], ([0.0], [1.0])),
        ],
    )
    def test_hand_cases(self, cost: list, quality: list, hull: tuple) -> None:
        """Hand-computed hulls, and the literal rules agree with them."""
        hc, hq = upstream_hull(cost, quality)
        assert (hc.tolist(), hq.tolist()) == hull
        check_hull(cost, quality)

    def test_decrease_survives_one_pass(self) -> None:
        """A nearly flat falling line: the entries at 1.3 and 1.7 round to the same chord value,
        so the one pass drops only the first and a decrease from the first point remains."""
        hi, lo = 0.7000000000000002, 0.6999999999999997
        cost, quality = [1.0, 1.3, 1.7, 2.9], [hi, lo, lo, lo]
        at = [float(np.interp(x, [1.0, 2.9], [hi, lo])) for x in (1.3, 1.7)]
        assert at[0] == at[1] < hi  # the premise
        hc, hq = upstream_hull(cost, quality)
        assert (hc.tolist(), hq.tolist()) == ([1.0, 1.7], [hi, at[1]])
        check_hull(cost, quality)

    @pytest.mark.parametrize(
        ("cost", "quality"),
        [([1.0], [0.5]), ([2.0, 2.0, 2.0], [0.1, 0.9, 0.5]), ([1.0, 2.0, 1.0], [0.5, 0.7, 0.9])],
    )
    def test_fewer_than_three_costs_fail(self, cost: list, quality: list) -> None:
        """One or two distinct costs: UpstreamHullError (a ValueError) naming the count."""
        n = len(set(cost))
        with pytest.raises(UpstreamHullError, match=f"3 distinct costs, got {n} .*IndexError"):
            upstream_hull(cost, quality)
        assert issubclass(UpstreamHullError, ValueError)
        assert literal_hull(cost, quality) is None

    @pytest.mark.parametrize(
        ("cost", "quality", "needle"),
        [
            ([0.0, 1.0, np.inf], [0.1, 0.2, 0.3], "cost must be finite"),
            ([0.0, 1.0, 2.0], [0.1, np.nan, 0.3], "quality must be finite"),
            ([0.0, 1.0], [0.1], "equal length"),
            ([], [], "at least one point"),
            ([-1e308, 0.0, 1e308], [0.1, 0.2, 0.3], "cost spans more than float64 holds"),
        ],
    )
    def test_refuses_bad_input(self, cost: list, quality: list, needle: str) -> None:
        """Bad input is a plain ValueError, not a hull failure."""
        with pytest.raises(ValueError, match=needle) as info:
            upstream_hull(cost, quality)
        assert not isinstance(info.value, UpstreamHullError)


class TestAiqUpstream:
    @settings(max_examples=200)
    @given(st.lists(grid_curve, min_size=1, max_size=4))
    def test_matches_literal_on_grid(self, curves: list[Curve]) -> None:
        """Bit for bit the literal calc_AIQ over several curves (failures, ties, X = 0)."""
        check_aiq(curves)

    @settings(max_examples=100)
    @given(st.lists(float_curve, min_size=1, max_size=3))
    def test_matches_literal_on_floats(self, curves: list[Curve]) -> None:
        """Bit for bit on arbitrary floats."""
        check_aiq(curves)

    @settings(max_examples=100)
    @given(st.lists(grid_curve.filter(_deterministic), min_size=1, max_size=3))
    def test_close_to_path_without_ties(self, curves: list[Curve]) -> None:
        """Without ties at the extreme costs the original's hull is the NDCH plus its flat top,
        so the value equals aiq_upstream_path up to rounding."""
        values, reasons = aiq_upstream(curves)
        np.testing.assert_allclose(values, aiq_upstream_path(curves), rtol=1e-12)
        assert [bool(r) for r in reasons] == np.isnan(values).tolist()  # NaN only where X == 0

    def test_hand_case(self) -> None:
        """Hull (0, 0), (1, 0.5), (2, 1) and a curve reaching X = 4: areas over 4."""
        curves = [([0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 1.0, 0.5]), ([1.0, 2.0, 4.0], [0.5, 0.5, 0.6])]
        values, reasons = aiq_upstream(curves)
        # first: 0.25 + 0.75 + 1 * 2 = 3; second: hull (1, 0.5), (2, 0.5 + 0.1 / 3), (4, 0.6),
        # (0.5 + 0.1 / 6) + (1.1 + 0.1 / 3), then a flat extension of width 0
        np.testing.assert_allclose(values, [3.0 / 4, 1.65 / 4])
        assert reasons == ["", ""]
        check_aiq(curves)

    def test_failures_reported_and_left_out_of_x(self) -> None:
        """A single model (1 cost) and 2 costs give NaN with the reason; their dearer costs do
        not set X, so the third curve's value is as if it were alone."""
        good = ([0.0, 1.0, 2.0], [0.0, 0.0, 1.0])
        curves = [([9.0], [0.9]), ([0.0, 10.0], [0.1, 0.2]), good]
        values, reasons = aiq_upstream(curves)
        assert np.isnan(values[:2]).all()
        assert reasons[0].endswith("3 distinct costs, got 1 (it raises IndexError)")
        assert reasons[1].endswith("3 distinct costs, got 2 (it raises IndexError)")
        assert values[2] == aiq_upstream([good])[0][0] == 0.5  # (0.25 + 0.75) / 2
        assert reasons[2] == ""
        check_aiq(curves)

    def test_all_fail(self) -> None:
        """Every curve failing gives all NaN, each with its reason."""
        values, reasons = aiq_upstream([([1.0], [0.5]), ([1.0, 2.0], [0.5, 0.6])])
        assert np.isnan(values).all() and all("IndexError" in r for r in reasons)

    def test_zero_x(self) -> None:
        """X == 0 (a hull reduced to its first point at cost 0, or costs up to 0): NaN, reason."""
        curves = [([0.0, 1.0, 2.0], [1.0, 0.2, 0.3]), ([-2.0, -1.0, 0.0], [0.1, 0.2, 0.3])]
        values, reasons = aiq_upstream(curves)
        assert np.isnan(values).all()
        assert (
            reasons
            == ["aiq_upstream: the largest hull cost X is 0 (the original divides 0 by 0)"] * 2
        )
        check_aiq(curves)

    def test_refuses_bad_input(self) -> None:
        """No curves, or a non-finite value: ValueError."""
        with pytest.raises(ValueError, match="aiq_upstream: need at least one curve"):
            aiq_upstream([])
        with pytest.raises(ValueError, match="quality must be finite"):
            aiq_upstream([([0.0, 1.0, 2.0], [0.1, 0.2, np.nan])])

    @pytest.mark.parametrize(
        ("tied", "rest", "low_at"),
        [
            # two points at the cheapest cost: the original starts at whichever argsort puts first
            ([(0.0, 0.2), (0.0, 0.8)], [(1.0, 0.9), (2.0, 1.0)], 0),
            # two at the dearest: it appends whichever argsort puts last, if not below (1, 0.5)
            ([(2.0, 0.2), (2.0, 1.0)], [(0.0, 0.0), (1.0, 0.5)], -1),
        ],
    )
    def test_tie_quirk_differs_from_path(self, tied: list, rest: list, low_at: int) -> None:
        """With a tie at an extreme cost the original's hull depends on argsort's order: where
        the lower tied point lands at that end, its AIQ differs from aiq_upstream_path (NDCH);
        of the two input orders, exactly one puts it there."""
        quirky = 0
        for pair in (tied, tied[::-1]):
            pts = [*pair, *rest]
            cost, quality = [p[0] for p in pts], [p[1] for p in pts]
            at_end = quality[int(np.argsort(cost)[low_at])]  # the point argsort puts at that end
            got = aiq_upstream([(cost, quality)])[0][0]
            path = aiq_upstream_path([(cost, quality)])[0]
            if at_end == min(p[1] for p in tied):
                quirky += 1
                assert got != pytest.approx(path)
            else:
                assert got == pytest.approx(path)
            check_aiq([(cost, quality)])
        assert quirky == 1
