"""A large table from a Parquet file on disk through Ray: the driver's memory against the data's.

Writes (once) a ``routing-data/1`` file of ``--n`` prompts x ``--models`` models, row groups by
family, then runs the default sweep (``sweeps/quick.toml`` without KNN) on it with a local Ray
in a fresh process: the driver opens the file (footer and row-group statistics only), the
actors read their own row groups and the fit tasks their training rows. Prints the driver's peak
RSS against the data's in-memory size (target: at most 10%) and each actor's peak against its
shard (target: within 1.5x). Then checks, on a ``--sample``-row file, that the Parquet path and
the in-process executor (the file loaded) give bit-identical points and curves.

    .venv/bin/python tests/benchmarks/bench_parquet.py [--n 20000000] [--models 20]
        [--dir /tmp/rb-parquet] [--sample 1000000] [--bootstrap 200]

The large file is ``--copies`` copies of a synthetic set of n / copies prompts (prompt ids made
distinct per copy), written family by family, so it is made without holding n prompts in memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

MB = 1 << 20


def write_copies(path: Path, n: int, models: int, copies: int, features_dim: int) -> None:
    """``copies`` copies of a synthetic set of ``n // copies`` prompts, grouped by family."""
    import pyarrow.parquet as pq

    from routerbench.engine import synth
    from routerbench.engine.io_write import to_table
    from routerbench.engine.rowgroups import ROW_GROUP_ROWS

    base = synth.generate(
        n // copies, 0, n_models=models, with_text=False, features_dim=features_dim
    )
    tmp = path.with_suffix(".part")
    writer = None
    for fam in base.family_names():
        rows = np.flatnonzero(base.families == fam)
        part = base.take(rows)
        for c in range(copies):
            table = to_table(part)
            ids = np.char.add(part.prompt_ids.astype(str), f"#{c}").astype(object)
            table = table.set_column(0, "prompt_id", [ids.tolist()])
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
    assert writer is not None
    writer.close()
    tmp.rename(path)


def spec(bootstrap: int) -> Any:
    from routerbench.sweeps.spec import parse

    doc = tomllib.loads(files("routerbench.sweeps").joinpath("quick.toml").read_text())
    doc["routers"] = [r for r in doc["routers"] if r["name"] != "knn"]
    doc["metrics"]["bootstrap"] = bootstrap
    return parse(doc, source="quick.toml (bench)")


def driver(url: str, bootstrap: int, out: str | None) -> None:
    """The measured run, in this (fresh) process: prints one JSON line."""
    from routerbench.cluster.ray_actors import peak_rss
    from routerbench.cluster.ray_executor import make_executor
    from routerbench.sweeps.execute import open_data, plan, run_grid

    base_rss = peak_rss()
    t0 = time.perf_counter()
    s = spec(bootstrap)
    with make_executor(quiet=True) as ex:
        p = plan(s, open_data(s, url))
        t1 = time.perf_counter()
        res = run_grid(s, p, executor=ex)
        t2 = time.perf_counter()
        actors = ex.actor_info()
    fingerprint_s = time.perf_counter()
    p.data.fingerprint()  # type: ignore[union-attr]  # what a run's manifest records
    fingerprint_s = time.perf_counter() - fingerprint_s
    if out:
        res.points.to_parquet(Path(out) / "points.parquet")
        res.curves.to_parquet(Path(out) / "curves.parquet")
    print(
        json.dumps(
            {
                "data_bytes": p.data.nbytes_in_memory(),  # type: ignore[union-attr]
                "kind": type(p.data).__name__,
                "cells": len(p.cells),
                "test": sum(len(r) for r in p.splits[0].test.values()),
                "plan_s": t1 - t0,
                "run_s": t2 - t1,
                "fingerprint_s": fingerprint_s,
                "base_rss": base_rss,
                "peak_rss": peak_rss(),
                "actors": actors,
            }
        )
    )


def fresh(*argv: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *argv], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000_000)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--features-dim", type=int, default=0, help="prompt vector width (0: none)")
    ap.add_argument("--dir", default="/tmp/rb-parquet")
    ap.add_argument("--sample", type=int, default=1_000_000)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--driver", help=argparse.SUPPRESS)  # internal: the measured process
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.driver:
        driver(args.driver, args.bootstrap, args.out)
        return

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    big = folder / f"big-{args.n}x{args.models}-d{args.features_dim}.parquet"
    if not big.exists():
        t = time.perf_counter()
        write_copies(big, args.n, args.models, args.copies, args.features_dim)
        print(f"wrote {big}: {big.stat().st_size / MB:,.0f} MB in {time.perf_counter() - t:.0f} s")
    r = fresh("--driver", str(big), "--bootstrap", str(args.bootstrap))
    data = r["data_bytes"]
    print(
        f"{args.n:,} x {args.models} from {big.name} ({r['kind']}): {r['cells']} cells, "
        f"{r['test']:,} test prompts; plan {r['plan_s']:.1f} s, sweep {r['run_s']:.0f} s, "
        f"streaming fingerprint {r['fingerprint_s']:.1f} s"
    )
    print(
        f"data in memory {data / MB:,.0f} MB; driver peak RSS {r['peak_rss'] / MB:,.0f} MB "
        f"({r['peak_rss'] / data:.1%} of the data; target <= 10%), "
        f"{r['base_rss'] / MB:,.0f} MB after imports"
    )
    for j, a in enumerate(r["actors"]):
        grew = (a["peak_rss"] - a["baseline_rss"]) / a["shard_bytes"]
        print(
            f"  actor {j}: {a['rows']:,} rows, shard {a['shard_bytes'] / MB:,.0f} MB, peak "
            f"{a['peak_rss'] / MB:,.0f} MB, base {a['baseline_rss'] / MB:,.0f} MB, "
            f"(peak - base) / shard {grew:.2f} (target <= 1.5)"
        )

    small = folder / f"sample-{args.sample}x{args.models}.parquet"
    if not small.exists():
        write_copies(small, args.sample, args.models, 1, 32)
    got = folder / "sample-ray"
    got.mkdir(exist_ok=True)
    fresh("--driver", str(small), "--bootstrap", str(args.bootstrap), "--out", str(got))
    identical = same(small, got, args.bootstrap)
    print(f"{args.sample:,}-row sample, Parquet path vs in-process, bit-identical: {identical}")


def same(url: Path, got: Path, bootstrap: int) -> bool:
    """The in-process executor's tables on the loaded file, through the same Parquet round
    trip, equal the ones the Parquet path wrote, bit for bit."""
    import pandas as pd

    from routerbench.sweeps.execute import load_data, plan, run_grid

    s = spec(bootstrap)
    res = run_grid(s, plan(s, load_data(s, str(url))))
    for name, frame in (("points", res.points), ("curves", res.curves)):
        frame.to_parquet(got / f"in-process-{name}.parquet")
        a = pd.read_parquet(got / f"in-process-{name}.parquet")
        b = pd.read_parquet(got / f"{name}.parquet")
        if name == "points":
            a, b = a.drop(columns="seconds"), b.drop(columns="seconds")
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        except AssertionError as e:
            print(f"{name}: {str(e)[:300]}")
            return False
    return True


if __name__ == "__main__":
    main()
