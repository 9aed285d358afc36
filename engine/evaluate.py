"""Shared pieces of evaluation: the no-call decision, the block size, realised outcomes, BLAS.

Prompts are summed within fixed-size blocks (``BLOCK`` rows, counted from a family's first test
prompt) and block sums are added along one fixed tree over block indices
(:func:`routerbench.sweeps.cells.shard_stats`, :mod:`routerbench.sweeps.tree` and
:func:`~routerbench.sweeps.cells.reduce_stats`, the one reduction path), so a shard made of whole
blocks reproduces the same partial sums and any sharding gives bit-identical totals.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
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


def realised(values: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """``values[i, choice[k, i]]`` for every operating point k, 0 where ``choice == NO_CALL``.

    >>> realised(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1, -1]]))
    array([[2., 0.]])
    """
    choice = np.atleast_2d(choice)
    safe = np.where(choice == NO_CALL, 0, choice)
    out = np.take_along_axis(values[None, :, :], safe[:, :, None], axis=2)[:, :, 0]
    return np.where(choice == NO_CALL, 0.0, out)
