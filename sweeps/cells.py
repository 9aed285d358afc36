"""Evaluate router configurations ("cells") on splits of a data set.

One function evaluates a cell (:func:`evaluate_cell`); search strategies and executors only decide
which cells and where. A cell is one router configuration on one split. Per family it fits the
router on the family's train prompts (:func:`fit_cell`), scores the test prompts block by block
and evaluates every knob value (:func:`shard_stats`), and adds the blocks' sums in block order
(:func:`reduce_stats`): per (family, knob) the points rows (sum and mean of realised cost, mean
quality), and the sums of the exact parameter path and of the bootstrap replicates.
:func:`routerbench.sweeps.summary.summarize` turns them into the curves.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routerbench.engine.bootstrap import poisson_weights
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError, RouterError
from routerbench.engine.evaluate import BLOCK, one_blas_thread
from routerbench.engine.parallel import Deferred, deferring
from routerbench.routers.base import Fitted, Router, create, params_json
from routerbench.sweeps.split import Split


@dataclass(frozen=True)
class Cell:
    """One router configuration on one split; ``index`` is its stable position in the plan."""

    index: int
    router: str
    params: dict[str, Any]
    split: str
    knobs: tuple[float, ...] | None = None
    trial: int = -1  # the Optuna trial slot it comes from (-1: a grid cell); not in its id

    @property
    def params_json(self) -> str:
        return params_json(self.build())

    @property
    def cell_id(self) -> str:
        key = f"{self.router}|{self.params_json}|{self.split}|{self.knobs}"
        return f"{self.index:05d}-{self.router}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"

    def build(self) -> Router:
        return create(self.router, **self.params)


def plan_cells(
    routers: Iterable[tuple[str, Sequence[dict[str, Any]], tuple[float, ...] | None]],
    splits: Sequence[Split],
) -> list[Cell]:
    """Cells in a stable order: routers as listed, their grids key-sorted, then splits."""
    cells: list[Cell] = []
    for name, grid, knobs in routers:
        for params in grid:
            for sp in splits:
                cells.append(Cell(len(cells), name, dict(params), sp.name, knobs))
    return cells


@dataclass
class CellResult:
    """What one cell produced: ``rows`` of the points table, and per family the exact path
    (mean cost and quality per step) and bootstrap replicate means ``[B, K]`` (a NaN row: a
    replicate that gave no test prompt any weight)."""

    cell: Cell
    rows: list[dict[str, Any]] = field(default_factory=list)
    exact: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    boot: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def add(self, part: CellResult) -> None:
        """Take in another part of the same cell (one family's, reduced)."""
        self.rows += part.rows
        self.exact.update(part.exact)
        self.boot.update(part.boot)


@dataclass(eq=False)
class FamilyFit:
    """A cell fitted on one family's train prompts: what every shard of its test prompts needs."""

    cell: Cell
    family: str
    test_rows: np.ndarray  # rows of the data, in order; blocks of BLOCK count from the first
    fitted: Fitted | None
    knobs: np.ndarray
    seconds: float
    error: str = ""


@dataclass
class BlockStats:
    """Sufficient statistics of one block of a family's test prompts (sums over its prompts)."""

    cost: np.ndarray  # [K]
    quality: np.ndarray  # [K]
    count: int
    boot_weight: np.ndarray | None = None  # [B]
    boot_cost: np.ndarray | None = None  # [B, K]
    boot_quality: np.ndarray | None = None  # [B, K]
    path: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # knobs, cost sum, quality sum


def _error(e: BaseException) -> str:
    if isinstance(e, DataError | RouterError | ValueError | ArithmeticError):
        return f"{type(e).__name__}: {e}"
    return f"{type(e).__name__}: {e} | {traceback.format_exc(limit=3)!r}"  # a bug: keep the trace


def fit_cell(
    data: RoutingData, cell: Cell, split: Split, *, fail_fast: bool = False
) -> list[FamilyFit]:
    """Fit a cell's router on each family's train prompts (once; shards reuse the fit).

    Fits handed to worker processes (:mod:`routerbench.engine.parallel`) are all queued before
    any is waited for, so the families' fits keep every worker busy; a family's ``seconds`` is
    its time here plus its fits' time in the workers.
    """
    router = cell.build()
    fits: list[FamilyFit] = []
    waits: list[list[Deferred]] = []
    with deferring() as pending:
        for fam, train_rows, test_rows in split.evaluated():
            t0, first = time.perf_counter(), len(pending)
            try:
                fitted = router.fit(data.take(train_rows))
                knobs = cell.knobs if cell.knobs is not None else fitted.default_knobs()
                knobs = np.asarray(knobs, dtype=np.float64)
                fits.append(
                    FamilyFit(cell, fam, test_rows, fitted, knobs, time.perf_counter() - t0)
                )
            except Exception as e:
                if fail_fast:
                    raise
                seconds = time.perf_counter() - t0
                fits.append(FamilyFit(cell, fam, test_rows, None, np.empty(0), seconds, _error(e)))
            waits.append(pending[first:])
    for fit, deferred in zip(fits, waits, strict=True):
        if fit.fitted is None:
            continue
        try:
            fit.seconds += sum(d.wait() for d in deferred)
        except Exception as e:
            if fail_fast:
                raise
            fit.fitted, fit.knobs, fit.error = None, np.empty(0), _error(e)
    return fits


def shard_stats(
    data: RoutingData,
    fit: FamilyFit,
    lo: int,
    hi: int,
    *,
    bootstrap: int = 0,
    seed: int = 0,
) -> list[BlockStats]:
    """Statistics of test prompts ``fit.test_rows[lo:hi]``, one record per block of ``BLOCK``.

    ``lo`` must be a multiple of ``BLOCK``: a shard is made of whole blocks, so any sharding
    produces the same blocks and, reduced in block order, the same numbers.
    """
    if lo % BLOCK:
        raise ValueError(f"a shard must start at a multiple of BLOCK={BLOCK} (got {lo})")
    assert fit.fitted is not None
    out = []
    keys = data.keys() if bootstrap else None  # hashed once per data set, not per cell
    for domain in fit.fitted.key_domains:
        data.keys(domain)  # likewise the keys the router reads from each block
    with one_blas_thread():
        for s in range(lo, min(hi, len(fit.test_rows)), BLOCK):
            rows = fit.test_rows[s : min(s + BLOCK, hi)]
            block = data.take(rows)
            scores = fit.fitted.score(block)
            cost, quality = fit.fitted.outcomes(scores, block, fit.knobs)
            st = BlockStats(cost.sum(axis=1), quality.sum(axis=1), block.n_prompts)
            if keys is not None:
                w = poisson_weights(seed, keys[rows], bootstrap)
                st.boot_weight = w.sum(axis=1)
                st.boot_cost, st.boot_quality = w @ cost.T, w @ quality.T
            path = fit.fitted.exact_path(scores, block)
            if path is not None:
                st.path = path[:3]
            out.append(st)
    return out


def reduce_stats(fit: FamilyFit, blocks: Sequence[BlockStats]) -> CellResult:
    """Add block statistics in block order: the cell's points rows, exact path and bootstrap."""
    res = CellResult(fit.cell)
    base = {
        "cell_id": fit.cell.cell_id,
        "family": fit.family,
        "split": fit.cell.split,
        "router": fit.cell.router,
        "params": fit.cell.params_json,
    }
    if fit.fitted is None:
        res.rows.append({**base, **_failed_row(fit.error, fit.seconds)})
        return res
    cost = np.cumsum([b.cost for b in blocks], axis=0)[-1]
    quality = np.cumsum([b.quality for b in blocks], axis=0)[-1]
    n = sum(b.count for b in blocks)
    for j, knob in enumerate(fit.knobs):
        res.rows.append(
            {
                **base,
                "knob_name": fit.fitted.knob_name,
                "knob": float(knob),
                "cost_sum": float(cost[j]),
                "cost_mean": float(cost[j] / n),
                "quality_mean": float(quality[j] / n),
                "n": n,
                "status": "ok",
                "error": "",
                "seconds": fit.seconds,
            }
        )
    if blocks[0].boot_weight is not None:
        w = np.cumsum([b.boot_weight for b in blocks], axis=0)[-1]
        # A replicate that drew weight 0 for every test prompt has no mean: NaN, left out of
        # the intervals and counted by summarize (never scored as quality 0 at cost 0).
        w = np.where(w == 0, np.nan, w)[:, None]
        bc = np.cumsum([b.boot_cost for b in blocks], axis=0)[-1] / w
        bq = np.cumsum([b.boot_quality for b in blocks], axis=0)[-1] / w
        res.boot[fit.family] = (bc, bq)
    if blocks[0].path is not None:
        _, pc, pq = merge_paths([b.path for b in blocks if b.path is not None])
        res.exact[fit.family] = (pc / n, pq / n)
    return res


def merge_paths(
    paths: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum step functions given as (breakpoints, values after each) over blocks, in block order.

    Every block's path must start at the same first breakpoint (the knob's lowest value: 0 for
    λ paths, -inf for thresholds), so each block's value is defined at every merged breakpoint.
    """
    firsts = {float(p[0][0]) for p in paths}
    if len(firsts) > 1:
        raise ValueError(
            f"exact paths of one cell start at different knob values: {sorted(firsts)}"
        )
    knots = np.unique(np.concatenate([p[0] for p in paths]))
    cost = np.zeros(len(knots))
    quality = np.zeros(len(knots))
    for k, c, q in paths:
        idx = np.searchsorted(k, knots, side="right") - 1
        cost = cost + c[idx]
        quality = quality + q[idx]
    return knots, cost, quality


def evaluate_cell(
    data: RoutingData,
    cell: Cell,
    split: Split,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    fail_fast: bool = False,
) -> CellResult:
    """Fit, score and evaluate one cell on every family of its split, in this process.

    A family whose evaluation raises becomes a row with ``status="failed"`` and the error, unless
    ``fail_fast``, in which case the error propagates.
    """
    res = CellResult(cell)
    for fit in fit_cell(data, cell, split, fail_fast=fail_fast):
        if fit.fitted is not None:
            try:
                blocks = shard_stats(
                    data, fit, 0, len(fit.test_rows), bootstrap=bootstrap, seed=seed
                )
            except Exception as e:
                if fail_fast:
                    raise
                fit.fitted, fit.error = None, _error(e)
        res.add(reduce_stats(fit, blocks if fit.fitted is not None else []))
    return res


def _failed_row(error: str, seconds: float) -> dict[str, Any]:
    return {
        "knob_name": "",
        "knob": float("nan"),
        "cost_sum": float("nan"),
        "cost_mean": float("nan"),
        "quality_mean": float("nan"),
        "n": 0,
        "status": "failed",
        "error": error,
        "seconds": seconds,
    }
