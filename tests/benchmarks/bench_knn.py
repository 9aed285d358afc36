"""Benchmark: KNN neighbour search for k = 5, 10, 40 on one family, the old way and ours.

Old: scikit-learn ``NearestNeighbors(metric=..., algorithm="brute")``, fitted once and
``kneighbors`` called once per k (three searches). Ours: ``neighbours.Index`` (the training rows
hashed once) and one shared search of 40 neighbours, sliced for each k. Both on one BLAS thread,
as routerbench scores; scikit-learn's euclidean search (``ArgKmin``) also runs on OpenMP
threads, so it is timed with one OpenMP thread and with its default count. Random normal
features of a RouterBench-sized family (10,000 training and 4,000 test prompts by default), 384
and 64 dimensions, both metrics.

Run: ``python tests/benchmarks/bench_knn.py [--train 10000] [--test 4000] [--repeat 2]``.
Prints seconds (best of ``--repeat``), the ratios, and the share of test rows whose neighbour
sets agree with scikit-learn's at k = 40 (1.0 expected: random data has no ties).
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_info, threadpool_limits
from timing import best_of  # tests/benchmarks/timing.py (scripts run from this folder)

from routerbench.engine.evaluate import one_blas_thread
from routerbench.engine.neighbours import SHARED, Index

KS = (5, 10, 40)


def old_way(train: np.ndarray, test: np.ndarray, metric: str) -> list[np.ndarray]:
    index = NearestNeighbors(metric=metric, algorithm="brute").fit(train)
    return [index.kneighbors(test, n_neighbors=k, return_distance=False) for k in KS]


def ours(train: np.ndarray, test: np.ndarray, metric: str) -> list[np.ndarray]:
    SHARED.clear()
    index = Index.of(train, metric)
    found = [index.top_k(test, k) for k in KS]
    assert SHARED.searches == 1
    return found


def compare(train: np.ndarray, test: np.ndarray, metric: str, repeat: int, n_omp: int) -> str:
    """One line: both ways' seconds, the ratios and the agreement at k = 40."""
    t_omp, _ = best_of(lambda: old_way(train, test, metric), repeat)
    with threadpool_limits(1, user_api="openmp"):
        t_old, a = best_of(lambda: old_way(train, test, metric), repeat)
        t_new, b = best_of(lambda: ours(train, test, metric), repeat)
    agree = np.mean([set(x) == set(y) for x, y in zip(a[-1], b[-1], strict=True)])
    return (
        f"d={train.shape[1]:3d} {metric:9s}: sklearn 3 searches {t_old:5.2f} s "
        f"({t_omp:.2f} s on {n_omp} OpenMP threads); ours 1 shared search {t_new:5.2f} s; "
        f"{t_old / t_new:.1f}x ({t_omp / t_new:.1f}x); sets agree at k=40: {agree:.4f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=10_000)
    ap.add_argument("--test", type=int, default=4_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    omp = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]
    rng = np.random.default_rng(0)
    print(f"{args.train} training x {args.test} test rows, k = {KS}, one BLAS thread")
    with one_blas_thread():
        for d in (384, 64):
            train = rng.standard_normal((args.train, d))
            test = rng.standard_normal((args.test, d))
            for metric in ("cosine", "euclidean"):
                print(compare(train, test, metric, args.repeat, max(omp, default=1)), flush=True)


if __name__ == "__main__":
    main()
