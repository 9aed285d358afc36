"""Scaling of the executors: 2,000,000 prompts x 11 models, the default sweep, in one run.

Prints, measured side by side on the same plan: the in-process executor on one process and on
every core (``--workers``), and a local Ray at 1, 2, 4, ... shard actors up to this machine's
cores; for each, the evaluation seconds, throughput (prompt x model x knob evaluations per
second), scaling efficiency against one actor, the driver's CPU seconds against the workers'
(actors and fit tasks) total, each actor's peak memory against its shard, and whether every run
gave bit-identical points and curves.

The sweep is ``sweeps/quick.toml`` (single models, oracle, zero, random, KNN, cascade; 200 bootstrap
replicates) without KNN unless ``--knn`` (its neighbour search is O(train x test) per family).

    .venv/bin/python tests/benchmarks/bench_scaling.py [--n 2000000] [--models 11]
        [--bootstrap 200] [--knn] [--max-actors CORES]

A Ray executor's first call connects, places the shards and starts the actors (printed apart);
its second call, on placed shards, is the one measured. The driver's CPU is this process's CPU
time over the whole second call, summary included (bootstrap AIQ, intervals, bands); the
workers' is the CPU time of every ``ray::`` worker process over the same call.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from routerbench.cluster.ray_executor import make_executor
from routerbench.cluster.ray_layout import array_bytes
from routerbench.engine import synth
from routerbench.engine.parallel import all_cores, workers
from routerbench.sweeps.cells import CellResult
from routerbench.sweeps.execute import Executor, local_executor, plan, run_grid
from routerbench.sweeps.spec import Spec, parse
from routerbench.sweeps.summary import Results

MB = 1 << 20
TICK = os.sysconf("SC_CLK_TCK")


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


def driver_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def ray_workers_cpu() -> float:
    """CPU seconds so far of every live Ray worker process (``ray::...``: actors, tasks)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "cmdline").read_bytes().startswith(b"ray::"):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return total


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

    def __getattr__(self, name: str) -> Any:  # mean_costs, reads_rows: the executor's
        return getattr(self.executor, name)


def measure(spec: Spec, p: Any, executor: Executor) -> dict[str, Any]:
    clock = Clock(executor)
    cpu, wcpu, t = driver_cpu(), ray_workers_cpu(), time.perf_counter()
    res = run_grid(spec, p, executor=clock)
    wall = time.perf_counter() - t
    return {
        "results": res,
        "evaluate": clock.seconds,
        "summary": wall - clock.seconds,
        "driver_cpu": driver_cpu() - cpu,
        "workers_cpu": ray_workers_cpu() - wcpu,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000, help="prompts (default 2,000,000)")
    ap.add_argument("--models", type=int, default=11, help="models (default 11)")
    ap.add_argument("--bootstrap", type=int, help="bootstrap replicates (default: the spec's)")
    ap.add_argument("--knn", action="store_true", help="keep the KNN router")
    ap.add_argument("--max-actors", type=int, default=all_cores(), help="default: every core")
    args = ap.parse_args()

    t = time.perf_counter()
    data = synth.generate(args.n, 0, n_models=args.models, with_text=False)
    print(
        f"data: {data!r}, features {data.features.shape}, {array_bytes(data) / MB:,.0f} MB "
        f"of arrays; generated in {time.perf_counter() - t:.1f} s; {all_cores()} cores"
    )
    spec = sweep(args.bootstrap, args.knn)
    p = plan(spec, data)
    n_test = sum(len(r) for r in p.splits[0].test.values())
    routers = ", ".join(dict.fromkeys(c.router for c in p.cells))
    print(
        f"sweep: {len(p.cells)} cells ({routers}) x {len(p.families)} families, "
        f"{n_test:,} test prompts, bootstrap {spec.metrics['bootstrap']}\n"
    )

    runs: dict[str, dict[str, Any]] = {}
    for n in sorted({1, all_cores()}):
        with workers(n):
            runs[f"in-process, {n} worker(s)"] = measure(spec, p, local_executor)
    counts = [c for c in (1, 2, 4, 8, 16, 32, 64) if c <= args.max_actors]
    actors: dict[int, list[dict[str, Any]]] = {}
    for n in counts:
        with make_executor(shards=n, quiet=True) as ex:
            t = time.perf_counter()
            list(ex(p.data, p.cells[:1], {s.name: s for s in p.splits}, {
                "bootstrap": 0, "seed": 0, "fail_fast": False}))  # fmt: skip
            first = time.perf_counter() - t
            runs[f"ray, {n} actor(s)"] = measure(spec, p, ex)
            actors[n] = ex.actor_info()
            print(f"ray, {n} actor(s): connect, shards, actors and one cell {first:.1f} s")

    reference = runs["in-process, 1 worker(s)"]["results"]
    evals = evaluations(reference, data.n_models)
    one = runs["ray, 1 actor(s)"]["evaluate"]
    print(f"\nevaluations (prompt x model x knob): {evals:,}")
    print(
        f"{'executor':<24}{'evaluate s':>11}{'evals/s':>14}{'efficiency':>11}{'summary s':>10}"
        f"{'driver CPU s':>13}{'workers CPU s':>14}{'driver/workers':>15}{'identical':>10}"
    )
    for name, r in runs.items():
        n = int(name.split(", ")[1].split(" ")[0])
        eff = f"{one / (n * r['evaluate']):.2f}" if name.startswith("ray") else "-"
        share = r["driver_cpu"] / r["workers_cpu"] if r["workers_cpu"] else float("nan")
        print(
            f"{name:<24}{r['evaluate']:>11.1f}{evals / r['evaluate']:>14,.0f}{eff:>11}"
            f"{r['summary']:>10.2f}{r['driver_cpu']:>13.2f}{r['workers_cpu']:>14.1f}"
            f"{share:>15.1%}{same(reference, r['results'])!s:>10}"
        )
    print(
        "  efficiency: one actor's evaluation seconds / (actors x these); driver CPU: this\n"
        "  process over the call (summary included); workers: every ray:: process (in-process\n"
        "  runs have none); identical: points and curves equal the 1-worker in-process run's"
    )

    print(
        f"\n{'actors':>6}{'actor':>6}{'rows':>11}{'shard MB':>10}{'base MB':>9}{'peak MB':>9}"
        f"{'(peak-base)/shard':>19}"
    )
    for n, found in actors.items():
        for j, a in enumerate(found):
            shard, base, peak = a["shard_bytes"], a["baseline_rss"], a["peak_rss"]
            print(
                f"{n:>6}{j:>6}{a['rows']:>11,}{shard / MB:>10.0f}{base / MB:>9.0f}"
                f"{peak / MB:>9.0f}{(peak - base) / shard:>19.2f}"
            )
    print(
        "  base: the actor's peak RSS before it loads its shard (Python, Ray, NumPy, pandas)\n"
        "  peak: its peak RSS after the sweep; target (peak - base) / shard <= 1.5"
    )


if __name__ == "__main__":
    main()
