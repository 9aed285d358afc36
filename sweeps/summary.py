"""The points and curves tables of a run, from its cells' results.

Per (split, family) every curve gets the hull, AIQ and max quality with their bootstrap
intervals, the original's ``calc_AIQ``, the family's ceiling (the oracle frontier's AIQ) and the
*gap closed*, ``(AIQ − AIQ_zero) / (AIQ_frontier − AIQ_zero)``: 0 for the zero router, 1 for the
frontier. Every cell of a family is evaluated on the same bootstrap replicates (weights keyed by
prompt), so the replicates are paired: the gap's interval and the paired differences of
:mod:`routerbench.sweeps.compare` are percentile intervals of per-replicate values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from routerbench.engine.bootstrap import interval, recentre
from routerbench.engine.metrics import (
    aiq,
    aiq_rows,
    aiq_upstream,
    aiq_upstream_path,
    common_range,
    max_quality,
    ndch,
)
from routerbench.sweeps import schema
from routerbench.sweeps.labels import kind, short_labels

if TYPE_CHECKING:
    from routerbench.engine.data import RoutingData
    from routerbench.sweeps.cells import Cell, CellResult
    from routerbench.sweeps.split import Split

MIN_N, SMALL_N = schema.MIN_N, schema.SMALL_N
QUALITY = (0.0, 1.0)  # the range of a mean quality, a max quality and an AIQ
COST = (0.0, math.inf)  # the range of a mean cost
GAP_REFERENCES = ("zero", "frontier")  # every plan has them (see sweeps.execute.plan)
POINT_COLUMNS = list(schema.POINTS)[:14]  # the intervals are added by summarize
CURVE_COLUMNS = list(schema.CURVES)


@dataclass(frozen=True)
class Results:
    """``points``: one row per (cell, family, knob); ``curves``: one per (cell, family)."""

    points: pd.DataFrame
    curves: pd.DataFrame


def single_model_ranges(
    data: RoutingData, splits: Sequence[Split]
) -> dict[tuple[str, str], tuple[float, float]]:
    """Per (split, family): the cheapest and dearest single model's mean cost on the test rows
    (:func:`~routerbench.sweeps.cells.split_mean_costs`)."""
    from routerbench.sweeps.cells import split_mean_costs

    return cost_ranges(split_mean_costs(data, splits))


def cost_ranges(
    means: dict[tuple[str, str], np.ndarray],
) -> dict[tuple[str, str], tuple[float, float]]:
    """Per (split, family): the lowest and highest of the models' mean costs."""
    return {pair: (float(np.min(mc)), float(np.max(mc))) for pair, mc in means.items()}


@dataclass(frozen=True)
class _Curve:
    """What a curves row is made of: one cell on one family of a split."""

    split: str
    family: str
    cell: Cell
    point_rows: np.ndarray  # its rows of the points table
    cost: np.ndarray  # the curve's points (the exact path's where there is one)
    quality: np.ndarray
    grid: tuple[np.ndarray, np.ndarray]  # the grid's points (mean cost, quality per knob)
    grid_sum: np.ndarray  # the grid's cost sums (the original's unit, for aiq_upstream)
    boot: tuple[np.ndarray, np.ndarray] | None  # kept replicates [B', K]; None: no interval
    kept: np.ndarray | None  # [B]: which replicates boot holds (the others had no weight)
    n: int  # test prompts
    excluded: int  # replicates left out: every test prompt drew weight 0


def _replicates(
    boot: tuple[np.ndarray, np.ndarray] | None, n: int
) -> tuple[tuple[np.ndarray, np.ndarray] | None, np.ndarray | None, int]:
    """The replicates an interval is computed from (None: no interval), which of all replicates
    they are, and how many were left out for having no weight (NaN rows, see ``reduce_stats``)."""
    if boot is None:
        return None, None, 0
    kept = ~np.isnan(boot[0]).any(axis=1)
    excluded = len(kept) - int(kept.sum())
    if n < MIN_N or not kept.any():
        return None, None, excluded
    return (boot[0][kept], boot[1][kept]), kept, excluded


