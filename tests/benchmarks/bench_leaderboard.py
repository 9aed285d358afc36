"""Benchmark: refreshing the leaderboard over 100 stored runs (target: under 30 s).

Run: ``python tests/benchmarks/bench_leaderboard.py``. One real run is evaluated (the seven paper
families of a 12,000-prompt synthetic set: single models, oracle, zero, random, KNN k=5/10/40),
then stored 100 times as distinct runs (each with its own router configurations, so nothing is
deduplicated), in a local folder and on a moto S3 server on 127.0.0.1. Prints the seconds of each
refresh, the rows and plots published, and the ratio to the 30 s target.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pandas as pd

from routerbench.cluster import leaderboard as lb
from routerbench.engine import storage as store
from routerbench.sweeps.execute import load_data, plan, run_grid
from routerbench.sweeps.spec import parse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from s3server import s3_server  # moto's S3 server on 127.0.0.1

RUNS = 100
TARGET = 30.0
SPEC = """
[data]
synthetic_n = 12000
[[routers]]
name = "single"
[[routers]]
name = "oracle"
[[routers]]
name = "zero"
[[routers]]
name = "random"
[[routers]]
name = "knn"
grid = { k = [5, 10, 40] }
[metrics]
bootstrap = 100
"""


def base_run() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    spec = parse(tomllib.loads(SPEC), text=SPEC)
    data = load_data(spec)
    res = run_grid(spec, plan(spec, data))
    manifest = {
        "spec": "bench.toml",
        "data_source": data.source,
        "data_fingerprint": data.fingerprint(),
        "synthetic": True,
        "routerbench_version": "bench",
    }
    return res.points, res.curves, manifest


def variant(df: pd.DataFrame, i: int) -> pd.DataFrame:
    """Run i's own router configurations: every non-single router gets a distinct parameter."""
    params = [
        p if r == "single" else json.dumps({**json.loads(p), "variant": i}, sort_keys=True)
        for r, p in zip(df["router"], df["params"], strict=True)
    ]
    return df.assign(params=params, run_id=f"run{i:03d}")


def store_runs(url: str, so: dict | None, points, curves, manifest) -> None:
    for i in range(RUNS):
        run = store.join(url, f"run{i:03d}")
        m = {**manifest, "run_id": f"run{i:03d}", "spec_hash": f"{i:016x}"}
        m["created"] = f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00"
        store.write_table(store.join(run, "points.parquet"), variant(points, i), so)
        store.write_table(store.join(run, "curves.parquet"), variant(curves, i), so)
        store.write_json(store.join(run, "manifest.json"), m, so)


def timed_refresh(runs_url: str, out_url: str, so: dict | None) -> tuple[float, pd.DataFrame, int]:
    t0 = time.perf_counter()
    folder = lb.refresh(runs_url, out_url, so)
    seconds = time.perf_counter() - t0
    table = store.read_table(store.join(folder, "leaderboard.parquet"), so)
    page = store.read_bytes(store.join(folder, "index.html"), so)
    return seconds, table, page.count(b"data:image/png;base64,")


def main() -> None:
    t0 = time.perf_counter()
    points, curves, manifest = base_run()
    print(f"base run evaluated in {time.perf_counter() - t0:.1f} s: {len(curves)} curves")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        store_runs(f"{tmp}/runs", None, points, curves, manifest)
        results["local folder"] = timed_refresh(f"{tmp}/runs", f"{tmp}/lb", None)
    with s3_server() as s3:
        so, bucket = s3.options(), s3.bucket()
        store_runs(f"{bucket}/runs", so, points, curves, manifest)
        results["S3 (moto, 127.0.0.1)"] = timed_refresh(f"{bucket}/runs", f"{bucket}/lb", so)
    print(f"\nrefresh over {RUNS} stored runs (target < {TARGET:.0f} s):")
    print(f"{'store':<22} {'seconds':>8} {'x target':>9} {'rows':>6} {'plots':>6}")
    for name, (seconds, table, plots) in results.items():
        print(f"{name:<22} {seconds:8.2f} {seconds / TARGET:9.3f} {len(table):6d} {plots:6d}")
    local, s3_time = results["local folder"][0], results["S3 (moto, 127.0.0.1)"][0]
    print(f"S3 / local: {s3_time / local:.2f}x")


if __name__ == "__main__":
    main()
