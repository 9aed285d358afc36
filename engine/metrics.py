"""Cost-quality metrics: the non-decreasing convex hull (NDCH), AIQ, max quality, APGR and CPT.

Pure NumPy kernels over a router's operating points ``(cost, quality)``.  A hull is returned as
its vertices ``(hull_cost, hull_quality)``, sorted by cost, with cost and quality strictly
increasing; every other function here takes a hull in that form.  :func:`upstream_hull`, the
original RouterBench code's hull (for :func:`aiq_upstream`), is the exception: its qualities need
not increase.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from routerbench.engine.errors import UpstreamHullError

Hull = tuple[np.ndarray, np.ndarray]


def _points(x: ArrayLike, y: ArrayLike, fn: str, names: tuple[str, str]) -> Hull:
    """Two finite, non-empty 1-D float64 arrays of equal length, or a one-line ValueError."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"{fn}: {names[0]} and {names[1]} must be 1-D arrays of equal length, "
            f"got shapes {a.shape} and {b.shape}"
        )
    if a.size == 0:
        raise ValueError(f"{fn}: need at least one point, got none")
    for name, arr in zip(names, (a, b), strict=True):
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{fn}: {name} must be finite, got {float(arr[i])} at index {i}")
    return a, b


def _hull(hull_cost: ArrayLike, hull_quality: ArrayLike, fn: str) -> Hull:
    hc, hq = _points(hull_cost, hull_quality, fn, ("hull_cost", "hull_quality"))
    if (np.diff(hc) <= 0).any():
        raise ValueError(f"{fn}: hull_cost must be strictly increasing (pass the output of ndch)")
    return hc, hq


def _chain(c: np.ndarray, q: np.ndarray) -> Hull:
    """Andrew's monotone chain (upper hull) over points sorted by strictly increasing cost."""
    hc: list[float] = []
    hq: list[float] = []
    for x, y in zip(c.tolist(), q.tolist(), strict=True):
        # Pop the top vertex while it is on or below the chord from the one under it to (x, y).
        while len(hc) >= 2 and (hq[-1] - hq[-2]) * (x - hc[-2]) <= (y - hq[-2]) * (hc[-1] - hc[-2]):
            hc.pop()
            hq.pop()
        hc.append(x)
        hq.append(y)
    return np.array(hc, dtype=np.float64), np.array(hq, dtype=np.float64)


def ndch(cost: ArrayLike, quality: ArrayLike) -> Hull:
    """Non-decreasing convex hull of the points ``(cost[i], quality[i])``, as its vertices.

    The first vertex is the cheapest point (the best one among those at the lowest cost); the
    last is the lowest-cost point of maximum quality.  Between them the vertices are those of
    the upper convex hull, with cost and quality strictly increasing; duplicates and collinear
    middle points are dropped.  O(n log n): sort by cost, keep the best quality at each cost,
    and of those only the ones that beat every cheaper one (no other point can be a vertex);
    drop, in a few vectorised passes, points on or below the chord of their neighbours; finish
    with Andrew's monotone chain if any are left to check.

    >>> hc, hq = ndch([1.0, 2.0, 3.0, 4.0, 2.0, 1.0], [0.2, 0.6, 0.7, 0.7, 0.1, 0.1])
    >>> hc.tolist(), hq.tolist()
    ([1.0, 2.0, 3.0], [0.2, 0.6, 0.7])
    """
    c, q = _points(cost, quality, "ndch", ("cost", "quality"))
    order = np.argsort(c)
    c, q = c[order], q[order]
    first = np.flatnonzero(np.append(True, c[1:] != c[:-1]))  # first point of each cost
    c, q = c[first], np.maximum.reduceat(q, first)  # distinct costs, best quality at each
    keep = np.append(True, q[1:] > np.maximum.accumulate(q)[:-1])
    c, q = c[keep], q[keep]  # now cost and quality both strictly increase
    stalls = 0
    while c.size > 2 and stalls < 4:
        above = (q[1:-1] - q[:-2]) * (c[2:] - c[:-2]) > (q[2:] - q[:-2]) * (c[1:-1] - c[:-2])
        dropped = above.size - int(np.count_nonzero(above))
        if dropped == 0:
            return c, q
        keep = np.concatenate(([True], above, [True]))
        c, q = c[keep], q[keep]
        stalls += 4 * dropped < above.size  # a pass that drops little: the chain will finish
    return _chain(c, q)


