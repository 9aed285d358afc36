"""Benchmark: ``ndch`` against a naive O(n^2) hull and the upstream-style O(n^3) hull.

Run: ``python tests/benchmarks/bench_hull.py``.  Prints seconds (best of a few runs) and ratios;
every comparison also checks that both sides found the same hull.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np
from timing import best_of  # tests/benchmarks/timing.py (scripts run from this folder)

from routerbench.engine import metrics
from routerbench.engine.metrics import hull_value, ndch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_metrics import upstream_hull  # plain re-implementation, O(n^3) Python


def naive_ndch(cost: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """O(n^2): test every distinct point against all the others (NumPy inside, loop outside)."""
    c, q = np.unique(np.column_stack([cost, quality]), axis=0).T
    keep = []
    for k in range(c.size):
        if np.count_nonzero((c <= c[k]) & (q >= q[k])) > 1:  # a cheaper-or-equal point as good
            continue
        left, right = c < c[k], c > c[k]
        slope_in = np.min((q[k] - q[left]) / (c[k] - c[left]), initial=np.inf)
        slope_out = np.max((q[right] - q[k]) / (c[right] - c[k]), initial=-np.inf)
        if slope_out < slope_in:
            keep.append(k)
    return c[keep], q[keep]


def same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    return a[0].shape == b[0].shape and bool(np.allclose(a[0], b[0]) and np.allclose(a[1], b[1]))


def same_curve(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    """Equal as functions of cost (upstream also keeps points in the middle of hull edges)."""
    xs = np.concatenate([a[0], b[0]])
    return bool(np.allclose(hull_value(*a, xs), hull_value(*b, xs), rtol=0, atol=1e-12))


def main() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    c = rng.uniform(0.0, 1.0, n)
    sorted_c = np.sort(c)
    big = {
        "uniform random": (c, rng.uniform(0.0, 1.0, n)),
        "on a concave curve (sqrt)": (c, np.sqrt(c)),
        "concave + 1e-7 noise": (c, np.sqrt(c) + rng.normal(0.0, 1e-7, n)),
        "adversarial: concave + one high point": (
            sorted_c,
            np.append(np.sqrt(sorted_c[:-1]), 10.0),
        ),
    }
    print(f"ndch on {n:,} points (best of 3)")
    for name, (cc, qq) in big.items():
        t, (hc, _) = best_of(partial(ndch, cc, qq), 3)
        print(f"  {name:40s} {t:7.3f} s   {hc.size:>9,} vertices")
    concave = np.unique(c)
    t, _ = best_of(lambda: metrics._chain(concave, np.sqrt(concave)), 3)
    print(f"  {'(monotone chain loop alone, concave)':40s} {t:7.3f} s")

    print("\nnaive O(n^2) hull vs ndch on 2,000 points (best of 3)")
    for name in ("uniform random", "on a concave curve (sqrt)"):
        cc, qq = big[name][0][:2000], big[name][1][:2000]
        t_naive, h_naive = best_of(partial(naive_ndch, cc, qq), 3)
        t_ours, h_ours = best_of(partial(ndch, cc, qq), 3)
        print(
            f"  {name:28s} naive {t_naive:8.4f} s   ndch {t_ours:8.5f} s   "
            f"ratio {t_naive / t_ours:8.0f}x   same hull: {same(h_naive, h_ours)}"
        )

    print("\nupstream-style O(n^3) hull (pure Python) vs ndch, uniform random points")
    for m in (100, 200):
        cc, qq = rng.uniform(0.0, 1.0, m), rng.uniform(0.0, 1.0, m)
        t_up, h_up = best_of(partial(upstream_hull, cc, qq), 1)
        t_ours, h_ours = best_of(partial(ndch, cc, qq), 3)
        up_curve = (np.array([x for x, _ in h_up]), np.array([y for _, y in h_up]))
        print(
            f"  n={m:4d}  upstream-style {t_up:8.3f} s   ndch {t_ours:8.5f} s   "
            f"ratio {t_up / t_ours:9.0f}x   same curve: {same_curve(up_curve, h_ours)}"
        )


if __name__ == "__main__":
    main()
