"""Benchmark: the shipped 50-trial Optuna search, ``routerbench run sweeps/optuna-knn-mlp.toml``.

Run: ``python tests/benchmarks/bench_optuna.py [--executor local|ray|both]``. Runs the CLI as a
user would (plots included) on the embedded synthetic data, once per executor, and prints the
wall time and CPU time against the 3-minute budget (other work on the machine inflates the wall
time; the local executor's CPU time is about what an idle machine would take), the trials
(complete, failed, per router, seconds per trial) and the best configuration's validation and
test AIQ. Needs no network.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "sweeps" / "optuna-knn-mlp.toml"
BUDGET = 180.0  # seconds, the target on 2 cores


def _child_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(executor: str, out: Path) -> dict[str, Any]:
    """One CLI run; its wall time and what its tables say."""
    cli = Path(sys.executable).with_name("routerbench")
    cmd = [str(cli), "run", str(SPEC), "--out", str(out), "--run-id", executor, "--quiet"]
    if executor != "local":
        cmd += ["--executor", executor]
    cpu0 = _child_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    cpu = _child_cpu() - cpu0
    if proc.returncode:
        return {"executor": executor, "wall_s": wall, "error": proc.stderr.strip()[-300:]}
    run_dir = out / executor
    trials = pd.read_parquet(run_dir / "trials.parquet")
    curves = pd.read_parquet(run_dir / "curves.parquet")
    best = trials[trials["is_best"]].iloc[0]
    done = trials[trials["state"] == "COMPLETE"]
    return {
        "executor": executor,
        "wall_s": wall,
        "cpu_s": cpu,
        "manifest_s": json.loads((run_dir / "manifest.json").read_text())["seconds"],
        "trials": len(trials),
        "complete": len(done),
        "failed": int((trials["state"] == "FAIL").sum()),
        "per_router": trials["router"].value_counts().to_dict(),
        "median_trial_s": float(done["duration"].median()),
        "best": f"#{best['trial']} {best['router']} {best['params']}",
        "best_validation_aiq": float(best["validation_aiq"]),
        "best_test_aiq_mean": float(curves["aiq"].mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executor", choices=["local", "ray", "both"], default="local")
    args = ap.parse_args()
    executors = ["local", "ray"] if args.executor == "both" else [args.executor]
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(e, Path(tmp)) for e in executors]
    print(f"spec: {SPEC.relative_to(ROOT)}  budget: {BUDGET:.0f} s")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    for r in results:
        head = f"[{r['executor']}] wall {r['wall_s']:.1f} s = {r['wall_s'] / BUDGET:.2f} x budget"
        if "error" in r:
            print(f"{head}; FAILED: {r['error']}")
            continue
        note = " (Ray's workers are not all counted)" if r["executor"] == "ray" else ""
        print(
            f"{head} (manifest: {r['manifest_s']:.1f} s); CPU {r['cpu_s']:.1f} s = "
            f"{r['cpu_s'] / BUDGET:.2f} x budget{note}"
        )
        print(
            f"  trials {r['trials']}: {r['complete']} complete, {r['failed']} failed; "
            f"per router {r['per_router']}; median {r['median_trial_s']:.2f} s per trial "
            "(ask to tell)"
        )
        print(f"  best {r['best']}")
        print(
            f"  validation AIQ {r['best_validation_aiq']:.4f}; "
            f"test AIQ (mean over families) {r['best_test_aiq_mean']:.4f}"
        )
    ok = [r for r in results if "error" not in r]
    if len(ok) == 2:
        print(f"ray / local wall time: {ok[1]['wall_s'] / ok[0]['wall_s']:.2f}")


if __name__ == "__main__":
    main()