def hull_value(hull_cost: ArrayLike, hull_quality: ArrayLike, c: ArrayLike) -> np.ndarray:
    """R̃(c): the hull's quality at cost ``c`` (scalar or array), by linear interpolation.

    Flat (the last vertex's quality) to the right of the last vertex, and 0.0 to the left of the
    first: a router cannot operate below its cheapest point, so it earns nothing there.

    >>> hull_value([1.0, 3.0], [0.25, 0.75], [0.5, 1.0, 2.0, 9.0]).tolist()
    [0.0, 0.25, 0.5, 0.75]
    """
    hc, hq = _hull(hull_cost, hull_quality, "hull_value")
    return np.asarray(np.interp(np.asarray(c, dtype=np.float64), hc, hq, left=0.0))


def common_range(hulls: Sequence[tuple[ArrayLike, ArrayLike]]) -> tuple[float, float]:
    """``(c_min, c_max)`` on which every hull is defined: max first cost, max last cost.

    >>> common_range([([1.0, 4.0], [0.1, 0.5]), ([2.0, 3.0], [0.2, 0.6])])
    (2.0, 4.0)
    """
    if len(hulls) == 0:
        raise ValueError("common_range: need at least one hull, got none")
    checked = [_hull(hc, hq, "common_range") for hc, hq in hulls]
    return max(float(hc[0]) for hc, _ in checked), max(float(hc[-1]) for hc, _ in checked)


def aiq(hull_cost: ArrayLike, hull_quality: ArrayLike, c_min: float, c_max: float) -> float:
    """AIQ: the mean of R̃ over ``[c_min, c_max]`` (the paper's definition), integrated exactly.

    R̃ is :func:`hull_value` (0 left of the hull, flat right of it).  If ``c_max == c_min`` this
    is ``R̃(c_min)``.

    >>> aiq([1.0, 3.0], [0.25, 0.75], 1.0, 5.0)  # (0.5 * 2 + 0.75 * 2) / 4
    0.625
    """
    hc, hq = _hull(hull_cost, hull_quality, "aiq")
    if not (np.isfinite(c_min) and np.isfinite(c_max)) or c_max < c_min:
        raise ValueError(f"aiq: need finite c_min <= c_max, got c_min={c_min}, c_max={c_max}")
    if c_max == c_min:
        return float(hull_value(hc, hq, c_min))
    lo = max(float(c_min), float(hc[0]))  # R̃ is 0 left of the hull
    if c_max <= lo:
        return 0.0
    xs = np.concatenate(([lo], hc[(hc > lo) & (hc < c_max)], [c_max]))
    ys = hull_value(hc, hq, xs)
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1])) / 2.0 / (c_max - c_min))


