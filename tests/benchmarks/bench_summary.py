"""Benchmark: the run summary (``summarize``) of the paper configuration, vectorised vs naive.

Evaluates the cells of sweeps/routerbench-paper.toml (its data, 200 bootstrap replicates; about
20 s on 2 cores), then times ``summarize`` on their results: as it is (each family's replicates
through ``aiq_rows`` at once, one quantile call per number of replicates) and the naive way it
was before (``aiq(*ndch(row))`` per replicate, one ``interval`` per curve), patched in below.
Prints the best of a few runs of each and the ratio, after checking both give the same tables.

    python tests/benchmarks/bench_summary.py
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Sequence
from importlib.resources import files
from unittest import mock

import numpy as np
import pandas as pd
from timing import best_of  # tests/benchmarks/timing.py (scripts run from this folder)

from routerbench.engine.bootstrap import interval
from routerbench.engine.data import RoutingData
from routerbench.engine.metrics import aiq, ndch
from routerbench.sweeps import summary
from routerbench.sweeps.cells import CellResult
from routerbench.sweeps.execute import load_data, plan, run_grid
from routerbench.sweeps.spec import parse
from routerbench.sweeps.summary import Results, single_model_ranges, summarize


def naive_aiq_rows(cost: np.ndarray, quality: np.ndarray, c_min: float, c_max: float) -> np.ndarray:
    """The old ``aiq_rows``: a hull and its AIQ per replicate, in a Python loop (rows of one
    point, a single operating point, at once)."""
    if cost.shape[1] > 1:
        return np.array(
            [aiq(*ndch(c, q), c_min, c_max) for c, q in zip(cost, quality, strict=True)]
        )
    c, q = cost[:, 0], quality[:, 0]
    if c_max == c_min:
        return np.where(c_min >= c, q, 0.0)
    lo = np.maximum(float(c_min), c)
    with np.errstate(invalid="ignore", over="ignore"):
        value = (c_max - lo) * (q + q) / 2.0 / (c_max - c_min)
    return np.where(c_max <= lo, 0.0, value)


def naive_intervals(
    samples: Sequence[np.ndarray], confidence: float, bounds: tuple[float, float]
) -> list[np.ndarray]:
    """The old intervals: one quantile call per curve."""
    return [interval(s, confidence, bounds=bounds) for s in samples]


def main() -> None:
    text = files("routerbench.sweeps").joinpath("routerbench-paper.toml").read_text()
    spec = parse(tomllib.loads(text), source="routerbench-paper.toml", text=text)
    data = load_data(spec)
    assert isinstance(data, RoutingData)  # the synthetic set, in this process
    p = plan(spec, data)
    results: list[CellResult] = []
    t0 = time.perf_counter()
    run_grid(spec, p, on_result=results.append)
    results.sort(key=lambda r: r.cell.index)
    print(
        f"evaluated {len(p.cells)} cells in {time.perf_counter() - t0:.1f} s "
        f"(bootstrap {spec.metrics['bootstrap']})"
    )
    ranges = single_model_ranges(data, p.splits)

    def run() -> Results:
        return summarize(
            results,
            ranges,
            aiq_range=spec.metrics["aiq_range"],
            confidence=spec.metrics["confidence"],
        )

    def naive() -> Results:
        with (
            mock.patch.object(summary, "aiq_rows", naive_aiq_rows),
            mock.patch.object(summary, "_intervals", naive_intervals),
        ):
            return run()

    run()  # imports and registries loaded once, outside the timings
    t_fast, fast = best_of(run, 5)
    t_naive, slow = best_of(naive, 3)
    pd.testing.assert_frame_equal(fast.points, slow.points, check_exact=True)
    reps = ["aiq_reps", "max_quality_reps"]  # lists with NaN: compared as arrays
    pd.testing.assert_frame_equal(
        fast.curves.drop(columns=reps), slow.curves.drop(columns=reps), check_exact=True
    )
    for col in reps:
        for a, b in zip(fast.curves[col], slow.curves[col], strict=True):
            np.testing.assert_array_equal(np.array(a), np.array(b))
    print(f"summarize: {len(fast.curves)} curves, {len(fast.points)} points (best of 5 / 3)")
    print(
        f"  vectorised {t_fast:.3f} s   naive (per replicate, per curve) {t_naive:.3f} s   "
        f"ratio {t_naive / t_fast:.1f}x   same tables: True"
    )


if __name__ == "__main__":
    main()
