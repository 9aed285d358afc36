"""Independent fits on several processes: how many, and the one way they are run.

A library call uses one process unless told otherwise: ``with workers(4): ...`` lets the fits
inside (one regressor per model, ``routers.predictive``) run on up to 4 worker processes;
``routerbench run`` sets it from ``--workers`` (default: every core). Each fit runs with BLAS on
one thread (:func:`routerbench.engine.evaluate.one_blas_thread`), in a worker or here, so its
result is bit-identical whatever the number of workers.

Inside ``with deferring() as pending:`` :func:`map_fits` does not wait: it hands the fits to the
workers and returns a :class:`Deferred`, collected in ``pending``, so the fits of several
families (or cells) queue together and keep every worker busy; :meth:`Deferred.wait` then gives
the fitting seconds or raises the fit's error.

Workers are ``loky`` processes (joblib's), started on first use and kept while they have work.
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

_WORKERS: contextvars.ContextVar[int] = contextvars.ContextVar("routerbench_workers", default=1)
_PENDING: contextvars.ContextVar[list[Deferred] | None] = contextvars.ContextVar(
    "routerbench_pending", default=None
)
IDLE_SECONDS = 300  # a worker left without work this long exits


def all_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def total_memory() -> int | None:
    """This machine's physical memory in bytes, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not a POSIX system that reports it
        return None


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


@contextmanager
def deferring() -> Iterator[list[Deferred]]:
    """Inside the block, :func:`map_fits` on several workers returns at once (a
    :class:`Deferred`, appended to the list this yields)."""
    pending: list[Deferred] = []
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


def _timed(fn: Callable[[Any], Any], item: Any) -> tuple[Any, float]:
    from routerbench.engine.evaluate import one_blas_thread

    t0 = time.perf_counter()
    with one_blas_thread():
        out = fn(item)
    return out, time.perf_counter() - t0


class Deferred:
    """Results of fits running on worker processes, in the items' order."""

    def __init__(self, futures: list[Future[tuple[Any, float]]]) -> None:
        self._futures = futures
        self._done: list[tuple[Any, float]] | None = None

    def _resolve(self) -> list[tuple[Any, float]]:
        if self._done is None:
            self._done = [f.result() for f in self._futures]
            self._futures = []
        return self._done

    def wait(self) -> float:
        """Wait for every fit; their seconds added up (a fit's error is raised here)."""
        return sum(s for _, s in self._resolve())

    def result(self) -> list[Any]:
        return [r for r, _ in self._resolve()]

    def __getstate__(self) -> dict[str, Any]:  # pickled (e.g. to Ray's store): the results
        return {"_futures": [], "_done": self._resolve()}


def map_fits(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any] | Deferred:
    """``[fn(x) for x in items]``, in order, on up to :func:`current_workers` processes; inside
    :func:`deferring` (and with more than one worker) a :class:`Deferred` of them instead.

    ``fn`` and the items are pickled to the workers (cloudpickle: closures are fine).

    >>> map_fits(abs, [-1, 2, -3])
    [1, 2, 3]
    """
    n = min(current_workers(), len(items))
    if n <= 1:
        return [_timed(fn, x)[0] for x in items]
    from joblib.externals.loky import get_reusable_executor

    pool = get_reusable_executor(max_workers=current_workers(), timeout=IDLE_SECONDS)
    deferred = Deferred([pool.submit(_timed, fn, x) for x in items])
    pending = _PENDING.get()
    if pending is None:
        return deferred.result()
    pending.append(deferred)
    return deferred


def resolved(value: Sequence[Any] | Deferred) -> Sequence[Any]:
    """The results of :func:`map_fits`, waiting for them if they were deferred."""
    return value.result() if isinstance(value, Deferred) else value
