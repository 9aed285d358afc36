"""Outcome sums: what a routing decision costs and scores, per group of prompts.

The sums are *sufficient statistics*: a router configuration at an operating point needs only, per
group (family), the sum of realised cost, the sum of realised quality and the count. Sums over
prompt blocks add up, so any sharding of the prompts gives the same totals. To make that
bit-identical, prompts are summed within fixed-size blocks (``BLOCK`` rows, counted from row 0 of
the data) and block sums are added in block order; a shard made of whole blocks reproduces the same
partial sums.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

NO_CALL = -1  # a decision that calls no model: cost 0, quality 0 (upstream's no_model_correct)
BLOCK = 4096  # prompts per reduction block; fixed so results never depend on the worker count


@functools.cache
def _blas() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with BLAS on one thread.

    OpenBLAS may split a product's sums between threads, so the bits of a result would depend on
    the machine's core count; and its idle threads spin, taking CPU from other workers (one
    thread fitted the MLP 4-6x faster than OpenBLAS's default on a busy 2-core machine). Every
    product whose result is reported (bootstrap sums, predictive fits and scores) runs inside
    this; ``@one_blas_thread()`` also decorates a function.
    """
    with _blas().limit(limits=1, user_api="blas"):
        yield


@dataclass(frozen=True)
class Sums:
    """Per group and operating point: ``cost[g, k]``, ``quality[g, k]``, ``count[g]``."""

    cost: np.ndarray
    quality: np.ndarray
    count: np.ndarray

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-query mean cost and mean quality ``[g, k]`` (NaN for an empty group)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            n = self.count[:, None].astype(np.float64)
            return self.cost / n, self.quality / n


def realised(values: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """``values[i, choice[k, i]]`` for every operating point k, 0 where ``choice == NO_CALL``.

    >>> realised(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1, -1]]))
    array([[2., 0.]])
    """
    choice = np.atleast_2d(choice)
    safe = np.where(choice == NO_CALL, 0, choice)
    out = np.take_along_axis(values[None, :, :], safe[:, :, None], axis=2)[:, :, 0]
    return np.where(choice == NO_CALL, 0.0, out)


def block_sums(
    per_prompt: np.ndarray, group: np.ndarray, n_groups: int, start: int = 0
) -> np.ndarray:
    """Sum ``per_prompt[k, i]`` by group within fixed blocks: ``[n_blocks, n_groups, k]``.

    ``start`` is the global row index of the first prompt (a multiple of ``BLOCK``), so a shard's
    blocks line up with the blocks of the whole data set.
    """
    if start % BLOCK:
        raise ValueError(f"start must be a multiple of BLOCK={BLOCK} (got {start})")
    per_prompt = np.atleast_2d(per_prompt)
    k, n = per_prompt.shape
    n_blocks = max(1, -(-n // BLOCK))
    key = (np.arange(n) // BLOCK) * n_groups + group
    out = np.empty((n_blocks, n_groups, k))
    for j in range(k):  # bincount adds in row order: deterministic
        out[:, :, j] = np.bincount(key, per_prompt[j], minlength=n_blocks * n_groups).reshape(
            n_blocks, n_groups
        )
    return out


def reduce_blocks(blocks: np.ndarray) -> np.ndarray:
    """Add block sums in block order (sequentially, so the tree never depends on sharding)."""
    return np.cumsum(blocks, axis=0)[-1]


def outcome_sums(
    quality: np.ndarray, cost: np.ndarray, choice: np.ndarray, group: np.ndarray, n_groups: int
) -> Sums:
    """Per-group sums of realised cost and quality for a decision matrix ``choice[k, n]``.

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> c = np.array([[1.0, 0.1], [1.0, 0.1], [1.0, 0.1]])
    >>> s = outcome_sums(q, c, np.array([[0, 0, 1], [1, 1, 1]]), np.array([0, 0, 1]), 2)
    >>> s.cost.tolist(), s.quality.tolist(), s.count.tolist()
    ([[2.0, 0.2], [0.1, 0.1]], [[1.0, 1.0], [1.0, 1.0]], [2, 1])
    """
    choice = np.atleast_2d(choice)
    return per_prompt_sums(realised(cost, choice), realised(quality, choice), group, n_groups)


def per_prompt_sums(
    cost: np.ndarray, quality: np.ndarray, group: np.ndarray, n_groups: int
) -> Sums:
    """Per-group sums of per-prompt outcomes ``cost[k, n]`` and ``quality[k, n]``."""
    group = np.asarray(group, dtype=np.int64)
    cs = reduce_blocks(block_sums(cost, group, n_groups))
    qs = reduce_blocks(block_sums(quality, group, n_groups))
    return Sums(cost=cs, quality=qs, count=np.bincount(group, minlength=n_groups))
