"""Scaling of the Ray executor: 2,000,000 prompts x 11 models, the default sweep, in one run.

Prints, measured side by side: throughput in prompt x model x knob evaluations per second with the
in-process executor and with a local Ray at 1 and 2 shard actors; the scaling efficiency from 1 to
2 actors; each actor's peak memory against its shard's arrays; and whether the three runs gave
bit-identical points and curves.

The sweep is ``sweeps/quick.toml`` (single models, oracle, zero, random, KNN; 200 bootstrap
replicates) without KNN unless ``--knn``: brute-force neighbours cost O(train x test) per family,
hours at this size on 2 cores, and would measure scikit-learn rather than the executor.

    .venv/bin/python tests/benchmarks/bench_scaling.py [--n 2000000] [--bootstrap 200] [--knn]
"""

from __future__ import annotations

import argparse
import time
import tomllib
from importlib.resources import files
from typing import Any

import pandas as pd

from routerbench.cluster.ray_executor import array_bytes, make_executor
from routerbench.engine import synth
from routerbench.sweeps.execute import Plan, plan, run_grid
from routerbench.sweeps.runner import Results
from routerbench.sweeps.spec import Spec, parse

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


def on_ray(
    spec: Spec, p: Plan, shards: int
) -> tuple[Results, dict[str, float], list[dict[str, Any]]]:
    """Run on a local Ray that the executor starts and stops; its timings and actor figures."""
    t0 = time.perf_counter()
    with make_executor(shards=shards, quiet=True) as ex:
        res = run_grid(spec, p, executor=ex)
        timing = {**ex.last_run, "wall_s": time.perf_counter() - t0}
        actors = ex.actor_info()
    return res, timing, actors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000, help="prompts (default 2,000,000)")
    ap.add_argument("--bootstrap", type=int, help="bootstrap replicates (default: the spec's)")
    ap.add_argument("--knn", action="store_true", help="keep the KNN router (slow at this size)")
    args = ap.parse_args()

    t = time.perf_counter()
    data = synth.generate(args.n, 0, with_text=False)
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

    t = time.perf_counter()
    local = run_grid(spec, p)
    t_local = time.perf_counter() - t
    evals = evaluations(local, data.n_models)
    print(f"evaluations (prompt x model x knob): {evals:,}\n")

    runs = {n: on_ray(spec, p, n) for n in (1, 2)}
    rows = [("in-process", t_local, t_local, evals / t_local)]
    for n, (_, timing, _) in runs.items():
        rows.append(
            (
                f"ray, {n} actor" + "s" * (n > 1),
                timing["wall_s"],
                timing["evaluate_s"],
                evals / timing["evaluate_s"],
            )
        )
    print(f"{'executor':<16}{'wall s':>9}{'eval s':>9}{'evals/s':>14}{'vs in-process':>15}")
    for name, wall, ev, thr in rows:
        print(f"{name:<16}{wall:>9.1f}{ev:>9.1f}{thr:>14,.0f}{thr / rows[0][3]:>14.2f}x")
    for n, (_, timing, _) in runs.items():
        print(
            f"  ray {n}: connect {timing['connect_s']:.1f} s, shards and actors "
            f"{timing['setup_s']:.1f} s (not in eval s)"
        )
    eff = rows[2][3] / (2 * rows[1][3])
    eff_wall = rows[1][1] / (2 * rows[2][1])
    print(
        f"\nscaling efficiency 1 -> 2 actors: {eff:.2f} (eval s; target >= 0.8), "
        f"{eff_wall:.2f} by wall time"
    )

    print(
        f"\n{'actors':>6}{'actor':>6}{'rows':>11}{'shard MB':>10}{'base MB':>9}{'peak MB':>9}"
        f"{'(peak-base)/shard':>19}{'peak/shard':>12}"
    )
    for n, (_, _, actors) in runs.items():
        for j, a in enumerate(actors):
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

    identical = all(same(local, res) for res, _, _ in runs.values())
    print(f"\nbit-identical points and curves (in-process, ray 1, ray 2): {identical}")
    per_prompt_cell = rows[1][2] / (n_test * len(p.cells))
    print(f"one actor: {per_prompt_cell * 1e6:.2f} us per (test prompt, cell), fits included")


if __name__ == "__main__":
    main()