def _entries(results: Sequence[CellResult], points: pd.DataFrame, confidence: float) -> list[Any]:
    """The curves' ingredients per (cell, family); fills the points' interval columns."""
    cost_mean, quality_mean = points["cost_mean"].to_numpy(), points["quality_mean"].to_numpy()
    cost_sum, counts = points["cost_sum"].to_numpy(), points["n"].to_numpy()
    entries = []
    start = 0  # the points rows of result r are rows start .. start + len(r.rows) - 1
    for r in results:
        fams = [row["family"] for row in r.rows]
        for fam in dict.fromkeys(fams):
            ok = np.array(
                [
                    start + i
                    for i, row in enumerate(r.rows)
                    if fams[i] == fam and row["status"] == "ok"
                ],
                dtype=np.intp,
            )
            if not len(ok):
                continue
            grid = (cost_mean[ok], quality_mean[ok])
            c, q = r.exact.get(str(fam), grid)
            n = int(counts[ok[0]])
            boot, kept, excluded = _replicates(r.boot.get(str(fam)), n)
            entries.append(
                _Curve(
                    r.cell.split,
                    str(fam),
                    r.cell,
                    ok,
                    c,
                    q,
                    grid,
                    cost_sum[ok],
                    boot,
                    kept,
                    n,
                    excluded,
                )
            )
        start += len(r.rows)
    bounds = np.full((len(points), 4), np.nan)  # cost_lo, cost_hi, quality_lo, quality_hi
    have = [(e.point_rows, e.boot) for e in entries if e.boot is not None]
    # percentile intervals: inside the ranges (see interval)
    cost_ci = _intervals([b[0] for _, b in have], confidence, COST)
    quality_ci = _intervals([b[1] for _, b in have], confidence, QUALITY)
    for (ok, _), c_ci, q_ci in zip(have, cost_ci, quality_ci, strict=True):
        bounds[ok] = np.column_stack([*c_ci, *q_ci])
    for j, col in enumerate(("cost_lo", "cost_hi", "quality_lo", "quality_hi")):
        points[col] = bounds[:, j]
    return entries


def _intervals(
    samples: Sequence[np.ndarray], confidence: float, bounds: tuple[float, float]
) -> list[np.ndarray]:
    """``interval(s, confidence, bounds=bounds)`` of each of ``samples`` (replicates along axis
    0), with one quantile call per number of replicates: column by column the same numbers."""
    out: list[np.ndarray] = [np.empty(0)] * len(samples)
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(samples):
        by_len.setdefault(len(s), []).append(i)
    for idx in by_len.values():
        cols = [samples[i].reshape(len(samples[i]), -1) for i in idx]
        ci = interval(np.hstack(cols), confidence, bounds=bounds)
        ends = np.cumsum([c.shape[1] for c in cols])
        for i, c, end in zip(idx, cols, ends, strict=True):
            out[i] = ci[:, end - c.shape[1] : end].reshape(2, *samples[i].shape[1:])
    return out


def summarize(
    results: Sequence[CellResult],
    ranges: dict[tuple[str, str], tuple[float, float]],
    *,
    aiq_range: str = "single-models",
    confidence: float = 0.95,
) -> Results:
    """The points and curves tables of a run, with bootstrap intervals where replicates exist."""
    points = pd.DataFrame([row for r in results for row in r.rows], columns=POINT_COLUMNS)
    entries = _entries(results, points, confidence)
    points = points[list(schema.POINTS)]
    rows = []
    by_group: dict[tuple[str, str], list[_Curve]] = {}
    for e in entries:
        by_group.setdefault((e.split, e.family), []).append(e)
    for (split, fam), group in by_group.items():
        hulls = [ndch(e.cost, e.quality) for e in group]
        if aiq_range == "common":
            c_min, c_max = common_range(hulls)
        else:
            c_min, c_max = ranges[(split, fam)]
        part = [_curve_row(e, hull, c_min, c_max) for e, hull in zip(group, hulls, strict=True)]
        _replicate_columns(group, part, c_min, c_max, confidence)
        _upstream(group, hulls, part)
        gap_closed(part, confidence)
        rows += part
    curves = pd.DataFrame(rows, columns=[c for c in CURVE_COLUMNS if c not in ("kind", "label")])
    curves.insert(5, "kind", [kind(r) for r in curves["router"]])
    curves.insert(6, "label", short_labels(curves["router"], curves["params"], curves["trial"]))
    return Results(points=points, curves=curves[CURVE_COLUMNS])