def _compact(keep: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each row's kept entries moved to its front, in order (zeros after them), then the counts."""
    counts = np.count_nonzero(keep, axis=1)
    width = int(counts.max(initial=0))
    src = np.flatnonzero(keep)
    # Row r's kept entries go to flat positions r * width + 0, 1, ... of the result.
    shift = np.arange(len(counts)) * width - (np.cumsum(counts) - counts)
    dest = np.arange(src.size) + np.repeat(shift, counts)
    out = []
    for a in arrays:
        b = np.zeros(len(counts) * width)
        b[dest] = a.ravel()[src]
        out.append(b.reshape(len(counts), width))
    return (*out, counts)


def _ndch_rows(cs: np.ndarray, qs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`ndch` of each row of ``[R, K]`` finite points, all rows at once with the same
    floating-point comparisons, hence the same vertices: ``(hc, hq, n)``, row r's hull being
    ``hc[r, :n[r]], hq[r, :n[r]]`` (zeros after). Rows that :func:`ndch` would finish with the
    monotone chain go through :func:`_chain` one by one."""
    order = np.argsort(cs, axis=1)
    c, q = np.take_along_axis(cs, order, axis=1), np.take_along_axis(qs, order, axis=1)
    first = np.ones(c.shape, dtype=bool)  # first point of each cost
    first[:, 1:] = c[:, 1:] != c[:, :-1]
    best = np.zeros_like(q)  # best quality at each cost (groups never span rows)
    best[first] = np.maximum.reduceat(q.ravel(), np.flatnonzero(first))
    c, q, n = _compact(first, c, best)
    keep = np.arange(c.shape[1]) < n[:, None]
    keep[:, 1:] &= q[:, 1:] > np.maximum.accumulate(q, axis=1)[:, :-1]
    c, q, n = _compact(keep, c, q)  # now cost and quality both strictly increase
    stalls = np.zeros(len(n), dtype=np.intp)
    todo = n > 2  # rows still in ndch's loop
    finished = np.zeros(len(n), dtype=bool)  # rows whose pass dropped nothing: no chain
    while todo.any():
        above = (q[:, 1:-1] - q[:, :-2]) * (c[:, 2:] - c[:, :-2]) > (q[:, 2:] - q[:, :-2]) * (
            c[:, 1:-1] - c[:, :-2]
        )
        middle = np.arange(above.shape[1]) < (n - 2)[:, None]
        drop = middle & ~above & todo[:, None]
        dropped = np.count_nonzero(drop, axis=1)
        finished |= todo & (dropped == 0)
        todo &= dropped > 0
        stalls += todo & (4 * dropped < n - 2)  # a pass that drops little: the chain will finish
        keep = np.arange(c.shape[1]) < n[:, None]
        keep[:, 1:-1] &= ~drop
        c, q, n = _compact(keep, c, q)
        todo &= (n > 2) & (stalls < 4)
    for r in np.flatnonzero(~finished & (n > 2)):
        hc, hq = _chain(c[r, : n[r]], q[r, : n[r]])
        c[r, : hc.size], q[r, : hc.size], n[r] = hc, hq, hc.size
    return c, q, n


def _interp_rows(x: np.ndarray, hc: np.ndarray, hq: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``np.interp(x[r], hc[r, :n[r]], hq[r, :n[r]], left=0.0)`` for every row r, with NumPy's
    operations (its ``arr_interp``): a vertex's own quality at a vertex, else the slope form."""
    rows = np.arange(len(n))
    j = np.count_nonzero((hc <= x[:, None]) & (np.arange(hc.shape[1]) < n[:, None]), axis=1) - 1
    j0, j1 = np.maximum(j, 0), np.minimum(j + 1, n - 1)
    x0, x1, y0, y1 = hc[rows, j0], hc[rows, j1], hq[rows, j0], hq[rows, j1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        slope = (y1 - y0) / (x1 - x0)
        y = slope * (x - x0) + y0
        y = np.where(np.isnan(y), slope * (x - x1) + y1, y)  # NaN one way: NumPy tries the other
    y = np.where(np.isnan(y) & (y0 == y1), y0, y)
    return np.where(j < 0, 0.0, np.where((j == n - 1) | (x0 == x), y0, y))


def aiq_rows(cost: ArrayLike, quality: ArrayLike, c_min: float, c_max: float) -> np.ndarray:
    """``aiq(*ndch(cost[b], quality[b]), c_min, c_max)`` for every row ``b`` (bootstrap replicates).

    All rows at once, with the floating-point operations of :func:`ndch` and :func:`aiq`, so the
    values are identical: the hulls by :func:`_ndch_rows`, R̃ at the range's ends by
    :func:`_interp_rows`, and each row's trapezoids summed by ``np.sum`` over exactly that row's
    terms (rows with as many terms together), so in NumPy's pairwise order. Rows go in blocks
    of about a million points, which bounds the memory.

    >>> aiq_rows([[2.0], [4.0], [6.0]], [[1.0], [0.5], [1.0]], 0.0, 4.0).tolist()
    [0.5, 0.0, 0.0]
    """
    cs = np.asarray(cost, dtype=np.float64)
    qs = np.asarray(quality, dtype=np.float64)
    if cs.ndim != 2 or cs.shape != qs.shape or cs.shape[1] == 0:
        raise ValueError(
            f"aiq_rows: cost and quality must be 2-D arrays of equal shape with at least one "
            f"column, got shapes {cs.shape} and {qs.shape}"
        )
    for name, arr in (("cost", cs), ("quality", qs)):
        bad = ~np.isfinite(arr)
        if bad.any():
            b, k = np.argwhere(bad)[0]
            raise ValueError(
                f"aiq_rows: {name} must be finite, got {float(arr[b, k])} at row {b}, column {k}"
            )
    if not (np.isfinite(c_min) and np.isfinite(c_max)) or c_max < c_min:
        raise ValueError(f"aiq_rows: need finite c_min <= c_max, got c_min={c_min}, c_max={c_max}")
    step = max(1, (1 << 20) // cs.shape[1])  # blocks of rows of about a million points
    parts = [
        _aiq_block(cs[i : i + step], qs[i : i + step], c_min, c_max)
        for i in range(0, len(cs), step)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def _aiq_block(cs: np.ndarray, qs: np.ndarray, c_min: float, c_max: float) -> np.ndarray:
    """:func:`aiq_rows` of checked, non-empty rows."""
    hc, hq, n = _ndch_rows(cs, qs)
    if c_max == c_min:
        return _interp_rows(np.full(len(n), float(c_min)), hc, hq, n)
    lo = np.where(hc[:, 0] > c_min, hc[:, 0], float(c_min))  # R̃ is 0 left of the hull
    # aiq's points: lo, the vertices strictly between lo and c_max (hc[a : a + m]), c_max.
    valid = np.arange(hc.shape[1]) < n[:, None]
    a = np.count_nonzero(valid & (hc <= lo[:, None]), axis=1)
    m = np.maximum(np.count_nonzero(valid & (hc < c_max), axis=1) - a, 0)
    idx = np.minimum(a[:, None] + np.arange(hc.shape[1]), hc.shape[1] - 1)
    inner = np.arange(hc.shape[1]) < m[:, None]
    hi = np.full(len(n), float(c_max))
    y_lo, y_hi = _interp_rows(lo, hc, hq, n), _interp_rows(hi, hc, hq, n)
    xs = np.column_stack([lo, np.where(inner, np.take_along_axis(hc, idx, axis=1), c_max), hi])
    ys = np.column_stack(
        [y_lo, np.where(inner, np.take_along_axis(hq, idx, axis=1), y_hi[:, None]), y_hi]
    )
    terms = np.diff(xs, axis=1) * (ys[:, 1:] + ys[:, :-1])  # 0 after a row's m + 1 terms
    total = np.empty(len(n))
    for k in np.unique(m + 1):
        rows = m + 1 == k
        total[rows] = terms[rows, :k].sum(axis=1)
    return np.where(c_max <= lo, 0.0, total / 2.0 / (c_max - c_min))


def aiq_upstream_path(
    curves: Sequence[tuple[ArrayLike, ArrayLike]], hulls: Sequence[Hull] | None = None
) -> np.ndarray:
    """The original code's AIQ formula (``calc_AIQ``) on our exact :func:`ndch`, one per router.

    Mirrors ``calc_AIQ`` in
    https://github.com/withmartian/routerbench/blob/main/evaluation/AIQ.py (read at commit
    30e0925ac07a45108b9ee82086040a5664ea83e6): each router's hull gets the point
    ``(X, its last quality)`` appended, where X is the largest hull cost over all routers; the
    area from the router's own cheapest point to X (trapezoid rule) is divided by X.  Upstream's
    hull keeps the flat top, so a router's largest hull cost is the highest cost among its
    points of maximum quality; we take that for X and compute the area on :func:`ndch` (same
    area: the rest is flat).  Upstream's O(n^3) hull fails with at most two distinct costs and
    picks an arbitrary point among ties at the cheapest or dearest cost; ours does neither,
    otherwise the results agree up to rounding (:func:`aiq_upstream` is the original exactly,
    quirks and failures included).  NaN where X is 0 (upstream divides 0 by 0).  ``hulls``: the
    curves' :func:`ndch`, where the caller has them already (else computed here).

    >>> aiq_upstream_path([([1.0, 3.0], [0.25, 0.75]), ([2.0, 4.0], [0.5, 0.75])]).tolist()
    [0.4375, 0.3125]
    """
    if len(curves) == 0:
        raise ValueError("aiq_upstream_path: need at least one curve, got none")
    points = [_points(c, q, "aiq_upstream_path", ("cost", "quality")) for c, q in curves]
    x_max = max(float(c[q == q.max()].max()) for c, q in points)
    if x_max == 0.0:
        return np.full(len(points), np.nan)
    if hulls is None:
        hulls = [ndch(c, q) for c, q in points]
    elif len(hulls) != len(points):
        raise ValueError(
            f"aiq_upstream_path: need one hull per curve, got {len(hulls)} for {len(points)}"
        )
    areas = []
    for hc, hq in hulls:
        areas.append(np.trapezoid(np.append(hq, hq[-1]), np.append(hc, x_max)))
    return np.array(areas, dtype=np.float64) / x_max


def _upstream_chords(c: np.ndarray, q: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """At each ``x`` in ``xs``: the highest chord between two points ``i, j`` with c_i < x < c_j.

    Each chord value is ``np.interp(x, [c_i, c_j], [q_i, q_j])`` bit for bit: NumPy computes it
    as ``slope * (x - c_i) + q_i`` with ``slope = (q_j - q_i) / (c_j - c_i)``.  Brute force over
    all pairs of distinct points, as the original does (a smarter search could round otherwise),
    in blocks of left points that keep the (left, right, x) arrays near a million entries.  No
    NaN can arise: the caller checks that ``max - min`` of cost and quality is finite.
    """
    pts = np.unique(np.column_stack((c, q)), axis=0)  # duplicate points give the same chords
    right_c, right_q = pts[:, 0], pts[:, 1]
    best = np.full(xs.size, -np.inf)
    step = max(1, (1 << 20) // (right_c.size * xs.size))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for lo in range(0, right_c.size, step):
            left_c = right_c[lo : lo + step, None, None]  # (left, 1, 1)
            left_q = right_q[lo : lo + step, None, None]
            slope = (right_q[None, :, None] - left_q) / (right_c[None, :, None] - left_c)
            value = slope * (xs - left_c) + left_q  # (left, right, x)
            spans = (left_c < xs) & (xs < right_c[None, :, None])
            best = np.maximum(best, np.where(spans, value, -np.inf).max(axis=(0, 1)))
    return best


def upstream_hull(cost: ArrayLike, quality: ArrayLike) -> Hull:
    """The original code's "non-decreasing convex hull" (``get_non_descreasing_convex_hull_of``).

    Reproduces https://github.com/withmartian/routerbench/blob/main/evaluation/AIQ.py (commit
    30e0925ac07a45108b9ee82086040a5664ea83e6) with the same floating-point operations, quirks
    included; it is not :func:`ndch`.  The points are sorted by NumPy's default (unstable)
    ``argsort`` of the cost, so among ties the first and last sorted points are whichever it
    puts there.  Every distinct cost strictly between the lowest and the highest gets one entry:
    the best of its points' qualities and of every chord (see :func:`_upstream_chords`) spanning
    it, so a point under a chord is lifted onto it.  The original inserts these entries while
    looping over pairs from the cheapest point, hence in increasing cost, and compares the last
    sorted point with the last one inserted, the dearest: the last point is appended only if its
    quality is at least that entry's.  The first sorted point is always put first.  Finally one
    pass drops every vertex lower than its predecessor *before* the pass, so a rounding wiggle
    (high, low, middle) leaves a decrease.  Costs come out strictly increasing; qualities need
    not be monotone.  With fewer than three distinct costs there are no entries and the original
    raises IndexError: :class:`UpstreamHullError` here.  Costs or qualities whose spread
    overflows float64 are a plain ValueError.

    >>> hc, hq = upstream_hull([0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 1.0, 0.5])
    >>> hc.tolist(), hq.tolist()  # (1, 0) lifted onto the chord (0, 0)-(2, 1); (3, 0.5) < 1
    ([0.0, 1.0, 2.0], [0.0, 0.5, 1.0])
    """
    c, q = _points(cost, quality, "upstream_hull", ("cost", "quality"))
    for name, arr in (("cost", c), ("quality", q)):
        with np.errstate(over="ignore"):
            spread = arr.max() - arr.min()
        if not np.isfinite(spread):
            raise ValueError(f"upstream_hull: {name} spans more than float64 holds (max - min)")
    order = c.argsort()  # the original's sort: same algorithm, so ties land the same way
    c, q = c[order], q[order]
    inner = (c[0] < c) & (c < c[-1])
    if not inner.any():
        raise UpstreamHullError(
            f"upstream_hull: the original's hull needs at least 3 distinct costs, got "
            f"{np.unique(c).size} (it raises IndexError)"
        )
    ic, iq = c[inner], q[inner]
    first = np.flatnonzero(np.append(True, ic[1:] != ic[:-1]))  # first point of each cost
    xs = ic[first]
    ys = np.maximum(np.maximum.reduceat(iq, first), _upstream_chords(c, q, xs))
    hc, hq = np.append(c[0], xs), np.append(q[0], ys)
    if q[-1] >= ys[-1]:
        hc, hq = np.append(hc, c[-1]), np.append(hq, q[-1])
    keep = np.append(True, ~(hq[1:] < hq[:-1]))  # costs are distinct and sorted already
    return hc[keep], hq[keep]


def aiq_upstream(curves: Sequence[tuple[ArrayLike, ArrayLike]]) -> tuple[np.ndarray, list[str]]:
    """The original code's ``calc_AIQ`` on each curve's points: ``(values, reasons)``.

    Each curve ``(cost, quality)`` is one router's points as the original evaluates them (its
    grid: one per λ, per budget, or the single point of a model).  Each gets
    :func:`upstream_hull`, then ``(X, its last quality)`` is appended, X being the largest hull
    cost over the curves; the value is ``np.trapezoid`` over that, from the curve's own first
    hull point, divided by X.  A curve whose hull fails gets NaN and the failure as its reason,
    and takes no part in X (the original would have crashed); X == 0 gives NaN for every curve
    with the reason (the original divides 0 by 0).  ``reasons[i]`` is ``""`` where
    ``values[i]`` is a number.  Depends on the set of curves compared, through X.

    >>> curves = [([0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 1.0, 0.5]), ([1.0], [0.9])]
    >>> values, reasons = aiq_upstream(curves)
    >>> values.tolist()  # hull (0, 0), (1, 0.5), (2, 1) and X = 2: (0.25 + 0.75) / 2
    [0.5, nan]
    >>> reasons[0], reasons[1].endswith("3 distinct costs, got 1 (it raises IndexError)")
    ('', True)
    """
    if len(curves) == 0:
        raise ValueError("aiq_upstream: need at least one curve, got none")
    hulls: dict[int, Hull] = {}
    reasons = [""] * len(curves)
    for i, (c, q) in enumerate(curves):
        try:
            hulls[i] = upstream_hull(c, q)
        except UpstreamHullError as err:
            reasons[i] = str(err)
    values = np.full(len(curves), np.nan)
    if not hulls:
        return values, reasons
    x_max = max(np.max(hc) for hc, _ in hulls.values())
    for i, (hc, hq) in hulls.items():
        if x_max == 0.0:
            reasons[i] = "aiq_upstream: the largest hull cost X is 0 (the original divides 0 by 0)"
        else:
            values[i] = np.trapezoid(np.append(hq, hq[-1]), np.append(hc, x_max)) / x_max
    return values, reasons


def max_quality(cost: ArrayLike, quality: ArrayLike) -> tuple[float, float]:
    """``(max quality, cost at the first point reaching it)`` over a sweep in parameter order.

    >>> max_quality([1.0, 2.0, 3.0], [0.5, 0.9, 0.9])
    (0.9, 2.0)
    """
    c, q = _points(cost, quality, "max_quality", ("cost", "quality"))
    i = int(np.argmax(q))
    return float(q[i]), float(c[i])


def _gap(q_weak: float, q_strong: float, fn: str) -> float:
    if not (np.isfinite(q_weak) and np.isfinite(q_strong)) or q_strong <= q_weak:
        raise ValueError(
            f"{fn}: need finite q_strong > q_weak, got q_weak={q_weak}, q_strong={q_strong}"
        )
    return float(q_strong) - float(q_weak)


def pgr(quality: ArrayLike, q_weak: float, q_strong: float) -> np.ndarray:
    """Performance gap recovered: ``(quality - q_weak) / (q_strong - q_weak)``, elementwise.

    ``q_strong`` must exceed ``q_weak`` (here and in :func:`apgr` and :func:`cpt`).

    >>> pgr([0.5, 0.625, 1.0], 0.5, 1.0).tolist()
    [0.0, 0.25, 1.0]
    """
    gap = _gap(q_weak, q_strong, "pgr")
    return (np.asarray(quality, dtype=np.float64) - q_weak) / gap


def _envelope(
    strong_share: ArrayLike, quality: ArrayLike, q_weak: float, q_strong: float, fn: str
) -> Hull:
    """The PGR curve's monotone envelope: distinct shares from 0 to 1, running max of PGR.

    The endpoints ``(0, q_weak)`` and ``(1, q_strong)`` are added when no point has that share.
    """
    gap = _gap(q_weak, q_strong, fn)
    s, q = _points(strong_share, quality, fn, ("strong_share", "quality"))
    if (s < 0).any() or (s > 1).any():
        raise ValueError(f"{fn}: strong_share must lie in [0, 1], got {s[(s < 0) | (s > 1)][0]}")
    p = (q - q_weak) / gap
    for share, value in ((0.0, 0.0), (1.0, 1.0)):
        if not (s == share).any():
            s, p = np.append(s, share), np.append(p, value)
    order = np.lexsort((p, s))
    s, p = s[order], np.maximum.accumulate(p[order])
    last = np.append(s[1:] != s[:-1], True)  # the last (largest) value at each share
    return s[last], p[last]


def apgr(strong_share: ArrayLike, quality: ArrayLike, q_weak: float, q_strong: float) -> float:
    """Average PGR: the area under the PGR curve over the strong share in [0, 1].

    ``strong_share[i]`` (fraction of calls sent to the strong model) and ``quality[i]`` are one
    operating point.  The curve is the monotone envelope of the points: at each share, the best
    PGR reached at that share or any smaller one, joined linearly; ``(0, q_weak)`` and
    ``(1, q_strong)`` are added when no point has share 0 or 1.  The area is exact (trapezoids
    on the envelope).  The straight line from weak to strong scores 0.5.  The envelope is of
    the router's own curve, not of mixtures of its points: a point below the weak-strong line
    pulls the area down.  (RouteLLM's ``evaluate.py`` instead takes trapezoids over the raw,
    possibly non-monotone points, over the range of shares they cover.)

    >>> apgr([0.5], [0.875], 0.5, 1.0)  # PGR 0, 0.75, 1 at shares 0, 0.5, 1
    0.625
    """
    s, p = _envelope(strong_share, quality, q_weak, q_strong, "apgr")
    return float(np.trapezoid(p, s))


def cpt(
    strong_share: ArrayLike, quality: ArrayLike, q_weak: float, q_strong: float, target: float
) -> float:
    """Call-performance threshold: the least strong share whose PGR reaches ``target``.

    Searched on the same monotone envelope as :func:`apgr` and interpolated linearly, so the
    result is in [0, 1] (a fraction, not a percentage); NaN if the envelope never reaches it.

    >>> cpt([0.5], [0.875], 0.5, 1.0, 0.375)  # PGR 0.75 at share 0.5, so 0.375 at 0.25
    0.25
    """
    if not np.isfinite(target):
        raise ValueError(f"cpt: target must be finite, got {target}")
    s, p = _envelope(strong_share, quality, q_weak, q_strong, "cpt")
    i = int(np.searchsorted(p, target, side="left"))  # first envelope point with PGR >= target
    if i == p.size:
        return float("nan")
    if i == 0:
        return float(s[0])
    return float(s[i - 1] + (target - p[i - 1]) / (p[i] - p[i - 1]) * (s[i] - s[i - 1]))
