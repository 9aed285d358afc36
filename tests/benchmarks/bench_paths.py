"""Benchmark: exact λ / budget paths vs. naive grids (run: python tests/benchmarks/bench_paths.py).

Prints our path and the naive way side by side, with ratios:

1. n = 36,497 x M = 11: the whole exact λ path vs. the oracle at 1,000 λ (0 and log-spaced
   1e-6..1e6), plus a plain argmax + bincount grid (no exact sums), and ``at()`` on that grid.
2. n = 1,000,000 x M = 20 in a fresh subprocess: path time and peak RSS (ru_maxrss).
3. Cascade, 36,497 x 11: the 11 budgets x 8 eps grid, path + at() vs. the literal loop; and one
   eps on 1,000 budgets.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from routerbench.engine.cascade import (
    UPSTREAM_BUDGETS,
    UPSTREAM_EPS,
    cascade_bruteforce,
    cascade_path,
    family_theta,
    judge_accepts,
    judge_uniforms,
    model_key,
    prompt_key,
)
from routerbench.engine.paths import lambda_grid_bruteforce, lambda_path

# USD per 1M tokens (in, out) and mean quality of the 11 RouterBench models.
PRICE_IN = np.array([10, 8, 8, 1, 0.8, 0.8, 0.9, 0.776, 0.6, 0.3, 0.2])
PRICE_OUT = np.array([30, 24, 24, 2, 2.4, 0.8, 0.9, 0.776, 0.6, 0.3, 0.2])
MEAN_Q = np.array([0.78, 0.64, 0.63, 0.62, 0.60, 0.65, 0.33, 0.20, 0.55, 0.43, 0.31])


def synthetic(n: int, m: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """P in [0, 1], realised quality in {0, 1}, realised cost from token counts x prices, C the
    expected cost (realised x lognormal noise), 7 families."""
    rng = np.random.default_rng(seed)
    reps = -(-m // 11)
    p_in, p_out = np.tile(PRICE_IN, reps)[:m] * 1e-6, np.tile(PRICE_OUT, reps)[:m] * 1e-6
    tokens_in = rng.lognormal(5.0, 1.0, (n, 1))
    tokens_out = rng.lognormal(4.5, 0.8, (n, m))
    cost = tokens_in * p_in + tokens_out * p_out
    C = cost * rng.lognormal(0.0, 0.3, (n, m))
    quality = (rng.random((n, m)) < np.tile(MEAN_Q, reps)[:m]).astype(float)
    P = rng.random((n, m))
    return P, C, quality, cost, rng.integers(0, 7, n)


T = TypeVar("T")


def best_of(f: Callable[[], T], repeat: int = 5) -> tuple[float, T]:
    """The fastest of ``repeat`` runs (the machine is shared) and the last result."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def row(label: str, ours: float, naive: float) -> None:
    print(f"  {label:44s} ours {ours:9.4f} s   naive {naive:9.3f} s   ratio {naive / ours:7.1f}x")


def plain_grid(
    P: np.ndarray, C: np.ndarray, q: np.ndarray, c: np.ndarray, g: np.ndarray, lams: np.ndarray
) -> np.ndarray:
    """The naive grid without exact sums: argmax per lam, then bincount (float) per group."""
    rows = np.arange(len(P))
    out = np.empty((2, 7, lams.size))
    for k, lam in enumerate(lams):
        pick = (lam * P - C).argmax(1)
        out[0, :, k] = np.bincount(g, c[rows, pick], 7)
        out[1, :, k] = np.bincount(g, q[rows, pick], 7)
    return out


def bench_lambda() -> None:
    P, C, q, c, g = synthetic(36497, 11)
    lams = np.concatenate([[0.0], np.logspace(-6, 6, 999)])
    print("λ path, n = 36,497 x M = 11, 1,000 λ (0 and 1e-6..1e6), 7 groups")
    t_path, path = best_of(lambda: lambda_path(P, C, q, c, g, 7))
    t_at, got = best_of(lambda: path.at(lams))
    t_oracle, want = best_of(lambda: lambda_grid_bruteforce(P, C, q, c, g, 7, lams), 1)
    t_plain, plain = best_of(lambda: plain_grid(P, C, q, c, g, lams), 1)
    same = all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    print(f"  events {path.ev_lam.size:,}, danger intervals {path.dz_lo.size:,}")
    row("whole exact path vs oracle grid (exact sums)", t_path, t_oracle)
    row("whole exact path vs plain grid (float bincount)", t_path, t_plain)
    row("path + at(1,000 λ) vs oracle grid", t_path + t_at, t_oracle)
    print(
        f"  at() on the 1,000-λ grid: {t_at:.4f} s; at() == oracle bit for bit: {same}; "
        f"max |plain - oracle| cost sum: {np.abs(plain[0] - want[0]).max():.2e}"
    )


