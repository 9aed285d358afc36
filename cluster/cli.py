"""The ``routerbench`` command: a thin layer over the Python API.

User mistakes (bad files, columns, names, values) print one line
``routerbench: error: ...`` and exit with code 2, with no traceback and nothing half-written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sys
import time
from collections.abc import Sequence
from typing import Any

from routerbench.engine.data import PAPER_FAMILIES, DataError, RoutingData
from routerbench.routers.base import RouterError

DEFAULT_N = 36497


class UsageError(ValueError):
    """A bad command-line value; shown as one line, exit code 2."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("routerbench")
    except PackageNotFoundError:
        return "0+unknown"


def _log(args: argparse.Namespace, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stderr, flush=True)


def _load(url: str | None, args: argparse.Namespace) -> RoutingData:
    from routerbench.engine import io, synth

    if url is None:
        _log(args, f"data: synthetic RouterBench-shaped set, {DEFAULT_N} prompts, seed {args.seed}")
        return synth.generate(DEFAULT_N, args.seed)
    _log(args, f"data: {url}")
    return io.load(url)


# ---------------------------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    from routerbench.cluster import store
    from routerbench.sweeps.plot import plot_family
    from routerbench.sweeps.report import leaderboard_table
    from routerbench.sweeps.runner import evaluate, reference_routers, split_mask

    t0 = time.perf_counter()
    data = _load(args.data, args)
    full = data.complete()
    if full.n_prompts < data.n_prompts:
        _log(args, f"dropped {data.n_prompts - full.n_prompts} prompts with missing outcomes")
    routers = reference_routers(full, seed=args.seed)
    train = split_mask(full, args.split, args.seed)
    fams = _families(full, args.family)

    from tqdm import tqdm

    bar = tqdm(total=len(fams) * len(routers), disable=args.quiet, unit="router", file=sys.stderr)

    def progress(msg: str) -> None:
        bar.set_description(msg[:40])
        bar.update(1)

    res = evaluate(full, routers, train_mask=train, families=fams, progress=progress)
    bar.close()

    run_id = args.run_id or _run_id(full, args)
    out = store.join(args.out, run_id)
    provenance = {
        "run_id": run_id,
        "data_source": full.source,
        "data_fingerprint": full.fingerprint(),
        "synthetic": full.synthetic,
        "split": args.split,
        "seed": args.seed,
        "routerbench_version": _version(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    points = res.points.assign(run_id=run_id, data_fingerprint=provenance["data_fingerprint"])
    curves = res.curves.assign(run_id=run_id, data_fingerprint=provenance["data_fingerprint"])
    store.write_table(store.join(out, "points.parquet"), points)
    store.write_table(store.join(out, "curves.parquet"), curves)
    if not args.no_plots:
        tag = " (synthetic data)" if full.synthetic else ""
        for fam in fams:
            png = plot_family(res.points, res.curves, fam, title=f"{fam}{tag}")
            store.write_bytes(store.join(out, "plots", f"{_safe(fam)}.png"), png)
    provenance["seconds"] = round(time.perf_counter() - t0, 3)
    store.write_json(store.join(out, "manifest.json"), provenance)

    print(leaderboard_table(res.curves, synthetic=full.synthetic))
    _log(args, f"results: {out}  ({provenance['seconds']:.1f} s)")
    return 0


def _families(data: RoutingData, asked: list[str] | None) -> list[str]:
    """The asked families ('all': every one); by default the paper's seven that are present, or
    every family if none is."""
    names = data.family_names()
    if not asked:
        return [f for f in names if f in PAPER_FAMILIES] or names
    unknown = sorted(set(asked) - {*names, "all"})
    if unknown:
        raise UsageError(
            f"--family {unknown[0]!r} is not in the data: expected 'all' or one of {names}"
        )
    return names if "all" in asked else [f for f in names if f in asked]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _run_id(data: RoutingData, args: argparse.Namespace) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    key = f"{data.fingerprint()}|{args.split}|{args.seed}"
    return f"{stamp}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


# --------------------------------------------------------------------------------------- data
def cmd_data_info(args: argparse.Namespace) -> int:
    from routerbench.engine import io

    data = io.load(args.url)
    tag = "  [synthetic]" if data.synthetic else ""
    fams = data.families.astype(str)
    print(f"{data.source}{tag}")
    print(
        f"{data.n_prompts} prompts x {data.n_models} models, {len(set(data.eval_names))} eval "
        f"names, {len(set(fams))} families, {int(data.missing.sum())} missing outcomes"
    )
    print(io.summarize(data).to_string(index=False))
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    from routerbench.engine import io

    data = io.load(args.src)
    io.save(data, args.dst, format=args.format)
    print(f"wrote {args.dst} ({data.n_prompts} prompts x {data.n_models} models, {args.format})")
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from routerbench.engine import io, synth

    if args.n < 1:
        raise UsageError(f"--n must be >= 1 (got {args.n})")
    data = synth.generate(args.n, args.seed)
    fmt = {"upstream-pickle": "upstream-wide"}.get(args.format, args.format)
    io.save(data, args.out, format=fmt)
    print(f"wrote {args.out}: synthetic, {data.n_prompts} prompts x {data.n_models} models")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from routerbench.engine import fetch

    for f in fetch.fetch(tuple(args.files), cache_dir=args.cache_dir, revision=args.revision):
        print(f"{f.path}  sha256={f.sha256}  {f.size} bytes")
    return 0


# ----------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="routerbench",
        description="Evaluate LLM routers by replaying precomputed outcomes (RouterBench).",
    )
    p.add_argument("--version", action="version", version=f"routerbench {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "run",
        help="run the default job: reference routers per family, table, Parquet and plots",
        description="Per family: every single model, the oracle, the zero router and a random "
        "router on the test split; prints AIQ, max quality and its cost; writes "
        "points.parquet, curves.parquet, plots/<family>.png and manifest.json under OUT/<run id>/.",
    )
    r.add_argument("--data", metavar="URL", help="outcome data (default: embedded synthetic set)")
    r.add_argument(
        "--out", default="runs", metavar="URL", help="results folder or URL (default: runs)"
    )
    r.add_argument("--run-id", help="name of the run folder (default: time and a hash)")
    r.add_argument(
        "--split",
        choices=["upstream", "seeded"],
        default="upstream",
        help="upstream: per family, legacy RNG seeded 42, 70%% train (default)",
    )
    r.add_argument(
        "--seed", type=int, default=0, help="seed for data, splits and draws (default 0)"
    )
    r.add_argument(
        "--family",
        action="append",
        help="evaluate this family (repeatable; 'all': every family); default: the paper's "
        "seven families present in the data, or every family if none is",
    )
    r.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("data", help="inspect, convert, generate or fetch outcome data")
    dsub = d.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    di = dsub.add_parser("info", help="models, families, rows, NaN counts, mean quality and cost")
    di.add_argument("url", metavar="URL")
    di.set_defaults(func=cmd_data_info)
    dc = dsub.add_parser("convert", help="convert between formats (format of IN is detected)")
    dc.add_argument("src", metavar="IN")
    dc.add_argument("dst", metavar="OUT")
    dc.add_argument("--format", choices=["parquet", "upstream-wide", "long"], default="parquet")
    dc.set_defaults(func=cmd_data_convert)
    ds = dsub.add_parser("synth", help="write the synthetic RouterBench-shaped data set")
    ds.add_argument("--out", required=True, metavar="URL")
    ds.add_argument("--n", type=int, default=DEFAULT_N, help=f"prompts (default {DEFAULT_N})")
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument("--format", choices=["parquet", "upstream-pickle", "long"], default="parquet")
    ds.set_defaults(func=cmd_data_synth)
    df = dsub.add_parser("fetch", help="download the published files (needs routerbench[hub])")
    df.add_argument(
        "--files",
        nargs="+",
        default=["routerbench_0shot.pkl", "routerbench_5shot.pkl"],
        metavar="FILE",
    )
    df.add_argument("--cache-dir", metavar="DIR")
    df.add_argument("--revision")
    df.set_defaults(func=cmd_data_fetch)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        if getattr(args, "command", None) == "data":
            parser.parse_args(["data", "--help"])
        parser.print_help()
        return 2
    try:
        rc: Any = args.func(args)
    except (DataError, RouterError, UsageError) as e:
        print(f"routerbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("routerbench: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
