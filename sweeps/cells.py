"""Evaluate router configurations ("cells") on splits of a data set.

One function evaluates a cell (:func:`evaluate_cell`); search strategies and executors only decide
which cells and where. A cell is one router configuration on one split. Per family it fits the
router on the family's train prompts (:func:`fit_family`), scores the test prompts block by block
and evaluates every knob value (:func:`shard_stats`), and adds the blocks' sums along a fixed tree
over block indices (:mod:`routerbench.sweeps.tree`, :func:`reduce_stats`), so any sharding of the
blocks gives the same bits: per (family, knob) the points rows (sum and mean of realised cost, mean
quality), and the sums of the exact parameter path and of the bootstrap replicates.
:func:`routerbench.sweeps.summary.summarize` turns them into the curves.
"""

from __future__ import annotations

import dataclasses
import functools
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
from routerbench.engine.memo import Bounded
from routerbench.engine.parallel import total_memory
from routerbench.routers.base import Fitted, Router, create, params_json
from routerbench.sweeps.split import Split
from routerbench.sweeps.tree import Node, partial, root


@dataclass(frozen=True)
class Cell:
    """One router configuration on one split; ``index`` is its stable position in the plan."""

    index: int
    router: str
    params: dict[str, Any]
    split: str
    knobs: tuple[float, ...] | None = None
    trial: int = -1  # the Optuna trial slot it comes from (-1: a grid cell); not in its id

    @functools.cached_property
    def params_json(self) -> str:
        return params_json(self.build())

    @functools.cached_property
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
    knob_name: str = ""
    error: str = ""  # set: the fit (or the evaluation) failed

    def light(self) -> FamilyFit:
        """This fit without the fitted router: what the reduction needs."""
        return dataclasses.replace(self, fitted=None)


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

    def __add__(self, other: BlockStats) -> BlockStats:
        """The statistics of both blocks' prompts (this block first)."""
        out = BlockStats(
            self.cost + other.cost, self.quality + other.quality, self.count + other.count
        )
        if self.boot_weight is not None and other.boot_weight is not None:
            out.boot_weight = self.boot_weight + other.boot_weight
            out.boot_cost = _plus(self.boot_cost, other.boot_cost)
            out.boot_quality = _plus(self.boot_quality, other.boot_quality)
        if self.path is not None and other.path is not None:
            out.path = merge_paths([self.path, other.path])
        return out


