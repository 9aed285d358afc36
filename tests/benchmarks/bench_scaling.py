"""Scaling of the Ray executor: 2,000,000 prompts x 11 models, the default sweep, in one run.

Prints, measured side by side: throughput in prompt x model x knob evaluations per second with the
in-process executor and with a local Ray at 1 and 2 shard actors; the scaling efficiency from 1 to
2 actors; each actor's peak memory against its shard's arrays; and whether the three runs gave
bit-identical points and curves.

The sweep is ``sweeps/quick.toml`` (single models, oracle, zero, random, KNN, cascade; 200 bootstrap
replicates) without KNN unless ``--knn``: brute-force neighbours cost O(train x test) per family,
hours at this size on 2 cores, and would measure scikit-learn rather than the executor.

    .venv/bin/python tests/benchmarks/bench_scaling.py [--n 2000000] [--models 11]
        [--bootstrap 200] [--knn] [--repeat 2]

Each executor's time is its evaluation phase: fits, per-block statistics and their reduction, the
same work in every case. A Ray executor's first call also connects and places the shards (printed
apart, not counted). The executors take turns for ``--repeat`` rounds and each one's fastest round
counts, so a burst of other work on a shared machine hits one round, not one executor.
"""

from __future__ import annotations

import argparse
import os
import time
import tomllib
from importlib.resources import files
from typing import Any

import pandas as pd

from routerbench.cluster.ray_executor import make_executor
from routerbench.cluster.ray_layout import array_bytes
from routerbench.engine import synth
from routerbench.sweeps.cells import CellResult
from routerbench.sweeps.execute import Executor, local_executor, plan, run_grid
from routerbench.sweeps.spec import Spec, parse
from routerbench.sweeps.summary import Results

MB = 1 << 20


def sweep(bootstrap: int | None, knn: bool) -> Spec:
    """The default job's spec, optionally without KNN or with another bootstrap count."""
    doc = tomllib.loads(files("routerbench.sweeps").joinpath("quick.toml").read_text())
    if not knn:
        doc["routers"] = [r for r in doc["routers"] if r["name"] != "knn"]
    if bootstrap is not None:
        doc["metrics"]["bootstrap"] = bootstrap
    return parse(doc, source="quick.toml (bench)")


def evaluations(res: Results, n_models: int) -> int:
    """Prompt x model x knob evaluations: per points row (one cell, family and knob), its prompts
    times the models a router chooses among."""
    ok = res.points[res.points["status"] == "ok"]
    return int(ok["n"].sum()) * n_models


def same(a: Results, b: Results) -> bool:
    try:
        pd.testing.assert_frame_equal(
            a.points.drop(columns="seconds"), b.points.drop(columns="seconds"), check_exact=True
        )
        pd.testing.assert_frame_equal(a.curves, b.curves, check_exact=True)
    except AssertionError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000, help="prompts (default 2,000,000)")
    ap.add_argument("--models", type=int, default=11, help="models (default 11)")
    ap.add_argument("--bootstrap", type=int, help="bootstrap replicates (default: the spec's)")
    ap.add_argument("--knn", action="store_true", help="keep the KNN router (slow at this size)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds; each executor's best counts")
    args = ap.parse_args()

    t = time.perf_counter()
    data = synth.generate(args.n, 0, n_models=args.models, with_text=False)
    print(
        f"data: {data!r}, features {data.features.shape}, {array_bytes(data) / MB:,.0f} MB "
        f"of arrays; generated in {time.perf_counter() - t:.1f} s"
    )
    spec = sweep(args.bootstrap, args.knn)
    p = plan(spec, data)
    n_test = sum(len(r) for r in p.splits[0].test.values())
    routers = ", ".join(dict.fromkeys(c.router for c in p.cells))
    print(
        f"sweep: {len(p.cells)} cells ({routers}) x {len(p.families)} families, "
        f"{n_test:,} test prompts, bootstrap {spec.metrics['bootstrap']}"
    )

    executors = {n: make_executor(shards=n, quiet=True) for n in (1, 2)}
    configs = {"in-process": None, "ray, 1 actor": 1, "ray, 2 actors": 2}
    best: dict[str, float] = {}
    setup: dict[int, dict[str, float]] = {}
    results: dict[str, Results] = {}
    try:
        for r in range(args.repeat):
            for name, shards in configs.items():
                load = os.getloadavg()[0]
                if shards is None:
                    clock = Clock(local_executor)
                    results[name] = run_grid(spec, p, executor=clock)
                    took = clock.seconds
                else:
                    ex = executors[shards]
                    results[name] = run_grid(spec, p, executor=ex)
                    took = ex.last_run["evaluate_s"]
                    setup.setdefault(shards, dict(ex.last_run))
                best[name] = min(best.get(name, float("inf")), took)
                print(f"  round {r + 1}, {name}: {took:.1f} s (load average {load:.1f} before)")
        actors = {n: ex.actor_info() for n, ex in executors.items()}
    finally:
        for ex in executors.values():
            ex.close()

    local = results["in-process"]
    evals = evaluations(local, data.n_models)
    print(f"\nevaluations (prompt x model x knob): {evals:,}")
    for n, timing in setup.items():
        print(
            f"ray, {n} actor(s), first call only: connect {timing['connect_s']:.1f} s, "
            f"shards and actors {timing['setup_s']:.1f} s"
        )
    thr = {name: evals / t for name, t in best.items()}
    print(f"\n{'executor':<16}{'best s':>9}{'evals/s':>14}{'vs in-process':>15}")
    for name, t in best.items():
        ratio = thr[name] / thr["in-process"]
        print(f"{name:<16}{t:>9.1f}{thr[name]:>14,.0f}{ratio:>14.2f}x")
    print(
        f"\nscaling efficiency, 1 -> 2 actors on this {os.cpu_count()}-core machine: "
        f"{thr['ray, 2 actors'] / (2 * thr['ray, 1 actor']):.2f} (target >= 0.8)"
    )

    print(
        f"\n{'actors':>6}{'actor':>6}{'rows':>11}{'shard MB':>10}{'base MB':>9}{'peak MB':>9}"
        f"{'(peak-base)/shard':>19}{'peak/shard':>12}"
    )
    for n, found in actors.items():
        for j, a in enumerate(found):
            shard, base, peak = a["shard_bytes"], a["baseline_rss"], a["peak_rss"]
            print(
                f"{n:>6}{j:>6}{a['rows']:>11,}{shard / MB:>10.0f}{base / MB:>9.0f}"
                f"{peak / MB:>9.0f}{(peak - base) / shard:>19.2f}{peak / shard:>12.2f}"
            )
    print(
        "  base: the actor's peak RSS before it loads its shard (Python, Ray, NumPy, pandas)\n"
        "  peak: its peak RSS after the sweep, object-store pages it touched included\n"
        "  target: (peak - base) / shard <= 1.5"
    )

    identical = all(same(local, res) for res in results.values())
    print(f"\nbit-identical points and curves, all runs: {identical}")
    per = best["ray, 2 actors"] * 2 / (n_test * len(p.cells))
    print(f"core time per (test prompt, cell) with 2 actors: {per * 1e6:.2f} us, fits included")


class Clock:
    """An executor that times another: seconds spent producing its results."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.seconds = 0.0

    def __call__(self, *args: Any) -> list[CellResult]:
        t = time.perf_counter()
        out = list(self.executor(*args))
        self.seconds += time.perf_counter() - t
        return out


if __name__ == "__main__":
    main()
