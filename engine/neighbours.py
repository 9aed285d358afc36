"""Brute-force nearest neighbours: a blocked BLAS top-k, shared by every k of a family.

:func:`top_k` gives, for each test row, the indices of its ``k`` nearest training rows, nearest
first, for two metrics, computed as scikit-learn computes them:

- ``"cosine"``: ``1 - Xn @ Yn.T`` clipped to [0, 2], the rows L2-normalised as
  ``sklearn.preprocessing.normalize`` does (a row whose norm is below 10 machine epsilons is
  left as it is, so a zero row stays zero, at distance 1 from every row);
- ``"euclidean"``: the squared distance ``||x||^2 - 2 x.y + ||y||^2`` clipped at 0 (the root
  would not change the order).

**Tie rule.** Rows are ordered by distance, ties broken by the lower training row index: a total
order, so the first ``k`` of the ``K > k`` nearest are exactly the ``k`` nearest.

**Determinism.** A row's neighbours do not depend on the other test rows, the chunking or BLAS.
The bits of a GEMM's elements depend on the product's shape with OpenBLAS (it switches to
other kernels for small or thin products), so the GEMM only screens: one GEMM per chunk gives
each distance less a per-row constant (``-x.y``, or ``||y||^2 - 2 x.y``), within a rounding-
error bound of the formulas above. The candidates are the training rows screened within twice
that bound of the k-th smallest (a superset of the k nearest, ties included). Where screened
values lie within twice the bound of each other, their order may differ from the distances':
those candidates are measured again pair by pair by the formulas above, each dot product summed
by ``np.einsum`` (whose sum for a pair depends on the dimension alone), and ordered by (that
distance, index) with ``np.lexsort``; the others are ordered by their screened values.

**Memory.** Besides the inputs (and, for cosine, their normalised copies), test rows are
processed in chunks of ``max(1, BLOCK_BYTES // (8 * n_train))`` rows: the chunk's screened
distances and their partitioned copy are each at most ``BLOCK_BYTES`` (16 MiB), the re-measured
pairs' gathered rows at most ``BLOCK_BYTES`` together: about 3 x 16 MiB in all, for up to
``BLOCK_BYTES / 8`` (2M) training rows (beyond, one test row's distances exceed it).

**Sharing.** :meth:`Index.top_k` answers from a process-wide memo (:data:`SHARED`): one search
of ``max(k, SHARE_K)`` neighbours (at most every training row) per (training rows, metric, test
rows) content, sliced for each ``k``, so k = 5, 10 and 40 of one family search once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from routerbench.engine.memo import Bounded

__all__ = ["BLOCK_BYTES", "MEMO_SIZE", "METRICS", "SHARED", "SHARE_K", "Index", "top_k"]

METRICS = ("cosine", "euclidean")
BLOCK_BYTES = 16 * 2**20  # distances held per chunk of test rows (see the module docstring)
SHARE_K = 40  # one search finds this many neighbours (the largest k RouterBench sweeps)
MEMO_SIZE = 32  # searches kept per process: 32 x n_test x 40 x 8 bytes (42 MB at 4,096 rows)

_U = 2.0**-53  # unit roundoff of float64


def _rows(x: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(The rows the products read, their squared L2 norms): for cosine, the rows normalised
    as ``sklearn.preprocessing.normalize`` does, and the norms of those."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    if metric == "cosine":
        norms = np.sqrt(sq)
        norms[norms < 10 * np.finfo(np.float64).eps] = 1.0
        x = x / norms[:, None]
        sq = np.einsum("ij,ij->i", x, x)
    return x, sq


def _to_distance(dot: np.ndarray, xsq: np.ndarray, ysq: np.ndarray, metric: str) -> np.ndarray:
    """Distances from the dot products of pairs of rows, in place."""
    if metric == "cosine":
        np.subtract(1.0, dot, out=dot)
        np.clip(dot, 0.0, 2.0, out=dot)
    else:
        dot *= -2.0
        dot += xsq
        dot += ysq
        np.maximum(dot, 0.0, out=dot)
    return dot


def _slack(xsq: np.ndarray, ysq: np.ndarray, d: int, metric: str) -> np.ndarray:
    """Per test row, a bound on |screened + c - re-measured distance| (c: 1 for cosine,
    ||x||^2 for euclidean), doubled for margin. Two dot products of length d differ by at most
    2 γ_d ||x|| ||y|| (γ_d = d u / (1 - d u), any summation order); the additions after them
    round by at most u times their operands; clipping moves a value by at most that much."""
    gamma = d * _U / (1 - d * _U)
    if metric == "cosine":  # normalised rows: ||x||, ||y|| <= 1 up to rounding
        return np.full(len(xsq), 8 * (gamma + _U))
    return 4.2 * (gamma + 3.1 * _U) * (np.sqrt(xsq) + np.sqrt(ysq.max(initial=0.0))) ** 2


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"neighbours: metric must be one of {list(METRICS)}, got {metric!r}")


def _check(n_train: int, d_train: int, d_test: int, k: int, metric: str) -> None:
    _check_metric(metric)
    if type(k) is not int or not 1 <= k <= n_train:
        raise ValueError(f"neighbours: k must be an integer in [1, {n_train}], got {k!r}")
    if d_train != d_test:
        raise ValueError(f"neighbours: {d_test} test features, {d_train} training features")


def top_k(
    train_x: np.ndarray,
    test_x: np.ndarray,
    k: int,
    metric: str,
    *,
    chunk_rows: int | None = None,
) -> np.ndarray:
    """Indices ``[n_test, k]`` of each test row's k nearest training rows, nearest first, ties
    to the lower index (see the module docstring). ``chunk_rows``: test rows per GEMM (default:
    as many as ``BLOCK_BYTES`` of distances hold); the result does not depend on it."""
    _check(len(train_x), train_x.shape[1], test_x.shape[1], k, metric)
    y, ysq = _rows(train_x, metric)
    x, xsq = _rows(test_x, metric)
    slack = _slack(xsq, ysq, y.shape[1], metric)
    scale = -1.0 if metric == "cosine" else -2.0  # exact: the products are -x.y or -2 x.y
    rows = chunk_rows or max(1, BLOCK_BYTES // (8 * len(y)))
    pair_block = max(1, BLOCK_BYTES // (16 * max(y.shape[1], 1)))
    out = np.empty((len(x), k), dtype=np.intp)
    for start in range(0, len(x), rows):
        stop = min(start + rows, len(x))
        screen = (scale * x[start:stop]) @ y.T  # the distance less c (_slack): smaller, nearer
        if metric == "euclidean":
            screen += ysq
        kth = np.partition(screen, k - 1, axis=1)[:, k - 1]
        i, j = np.nonzero(screen <= (kth + 2 * slack[start:stop])[:, None])
        v = screen[i, j]
        del screen
        i += start
        by_screen = np.lexsort((j, v, i))
        i, j, v = i[by_screen], j[by_screen], v[by_screen]
        # Runs of candidates screened within 2 slack of the one before: only inside a run can the
        # screen's order differ from the distances'; their members are measured again.
        close = (i[1:] == i[:-1]) & (v[1:] - v[:-1] <= 2 * slack[i[1:]])
        run = np.cumsum(np.concatenate(([True], ~close)))
        again = np.flatnonzero(np.concatenate(([False], close)) | np.concatenate((close, [False])))
        dist = np.zeros(len(i))
        for p in range(0, len(again), pair_block):
            ii, jj = i[again[p : p + pair_block]], j[again[p : p + pair_block]]
            dot = np.einsum("ij,ij->i", x[ii], y[jj])
            dist[again[p : p + pair_block]] = _to_distance(dot, xsq[ii], ysq[jj], metric)
        order = np.lexsort((j, dist, run))  # rows, then runs, are in order already
        first = np.searchsorted(i, np.arange(start, stop))
        out[start:stop] = j[order[first[:, None] + np.arange(k)]]
    return out


def _digest(metric: str, x: np.ndarray) -> str:
    """sha256 of the metric, the shape and the float64 bytes of ``x`` (C order)."""
    h = hashlib.sha256(f"{metric}|{x.shape}".encode())
    h.update(np.ascontiguousarray(x, dtype=np.float64).data)
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class Index:
    """Training rows to search and their content key (computed once, by :meth:`of`);
    picklable, plain data."""

    x: np.ndarray  # training features [n_train, d], float64
    metric: str
    key: str  # sha256 of the metric, shape and bytes of x

    @classmethod
    def of(cls, x: np.ndarray, metric: str) -> Index:
        """The index of training rows ``x`` (float64) for ``metric``."""
        _check_metric(metric)
        x = np.ascontiguousarray(x, dtype=np.float64)
        return cls(x, metric, _digest(metric, x))

    def top_k(self, test_x: np.ndarray, k: int) -> np.ndarray:
        """:func:`top_k` of these training rows, through the shared memo (read-only result)."""
        return SHARED.top_k(self, test_x, k)


class Shared:
    """The memo behind :meth:`Index.top_k`: (training key, test rows' digest, K) -> the K
    nearest, K = min(max(k, SHARE_K), n_train); the ``size`` most recently stored are kept.
    ``searches`` counts the searches run, ``hits`` the requests answered from the memo."""

    def __init__(self, size: int) -> None:
        self.memo: Bounded[tuple[str, str, int], np.ndarray] = Bounded(size)
        self.searches = 0
        self.hits = 0

    def top_k(self, index: Index, test_x: np.ndarray, k: int) -> np.ndarray:
        """The k nearest training rows of ``index`` for each row of ``test_x`` (read-only)."""
        n = len(index.x)
        _check(n, index.x.shape[1], test_x.shape[1], k, index.metric)
        test_x = np.ascontiguousarray(test_x, dtype=np.float64)
        big = min(max(k, SHARE_K), n)
        key = (index.key, _digest("", test_x), big)

        def search() -> np.ndarray:
            self.searches += 1
            found = top_k(index.x, test_x, big, index.metric)
            found.flags.writeable = False
            return found

        self.hits += key in self.memo
        return self.memo.get(key, search)[:, :k]

    def clear(self) -> None:
        """Drop every stored search and reset the counts."""
        self.memo.clear()
        self.searches = self.hits = 0


SHARED = Shared(MEMO_SIZE)