def _upstream(
    group: list[_Curve], hulls: list[tuple[np.ndarray, np.ndarray]], rows: list[dict[str, Any]]
) -> None:
    """The original's calc_AIQ on the grid's points in its unit (cost sums), and its formula on
    the exact paths' points (mean cost), over the routers the original has: not the frontier."""
    theirs = [i for i, e in enumerate(group) if e.cell.router != "frontier"]
    for row in rows:
        row.update(aiq_upstream=np.nan, aiq_upstream_path=np.nan)
        row["aiq_upstream_note"] = "a reference the original does not have"
    if not theirs:
        return
    up, notes = aiq_upstream([(group[i].grid_sum, group[i].grid[1]) for i in theirs])
    up_path = aiq_upstream_path(
        [(group[i].cost, group[i].quality) for i in theirs], [hulls[i] for i in theirs]
    )
    for j, i in enumerate(theirs):
        rows[i].update(aiq_upstream=up[j], aiq_upstream_note=notes[j], aiq_upstream_path=up_path[j])


def _spread(kept: np.ndarray, values: np.ndarray) -> list[float]:
    """Replicate values at their replicates' positions; NaN where a replicate had no weight."""
    out = np.full(len(kept), np.nan)
    out[kept] = values
    return out.tolist()


def _curve_row(
    e: _Curve, hull: tuple[np.ndarray, np.ndarray], c_min: float, c_max: float
) -> dict[str, Any]:
    """One curves row: the hull, AIQ and max quality; no intervals or replicates yet."""
    qmax, cmax = max_quality(e.cost, e.quality)
    return {
        "cell_id": e.cell.cell_id,
        "family": e.family,
        "split": e.split,
        "router": e.cell.router,
        "params": e.cell.params_json,
        "trial": e.cell.trial,
        "hull_cost": hull[0].tolist(),
        "hull_quality": hull[1].tolist(),
        "aiq": aiq(*hull, c_min, c_max),
        "c_min": c_min,
        "c_max": c_max,
        "max_quality": qmax,
        "cost_at_max_quality": cmax,
        "aiq_lo": np.nan,
        "aiq_hi": np.nan,
        "max_quality_lo": np.nan,
        "max_quality_hi": np.nan,
        "n_test": e.n,
        "small_sample": e.n < SMALL_N,
        "boot_excluded": e.excluded,
        "aiq_reps": [],
        "max_quality_reps": [],
    }


def _aiq_blocks(
    blocks: Sequence[tuple[np.ndarray, np.ndarray]], c_min: float, c_max: float
) -> list[np.ndarray]:
    """``aiq_rows(cost, quality, c_min, c_max)`` of each block ``[rows, K]``, with one call per
    K: row by row the same numbers."""
    out: list[np.ndarray] = [np.empty(0)] * len(blocks)
    by_width: dict[int, list[int]] = {}
    for i, (cost, _) in enumerate(blocks):
        by_width.setdefault(cost.shape[1], []).append(i)
    for idx in by_width.values():
        values = aiq_rows(
            np.vstack([blocks[i][0] for i in idx]),
            np.vstack([blocks[i][1] for i in idx]),
            c_min,
            c_max,
        )
        ends = np.cumsum([len(blocks[i][0]) for i in idx])
        for i, end in zip(idx, ends, strict=True):
            out[i] = values[end - len(blocks[i][0]) : end]
    return out