def big_child() -> None:
    P, C, q, c, g = synthetic(1_000_000, 20, seed=1)
    rss_inputs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t = time.perf_counter()
    path = lambda_path(P, C, q, c, g, 7)
    t_path = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    lams = np.concatenate([[0.0], np.logspace(-6, 6, 999)])
    t = time.perf_counter()
    path.at(lams)
    t_at = time.perf_counter() - t
    t = time.perf_counter()
    plain_grid(P, C, q, c, g, lams[::100])
    t_plain10 = time.perf_counter() - t
    print(f"{t_path} {rss} {rss_inputs} {path.ev_lam.size} {t_at} {t_plain10}")


def bench_big() -> None:
    print("λ path, n = 1,000,000 x M = 20 (fresh subprocess)")
    out = subprocess.run(
        [sys.executable, __file__, "--big-child"], capture_output=True, text=True, check=True
    ).stdout.split()
    t_path, rss, rss_inputs, n_ev, t_at, t_plain10 = map(float, out)
    print(f"  exact path {t_path:.2f} s (target < 10 s), {int(n_ev):,} events")
    print(f"  peak RSS {rss:.2f} GiB (target < 4 GiB; inputs alone {rss_inputs:.2f} GiB)")
    print(
        f"  at(1,000 λ) {t_at:.2f} s; plain grid measured on 10 λ: {t_plain10:.2f} s "
        f"(x100 = {t_plain10 * 100:.0f} s for 1,000 λ, extrapolated; ratio "
        f"{t_plain10 * 100 / (t_path + t_at):.0f}x vs path + at)"
    )


def bench_cascade() -> None:
    _, _, q, c, g = synthetic(36497, 11)
    q = np.random.default_rng(2).choice(
        [0, 0.25, 0.5, 0.75, 1], q.shape, p=[0.294, 0.061, 0.033, 0.115, 0.497]
    )
    order = np.argsort(PRICE_IN + PRICE_OUT)
    pk = prompt_key([f"p{i}" for i in range(len(q))])
    mk = model_key([f"m{j}" for j in range(11)])[order]
    theta = family_theta(q)
    print("cascade, n = 36,497 x 11 models, θ = 0.95 quantile, 7 groups")
    t = time.perf_counter()
    accepts = [
        judge_accepts(q[:, order], theta, e, judge_uniforms(0, pk, mk, e)) for e in UPSTREAM_EPS
    ]
    print(f"  hashed judge for 8 eps: {time.perf_counter() - t:.3f} s (shared by both ways)")
    t_path, got = best_of(
        lambda: [cascade_path(q, c, order, a, g, 7).at(UPSTREAM_BUDGETS) for a in accepts]
    )
    t_loop, want = best_of(
        lambda: [cascade_bruteforce(q, c, order, a, g, 7, UPSTREAM_BUDGETS) for a in accepts], 1
    )
    same = all(
        np.array_equal(x, y) for gw in zip(got, want, strict=True) for x, y in zip(*gw, strict=True)
    )
    row("11 budgets x 8 eps: path + at vs loop", t_path, t_loop)
    fine = np.geomspace(1e-6, 1e-1, 1000)
    t_fpath, fgot = best_of(lambda: cascade_path(q, c, order, accepts[3], g, 7).at(fine))
    t_floop, fwant = best_of(lambda: cascade_bruteforce(q, c, order, accepts[3], g, 7, fine), 1)
    fsame = all(np.array_equal(x, y) for x, y in zip(fgot, fwant, strict=True))
    row("1,000 budgets (1e-6..0.1), eps = 0.1", t_fpath, t_floop)
    print(f"  path == loop bit for bit: grid {same}, fine {fsame}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--big-child"]:
        big_child()
    else:
        bench_lambda()
        bench_big()
        bench_cascade()
