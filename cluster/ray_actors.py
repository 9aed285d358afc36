"""The remote side of the Ray executor: fit tasks and the actors that hold shards of test prompts.

Both run the same functions as one process does (:func:`~routerbench.sweeps.cells.fit_family`,
:func:`~routerbench.sweeps.cells.shard_stats`, :func:`~routerbench.sweeps.cells.block_nodes`),
so their numbers are the in-process numbers.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
from typing import Any

import numpy as np
import ray

from routerbench.cluster.ray_layout import array_bytes
from routerbench.engine.data import RoutingData
from routerbench.engine.evaluate import BLOCK
from routerbench.engine.memo import Bounded
from routerbench.engine.rowgroups import ParquetRows
from routerbench.sweeps import cells
from routerbench.sweeps.cells import (
    TRAIN_BUDGET,
    BlockStats,
    Cell,
    FamilyFit,
    _error,
    cost_stats,
    n_blocks,
    shard_stats,
    train_bytes,
)
from routerbench.sweeps.tree import Node, partial

# Training sets a fit worker has unpickled (or read from Parquet), by object id. Unpickling one
# (its prompt ids, eval names and families are Python strings) cost more than most fits, once per
# (cell, family); kept, it is once per family and worker. The 16 most recently stored are kept,
# within the process's budget for training sets.
_TRAIN: Bounded[str, RoutingData] = Bounded(16, weigh=train_bytes, budget=TRAIN_BUDGET)


@ray.remote(num_cpus=1, num_returns=2)
def fit_family(
    train: list[Any], test_rows: np.ndarray, cell: Cell, family: str, fail_fast: bool
) -> tuple[FamilyFit, FamilyFit]:
    """Fit ``cell`` on one family's training rows: ``train[0]``, an object ref (passed in a list
    so that this worker can reuse the unpickled set) of the rows, or of (a Parquet file, the
    rows) that this task reads. Two objects: the fit, for the
    actors, and the fit without its router (:meth:`FamilyFit.light`), for the driver."""
    data = _TRAIN.get(train[0].hex(), lambda: _rows(ray.get(train[0])))
    fit = cells.fit_family(
        data, cell, family, np.arange(data.n_prompts), test_rows, fail_fast=fail_fast
    )
    return fit, fit.light()


def _rows(source: RoutingData | tuple[ParquetRows, np.ndarray]) -> RoutingData:
    """A data set as stored for a task or actor: itself, or (a Parquet file, rows) to read."""
    return source if isinstance(source, RoutingData) else source[0].read(source[1])


def peak_rss() -> int:
    """This process's peak resident memory in bytes: Linux's ``VmHWM`` (since the process
    started its program; ``ru_maxrss`` would carry a forking parent's peak across exec), else
    ``getrusage``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class ShardActor:
    """Holds one shard of test prompts and evaluates fitted routers on its blocks.

    ``plan[key]`` gives, for (split, family) pair ``key``, the global indices of this shard's
    blocks and the shard-local rows of those blocks, concatenated in block order (every block but
    a family's last is whole, so block ``i`` of the local rows is global block ``blocks[i]``).
    """

    def __init__(self, shard: list[Any]) -> None:
        self._baseline = peak_rss()
        self._plan: dict[int, tuple[np.ndarray, np.ndarray]]
        source, self._plan = ray.get(shard[0])
        self._data = _rows(source)
        self._bytes = array_bytes(self._data)

    def ready(self) -> bool:
        """True once the shard is loaded."""
        return True

    def evaluate(
        self, fit: FamilyFit, key: int, opts: dict[str, Any]
    ) -> dict[Node, BlockStats] | tuple[int, str]:
        """This shard's blocks of the fit's family, added up as far as the fixed tree allows
        (:func:`~routerbench.sweeps.cells.block_nodes`), or ``(block index, error)`` for the
        first block that failed (unless ``fail_fast``)."""
        blocks, rows = self._plan[key]
        if fit.fitted is None:
            return {}
        local = dataclasses.replace(fit, test_rows=rows)
        leaves: dict[Node, BlockStats] = {}
        for i, b in enumerate(blocks.tolist()):
            try:
                [st] = shard_stats(
                    self._data,
                    local,
                    i * BLOCK,
                    (i + 1) * BLOCK,
                    bootstrap=opts["bootstrap"],
                    seed=opts["seed"],
                )
            except Exception as e:
                if opts["fail_fast"]:
                    raise
                return (b, _error(e))
            leaves[(0, b)] = st
        return partial(leaves, n_blocks(len(fit.test_rows)), BlockStats.__add__)

    def cost_nodes(self, key: int, n_rows: int) -> dict[Node, BlockStats]:
        """This shard's blocks of pair ``key`` (``n_rows`` test prompts in all): the models'
        known-cost sums and counts (:func:`~routerbench.sweeps.cells.cost_stats`), added up as
        far as the tree allows."""
        blocks, rows = self._plan[key]
        leaves = {}
        for i, b in enumerate(blocks.tolist()):
            [leaves[(0, b)]] = cost_stats(self._data, rows, i * BLOCK, (i + 1) * BLOCK)
        return partial(leaves, n_blocks(n_rows), BlockStats.__add__)

    def info(self) -> dict[str, Any]:
        """Where this actor runs and its memory: peak RSS before and after loading and working."""
        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "rows": self._data.n_prompts,
            "shard_bytes": self._bytes,
            "baseline_rss": self._baseline,
            "peak_rss": peak_rss(),
        }


Actor = ray.remote(ShardActor)