def _replicate_columns(
    group: list[_Curve], rows: list[dict[str, Any]], c_min: float, c_max: float, confidence: float
) -> None:
    """The AIQ and max-quality intervals and replicates of the rows whose curve has replicates,
    in place, for a whole family at once (see :func:`_aiq_blocks` and :func:`_intervals`).

    Percentile intervals of the replicates, computed on the grid's points. Where the estimate
    comes from an exact path (which the grid only samples), the interval is moved from the grid's
    estimate to the exact one by recentre: it stays in [0, 1] and holds the exact estimate
    whenever the grid's interval held the grid's. The stored replicates are shifted by the same
    difference, for paired comparisons.
    """
    have = [
        (rows[i], e, e.boot, e.kept)
        for i, e in enumerate(group)
        if e.boot is not None and e.kept is not None
    ]
    blocks = []
    for _, e, boot, _ in have:  # each curve's replicates, then its grid's points as one row
        blocks += [boot, (e.grid[0][None], e.grid[1][None])]
    values = _aiq_blocks(blocks, c_min, c_max)
    aiq_ci = _intervals(values[0::2], confidence, QUALITY)
    mq_reps = [boot[1].max(axis=1) for _, _, boot, _ in have]
    mq_ci = _intervals(mq_reps, confidence, QUALITY)
    for (row, e, _, kept), reps, grid, a_ci, mq, m_ci in zip(
        have, values[0::2], values[1::2], aiq_ci, mq_reps, mq_ci, strict=True
    ):
        grid_aiq = float(grid[0])
        row["aiq_lo"], row["aiq_hi"] = recentre(a_ci, grid_aiq, row["aiq"], QUALITY).tolist()
        row["aiq_reps"] = _spread(kept, reps + (row["aiq"] - grid_aiq))
        grid_max, qmax = float(e.grid[1].max()), row["max_quality"]
        row["max_quality_lo"], row["max_quality_hi"] = recentre(
            m_ci, grid_max, qmax, QUALITY
        ).tolist()
        row["max_quality_reps"] = _spread(kept, mq + (qmax - grid_max))


def gap_closed(
    rows: list[dict[str, Any]],
    confidence: float,
    paired: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None,
) -> None:
    """Each row's ceiling (the frontier's AIQ) and gap closed with its interval, in place: per
    replicate ``(a − z) / (f − z)`` (replicates where ``f <= z`` left out). ``rows``: one family
    (or the leaderboard's overall scope) with ``router``, ``params``, ``aiq`` and ``aiq_reps``;
    the zero router is the fitted one where there are several. ``paired(row, reference)``: whether
    two rows' replicates were drawn together (default: all rows were)."""
    zero = next((r for r in rows if r["router"] == "zero" and '"fitted"' in r["params"]), None)
    zero = zero or next((r for r in rows if r["router"] == "zero"), None)
    front = next((r for r in rows if r["router"] == "frontier"), None)
    todo: list[tuple[dict[str, Any], np.ndarray]] = []  # rows with an interval, their values
    for row in rows:
        row.update(aiq_frontier=np.nan, gap_closed=np.nan, gap_closed_lo=np.nan)
        row["gap_closed_hi"] = np.nan
        if front is None:
            continue
        row["aiq_frontier"] = front["aiq"]
        if zero is None or not front["aiq"] > zero["aiq"]:
            continue
        row["gap_closed"] = (row["aiq"] - zero["aiq"]) / (front["aiq"] - zero["aiq"])
        if paired is not None and not (paired(row, zero) and paired(row, front)):
            continue
        a, z, f = (np.asarray(r["aiq_reps"], dtype=np.float64) for r in (row, zero, front))
        if len(a) == 0 or not len(a) == len(z) == len(f):
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.where(f > z, (a - z) / (f - z), np.nan)
        g = g[np.isfinite(g)]
        if len(g) >= 2:
            todo.append((row, g))
    gaps = _intervals([g for _, g in todo], confidence, (-math.inf, math.inf))
    for (row, _), ci in zip(todo, gaps, strict=True):
        row["gap_closed_lo"], row["gap_closed_hi"] = ci.tolist()


LIST_COLUMNS = ("hull_cost", "hull_quality", "aiq_reps", "max_quality_reps")


def complete(curves: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``curves`` with every :data:`schema.CURVES` column: a run written before some
    existed gets ``kind`` and ``label`` derived, ``trial`` -1, gaps and ceiling NaN and no
    replicates. Other columns (a leaderboard's provenance) are kept."""
    df = curves.reset_index(drop=True)
    if "kind" not in df:
        df["kind"] = [kind(r) for r in df["router"]]
    df["trial"] = df["trial"].fillna(-1).astype(int) if "trial" in df else -1
    if "label" not in df:
        df["label"] = short_labels(df["router"], df["params"], df["trial"])
    missing: dict[str, Any] = {"aiq_upstream_note": "", "small_sample": False, "boot_excluded": 0}
    for c in CURVE_COLUMNS:
        if c in LIST_COLUMNS and c not in df:
            df[c] = pd.Series([[] for _ in range(len(df))], index=df.index, dtype=object)
        elif c not in df:
            df[c] = missing.get(c, np.nan)
    return df