def _plus(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return None if a is None or b is None else a + b


def n_blocks(rows: int) -> int:
    """Blocks of ``BLOCK`` prompts that ``rows`` test prompts are cut into."""
    return -(-rows // BLOCK)


def block_nodes(fit: FamilyFit, first: int, blocks: Sequence[BlockStats]) -> dict[Node, BlockStats]:
    """Blocks ``first, first + 1, ...`` of a family's test prompts added up as far as the tree
    allows without the others: what a shard sends on (:func:`routerbench.sweeps.tree.partial`)."""
    leaves = {(0, first + i): b for i, b in enumerate(blocks)}
    return partial(leaves, n_blocks(len(fit.test_rows)), BlockStats.__add__)


def _error(e: BaseException) -> str:
    if isinstance(e, DataError | RouterError | ValueError | ArithmeticError):
        return f"{type(e).__name__}: {e}"
    return f"{type(e).__name__}: {e} | {traceback.format_exc(limit=3)!r}"  # a bug: keep the trace


TRAIN_BUDGET = (total_memory() or 8 << 30) // 8  # bytes of training sets a process keeps


def train_bytes(data: RoutingData) -> int:
    """A training set's rough size: quality, cost and features, ~200 bytes of strings a prompt."""
    return data.cost.nbytes * 3 + 200 * data.n_prompts


# Training sets taken from a data set, by (data, rows): a family's training set serves every cell
# fitted on it in this process (taking ~200,000 rows of 11 models and 32 features costs more
# than most fits). The value holds the data, so its id is not reused while the entry lives.
_TRAIN_SETS: Bounded[tuple[int, int, bytes], tuple[RoutingData, RoutingData]] = Bounded(
    32, weigh=lambda v: train_bytes(v[1]), budget=TRAIN_BUDGET
)


def training_set(data: RoutingData, rows: np.ndarray) -> RoutingData:
    """``data.take(rows)``, taken once per process for the same data and rows."""
    rows = np.asarray(rows)
    if len(rows) == data.n_prompts:  # all of it (a Ray fit task's set): nothing to keep
        return data.take(rows)
    key = (id(data), len(rows), hashlib.sha1(rows.tobytes()).digest())
    return _TRAIN_SETS.get(key, lambda: (data, data.take(rows)))[1]


def fit_family(
    data: RoutingData,
    cell: Cell,
    family: str,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    *,
    fail_fast: bool = False,
) -> FamilyFit:
    """Fit a cell's router on one family's train prompts (once: every shard of its test
    prompts reuses the fit). A failure is kept in ``error`` (raised with ``fail_fast``)."""
    t0 = time.perf_counter()
    try:
        fitted = cell.build().fit(training_set(data, train_rows))
        knobs = np.asarray(
            cell.knobs if cell.knobs is not None else fitted.default_knobs(), dtype=np.float64
        )
        return FamilyFit(
            cell, family, test_rows, fitted, knobs, time.perf_counter() - t0, fitted.knob_name
        )
    except Exception as e:
        if fail_fast:
            raise
        seconds = time.perf_counter() - t0
        return FamilyFit(cell, family, test_rows, None, np.empty(0), seconds, error=_error(e))


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
    if fit.fitted is None:
        raise ValueError(f"{fit.cell.cell_id} on {fit.family}: no fitted router to evaluate")
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


def cost_stats(data: RoutingData, rows: np.ndarray, lo: int, hi: int) -> list[BlockStats]:
    """Per block of ``rows[lo:hi]`` (``lo`` a multiple of ``BLOCK``): each model's sum of known
    costs (``cost``) and how many are known (``quality``), for the single models' mean costs
    (:func:`mean_costs`), added along the same tree as a cell's statistics."""
    out = []
    for s in range(lo, min(hi, len(rows)), BLOCK):
        cost = data.cost[rows[s : min(s + BLOCK, hi)]]
        known = ~np.isnan(cost)
        out.append(
            BlockStats(np.where(known, cost, 0.0).sum(axis=0), known.sum(axis=0) * 1.0, len(cost))
        )
    return out


def mean_costs(nodes: dict[Node, BlockStats], n_rows: int) -> np.ndarray:
    """Each model's mean known cost over ``n_rows`` rows from their :func:`cost_stats` (tree
    nodes covering every block); NaN for a model with no known cost."""
    total = root(nodes, n_blocks(n_rows), BlockStats.__add__)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total.cost / total.quality


def split_mean_costs(
    data: RoutingData, splits: Sequence[Split]
) -> dict[tuple[str, str], np.ndarray]:
    """Per (split, family) with test prompts: each model's mean known cost on them
    (:func:`mean_costs`), in this process."""
    out = {}
    for sp in splits:
        for fam, rows in sp.test.items():
            if len(rows):
                blocks = cost_stats(data, rows, 0, len(rows))
                leaves = {(0, i): b for i, b in enumerate(blocks)}
                out[(sp.name, fam)] = mean_costs(leaves, len(rows))
    return out


def reduce_stats(fit: FamilyFit, nodes: dict[Node, BlockStats]) -> CellResult:
    """The cell's points rows, exact path and bootstrap on one family from its blocks'
    statistics: tree nodes (:func:`block_nodes`) covering every block, added up the fixed tree."""
    res = CellResult(fit.cell)
    base = {
        "cell_id": fit.cell.cell_id,
        "family": fit.family,
        "split": fit.cell.split,
        "router": fit.cell.router,
        "params": fit.cell.params_json,
    }
    if fit.error:
        res.rows.append({**base, **_failed_row(fit.error, fit.seconds)})
        return res
    total = root(nodes, n_blocks(len(fit.test_rows)), BlockStats.__add__)
    n = total.count
    for j, knob in enumerate(fit.knobs):
        res.rows.append(
            {
                **base,
                "knob_name": fit.knob_name,
                "knob": float(knob),
                "cost_sum": float(total.cost[j]),
                "cost_mean": float(total.cost[j] / n),
                "quality_mean": float(total.quality[j] / n),
                "n": n,
                "status": "ok",
                "error": "",
                "seconds": fit.seconds,
            }
        )
    if total.boot_weight is not None:
        # A replicate that drew weight 0 for every test prompt has no mean: NaN, left out of
        # the intervals and counted by summarize (never scored as quality 0 at cost 0).
        w = np.where(total.boot_weight == 0, np.nan, total.boot_weight)[:, None]
        assert total.boot_cost is not None and total.boot_quality is not None
        res.boot[fit.family] = (total.boot_cost / w, total.boot_quality / w)
    if total.path is not None:
        _, pc, pq = total.path
        res.exact[fit.family] = (pc / n, pq / n)
    return res


def merge_paths(
    paths: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum step functions given as (breakpoints, values after each), in the order given.

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


def evaluate_family(
    data: RoutingData,
    cell: Cell,
    family: str,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    fail_fast: bool = False,
) -> CellResult:
    """Fit, score and evaluate one cell on one family, in this process: a part of the cell's
    result (:meth:`CellResult.add`). A failure becomes a row with ``status="failed"`` and the
    error, unless ``fail_fast``, in which case the error propagates."""
    fit = fit_family(data, cell, family, train_rows, test_rows, fail_fast=fail_fast)
    nodes: dict[Node, BlockStats] = {}
    if not fit.error:
        try:
            blocks = shard_stats(data, fit, 0, len(test_rows), bootstrap=bootstrap, seed=seed)
            nodes = block_nodes(fit, 0, blocks)
        except Exception as e:
            if fail_fast:
                raise
            fit.error = _error(e)
    return reduce_stats(fit, nodes)


def evaluate_cell(
    data: RoutingData,
    cell: Cell,
    split: Split,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    fail_fast: bool = False,
) -> CellResult:
    """Fit, score and evaluate one cell on every family of its split, in this process
    (:func:`evaluate_family`, family by family)."""
    res = CellResult(cell)
    for fam, train_rows, test_rows in split.evaluated():
        res.add(
            evaluate_family(
                data, cell, fam, train_rows, test_rows,
                bootstrap=bootstrap, seed=seed, fail_fast=fail_fast,
            )
        )  # fmt: skip
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
