"""Work on several processes: how many, and the two ways it is run.

A library call uses one process unless told otherwise: ``with workers(4): ...`` lets the work
inside use up to 4 worker processes; ``routerbench run`` sets it from ``--workers`` (default:
every core). Two kinds of work use them:

- the in-process executor (:func:`routerbench.sweeps.execute.local_executor`) evaluates
  (cells, family) units on a :func:`pool` whose workers each hold the data set;
- independent fits of one router (one regressor per model, ``routers.predictive``) go through
  :func:`map_fits`, when the router is fitted directly inside ``workers(n)`` (a library call
  such as :func:`routerbench.sweeps.cells.evaluate_cell`); inside the executor's units, which
  already share the cores, they run one after another.

Every fit and every reported product runs with BLAS on one thread
(:func:`routerbench.engine.evaluate.one_blas_thread`), in a worker or here, so results are
bit-identical whatever the number of workers. Workers are ``loky`` processes (joblib's).
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

_WORKERS: contextvars.ContextVar[int] = contextvars.ContextVar("routerbench_workers", default=1)
IDLE_SECONDS = 300  # a map_fits worker left without work this long exits
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


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
    """Let the work inside the block use up to ``n`` processes (n >= 1)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"workers must be an integer >= 1 (got {n!r})")
    token = _WORKERS.set(n)
    try:
        yield
    finally:
        _WORKERS.reset(token)


def current_workers() -> int:
    """The processes work may use here (1 unless inside :func:`workers`)."""
    return _WORKERS.get()


def _one_thread(fn: Callable[[Any], Any], item: Any) -> Any:
    from routerbench.engine.evaluate import one_blas_thread

    with one_blas_thread():
        return fn(item)


def map_fits(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``[fn(x) for x in items]``, in order, on up to :func:`current_workers` processes.

    ``fn`` and the items are pickled to the workers (cloudpickle: closures are fine).

    >>> map_fits(abs, [-1, 2, -3])
    [1, 2, 3]
    """
    n = min(current_workers(), len(items))
    if n <= 1:
        return [_one_thread(fn, x) for x in items]
    from joblib.externals.loky import get_reusable_executor

    ex = get_reusable_executor(max_workers=current_workers(), timeout=IDLE_SECONDS, env=ONE_THREAD)
    return [f.result() for f in [ex.submit(_one_thread, fn, x) for x in items]]


def pool(n: int, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> Any:
    """A ``loky`` process pool of ``n`` workers, each started by ``initializer(*initargs)`` (its
    arguments are pickled once per worker), BLAS on one thread; the caller shuts it down."""
    from joblib.externals.loky import ProcessPoolExecutor

    return ProcessPoolExecutor(
        max_workers=n, initializer=initializer, initargs=initargs, env=ONE_THREAD
    )
