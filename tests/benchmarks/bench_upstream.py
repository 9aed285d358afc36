"""The original's configuration (``sweeps/routerbench-upstream.toml``) end to end, from files.

Writes, in a temporary folder, the embedded synthetic data set (36,497 prompts x 11 models) as a
published-schema wide pickle and an embedding cache of 384-d vectors (MiniLM's width) in the
original's format, then times ``routerbench run sweeps/routerbench-upstream.toml --data ...
--features ... --workers N`` for each N asked, in a fresh process each, and prints the per-phase
times from the manifest, the fitting seconds per router, the ratio to the first N, and whether
the tables are identical (they must be, whatever N).

The synthetic vectors are a worst case for the MLP: every one of the 154 per-model networks runs
its 200 iterations (no early stop).

    python tests/benchmarks/bench_upstream.py --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from routerbench.engine import io, synth

SPEC = Path(__file__).resolve().parents[2] / "sweeps" / "routerbench-upstream.toml"


def write_inputs(folder: Path, n: int, dim: int) -> tuple[str, str]:
    """The data as the published wide pickle, and an embedding cache for its prompts."""
    data = synth.generate(n, 0, features_dim=dim)
    frame = io.to_upstream_wide_frame(data)
    data_url = str(folder / "routerbench_0shot.pkl")
    frame.to_pickle(data_url)
    assert data.features is not None
    records = [
        {"prompt": p, "embedding": v.tolist(), "hash": f"{i:x}", "embedding_model": "synthetic"}
        for i, (p, v) in enumerate(zip(frame["prompt"], data.features, strict=True))
    ]
    cache_url = str(folder / "embedding_cache_synthetic.pkl")
    with open(cache_url, "wb") as f:
        pickle.dump(records, f, protocol=4)
    return data_url, cache_url


def run(data_url: str, cache_url: str, out: Path, workers: int) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "routerbench.cluster.cli", "run", str(SPEC), "--data", data_url]
    cmd += ["--features", cache_url, "--out", str(out), "--workers", str(workers)]
    cmd += ["--run-id", f"w{workers}", "--no-plots", "--quiet"]
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
    if rc not in (0, 1):  # 1: some cells failed (e.g. k above a tiny family's training rows)
        raise SystemExit(f"routerbench run exited with {rc}")
    wall = time.perf_counter() - t0
    return wall, json.loads((out / f"w{workers}" / "manifest.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n", type=int, default=36497)
    ap.add_argument("--dim", type=int, default=384)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        data_url, cache_url = write_inputs(folder, args.n, args.dim)
        print(f"inputs: {args.n} prompts, {args.dim}-d cache, {time.perf_counter() - t0:.1f} s")
        base = None
        tables = {}
        for w in args.workers:
            wall, manifest = run(data_url, cache_url, folder / "runs", w)
            run_dir = folder / "runs" / f"w{w}"
            points = pd.read_parquet(run_dir / "points.parquet")
            fits = points.drop_duplicates(["cell_id", "family"]).groupby("router")["seconds"]
            phases = ", ".join(f"{k} {v:.1f} s" for k, v in manifest["phases"].items())
            base = base or wall
            print(f"workers {w}: {wall:.1f} s wall ({base / wall:.2f}x vs first); {phases}")
            print(
                "  fitting seconds by router: "
                + fits.sum().round(1).to_string().replace("\n", ", ")
            )
            tables[w] = [
                pd.read_parquet(run_dir / f"{t}.parquet").drop(
                    columns=["run_id", "seconds"], errors="ignore"
                )
                for t in ("points", "curves")
            ]
        first = tables[args.workers[0]]
        same = all(all(a.equals(b) for a, b in zip(first, t, strict=True)) for t in tables.values())
        curves = first[1]
        up = curves["aiq_upstream"].to_numpy()
        print(
            f"tables identical across workers: {same}; curves {len(curves)}, "
            f"aiq_upstream NaN {int(np.isnan(up).sum())} (single models and 2-cost curves)"
        )


if __name__ == "__main__":
    main()
