"""Independent fits on several processes: how many, and the one way they are run.

A library call uses one process unless told otherwise: ``with workers(4): ...`` lets the fits
inside (one regressor per model, ``routers.predictive``) run on up to 4 processes;
``routerbench run`` sets it from ``--workers`` (default: every core). Each fit runs with BLAS on
one thread (:func:`routerbench.engine.evaluate.one_blas_thread`), in a worker process or here,
so its result is bit-identical whatever the number of workers.

Workers are joblib's ``loky`` processes, started on first use and reused by later calls.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
_WORKERS: contextvars.ContextVar[int] = contextvars.ContextVar("routerbench_workers", default=1)


def all_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextmanager
def workers(n: int) -> Iterator[None]:
    """Let the fits inside the block use up to ``n`` processes (n >= 1)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"workers must be an integer >= 1 (got {n!r})")
    token = _WORKERS.set(n)
    try:
        yield
    finally:
        _WORKERS.reset(token)


def current_workers() -> int:
    """The processes fits may use here (1 unless inside :func:`workers`)."""
    return _WORKERS.get()


def _one_thread(fn: Callable[[Any], T], item: Any) -> T:
    from routerbench.engine.evaluate import one_blas_thread

    with one_blas_thread():
        return fn(item)


def map_fits(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """``[fn(x) for x in items]``, in order, on up to :func:`current_workers` processes.

    ``fn`` and the items are pickled to the workers (cloudpickle: closures are fine; NumPy
    arrays over 1 MB are shared through memory maps, not copied).

    >>> map_fits(abs, [-1, 2, -3])
    [1, 2, 3]
    """
    n = min(current_workers(), len(items))
    if n <= 1:
        return [_one_thread(fn, x) for x in items]
    from joblib import Parallel, delayed

    out = Parallel(n_jobs=n, backend="loky")(delayed(_one_thread)(fn, x) for x in items)
    return list(out)
