"""The ``routerbench`` command: a thin layer over the Python API.

User mistakes (bad files, columns, names, values) print one line
``routerbench: error: ...`` and exit with code 2, with no traceback and nothing half-written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import tomllib
from collections.abc import Sequence
from typing import Any

from routerbench.engine.data import DataError
from routerbench.routers.base import RouterError
from routerbench.sweeps.spec import SpecError

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


# ---------------------------------------------------------------------------------------- run
def _spec(path: str | None) -> Any:
    from importlib.resources import files

    from routerbench.sweeps import spec as specmod

    if path is None:
        res = files("routerbench.sweeps").joinpath("quick.toml")
        text = res.read_text()
        return specmod.parse(tomllib.loads(text), source="sweeps/quick.toml", text=text)
    return specmod.load(path)


def cmd_validate(args: argparse.Namespace) -> int:
    from routerbench.sweeps import spec as specmod
    from routerbench.sweeps.execute import load_data, plan

    if args.fields:
        print(specmod.describe_fields())
        return 0
    spec = _spec(args.spec)
    print(f"spec {spec.source}: valid (hash {spec.hash})")
    data = load_data(spec, args.data) if args.data or not spec.data["url"] else None
    if data is None:
        print(f"data: {spec.data['url']} (not loaded; pass --data to plan against it)")
        return 0
    p = plan(spec, data)
    print(f"data: {data!r}")
    print(f"families: {', '.join(p.families)}")
    print(f"splits: {', '.join(s.name for s in p.splits)}")
    counts: dict[str, int] = {}
    for c in p.cells:
        counts[c.router] = counts.get(c.router, 0) + 1
    print(f"cells: {len(p.cells)} (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")")
    fits = len(p.cells) * len(p.families)
    print(
        f"work: {fits} fits, each scoring its family's test prompts once; "
        f"search: {spec.search['kind']}; bootstrap replicates: {spec.metrics['bootstrap']}"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from routerbench.cluster import store
    from routerbench.cluster.resume import CellStore, default_run_id, inputs_key, is_complete
    from routerbench.sweeps.execute import load_data, plan, run_grid
    from routerbench.sweeps.plot import plot_family
    from routerbench.sweeps.report import leaderboard_table

    t0 = time.perf_counter()
    spec = _spec(args.spec)
    data = load_data(spec, args.data)
    _log(args, f"data: {data!r}")
    p = plan(spec, data)
    _log(args, f"plan: {len(p.cells)} cells x {len(p.families)} families")
    so = store.parse_storage_options(args.storage_option)
    run_id = args.run_id or default_run_id(spec.hash, data.fingerprint())
    out = store.join(args.out or spec.output["url"], run_id)
    if is_complete(out, so):  # same spec, data and code versions: nothing to evaluate or write
        curves = store.read_table(store.join(out, "curves.parquet"), so)
        print(leaderboard_table(curves, synthetic=data.synthetic))
        _log(args, f"results: {out} (already complete: nothing evaluated; --run-id for a new run)")
        return 0
    cells = CellStore(out, so, inputs=inputs_key(spec.hash, data.fingerprint()))

    from tqdm import tqdm

    executor = _executor(args)
    if spec.search["kind"] == "optuna":
        from routerbench.sweeps.search import run_optuna

        # The study's journal lives beside the run (local output): an interrupted search resumes.
        journal = None
        if store.is_local(out):
            journal = store.join(out.removeprefix("file://"), "study.journal")
            os.makedirs(os.path.dirname(journal), exist_ok=True)
        res, trials = run_optuna(spec, p, executor=executor, quiet=args.quiet, journal=journal)
    else:
        bar = tqdm(total=len(p.cells), disable=args.quiet, unit="cell", file=sys.stderr)

        def tick(r: Any) -> None:
            cells.save(r)
            bar.update(1)

        res = run_grid(
            spec, p, executor=executor, fail_fast=args.fail_fast, skip=cells.load, on_result=tick
        )
        bar.close()
        trials = None

    provenance = {
        "run_id": run_id,
        "spec": spec.source,
        "spec_hash": spec.hash,
        "data_source": data.source,
        "data_fingerprint": data.fingerprint(),
        "synthetic": data.synthetic,
        "routerbench_version": _version(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    extra = {k: provenance[k] for k in ("run_id", "spec_hash", "data_fingerprint")}
    store.write_table(store.join(out, "points.parquet"), res.points.assign(**extra), so)
    store.write_table(store.join(out, "curves.parquet"), res.curves.assign(**extra), so)
    if trials is not None:
        store.write_table(store.join(out, "trials.parquet"), trials.assign(**extra), so)
    store.write_bytes(store.join(out, "spec.toml"), spec.text.encode(), so)
    if not args.no_plots:
        tag = " (synthetic data)" if data.synthetic else ""
        for fam in p.families:
            for split in sorted(set(res.curves["split"])):
                png = plot_family(
                    res.points[res.points["split"] == split],
                    res.curves[res.curves["split"] == split],
                    fam,
                    title=f"{fam}, {split} split{tag}",
                )
                name = _safe(fam) if split in ("upstream", "custom") else f"{_safe(fam)}-{split}"
                store.write_bytes(store.join(out, "plots", f"{name}.png"), png, so)
    failed = int((res.points["status"] == "failed").sum())
    provenance["seconds"] = round(time.perf_counter() - t0, 3)
    provenance["failed_rows"] = failed
    store.write_json(store.join(out, "manifest.json"), provenance, so)

    print(leaderboard_table(res.curves, synthetic=data.synthetic))
    if failed:
        _log(args, f"{failed} failed rows (see the 'error' column of points.parquet)")
    _log(args, f"results: {out}  ({provenance['seconds']:.1f} s)")
    return 0


def _executor(args: argparse.Namespace) -> Any:
    """The in-process executor, or Ray's (local Ray on this machine's cores without --address)."""
    from routerbench.sweeps.execute import local_executor

    if args.executor == "local":
        if args.address or args.shards:
            raise UsageError("--address and --shards need --executor ray")
        return local_executor
    from routerbench.cluster.ray_executor import make_executor

    return make_executor(address=args.address, shards=args.shards, quiet=args.quiet)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


# ------------------------------------------------------------------------------ report, plot
def _read_run(url: str, so: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    import json

    from routerbench.cluster import store

    try:
        manifest = json.loads(store.read_bytes(store.join(url, "manifest.json"), so))
        return (
            store.read_table(store.join(url, "points.parquet"), so),
            store.read_table(store.join(url, "curves.parquet"), so),
            manifest,
        )
    except FileNotFoundError as e:
        raise UsageError(
            f"{url}: not a completed run (missing {e.filename or 'manifest.json'}); expected a "
            "folder written by 'routerbench run'"
        ) from None


def cmd_report(args: argparse.Namespace) -> int:
    from routerbench.cluster import store
    from routerbench.sweeps.report import render

    so = store.parse_storage_options(args.storage_option)
    _, curves, manifest = _read_run(args.run, so)
    print(render(curves, args.format, synthetic=bool(manifest.get("synthetic"))))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from routerbench.cluster import store
    from routerbench.sweeps.plot import plot_family

    so = store.parse_storage_options(args.storage_option)
    points, curves, manifest = _read_run(args.run, so)
    out = args.out or store.join(args.run, "plots")
    tag = " (synthetic data)" if manifest.get("synthetic") else ""
    for fam in sorted(set(curves["family"])):
        for split in sorted(set(curves["split"])):
            png = plot_family(
                points[points["split"] == split],
                curves[curves["split"] == split],
                fam,
                title=f"{fam}, {split} split{tag}",
            )
            name = f"{_safe(fam)}-{split}.png"
            store.write_bytes(store.join(out, name), png, so)
            print(store.join(out, name))
    return 0


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
    from routerbench.cluster import store
    from routerbench.cluster.leaderboard import add_cli as add_leaderboard_cli

    p = argparse.ArgumentParser(
        prog="routerbench",
        description="Evaluate LLM routers by replaying precomputed outcomes (RouterBench).",
    )
    p.add_argument("--version", action="version", version=f"routerbench {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "run",
        help="run a sweep spec (default: the quick job on the embedded data set)",
        description="Evaluate a spec's routers per family on its splits; prints AIQ (with its "
        "interval), max quality and its cost; writes points.parquet, curves.parquet, "
        "plots/<family>.png, spec.toml and manifest.json under OUT/<run id>/. Without SPEC, "
        "runs sweeps/quick.toml: single models, oracle, zero, random and KNN routers.",
    )
    r.add_argument("spec", nargs="?", metavar="SPEC", help="spec file (TOML); see 'validate'")
    r.add_argument("--data", metavar="URL", help="outcome data, replacing the spec's")
    r.add_argument("--out", metavar="URL", help="results folder or URL, replacing the spec's")
    r.add_argument(
        "--run-id",
        help="name of the run folder (default: a hash of the spec, data and code versions; "
        "running again resumes it)",
    )
    r.add_argument("--fail-fast", action="store_true", help="stop at the first failing cell")
    r.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="where cells are evaluated: this process (default) or Ray actors holding prompt "
        "shards; both give identical numbers",
    )
    r.add_argument(
        "--address", help="Ray cluster to join (auto or HOST:PORT); default: start a local Ray"
    )
    r.add_argument("--shards", type=int, help="prompt shards (Ray actors); default: one per CPU")
    r.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    store.add_storage_option(r)
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser(
        "validate",
        help="check a spec and print its plan (cells, work) without computing anything",
    )
    v.add_argument("spec", nargs="?", metavar="SPEC", help="spec file (default: the quick job)")
    v.add_argument("--data", metavar="URL", help="plan against this data instead of the spec's")
    v.add_argument("--fields", action="store_true", help="list every spec key and exit")
    v.set_defaults(func=cmd_validate)

    rp = sub.add_parser("report", help="print a run's results with intervals")
    rp.add_argument("run", metavar="RUN_URL", help="a run folder written by 'routerbench run'")
    rp.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    store.add_storage_option(rp)
    rp.set_defaults(func=cmd_report)
    pl = sub.add_parser("plot", help="cost-quality plots of a run, per family and split")
    pl.add_argument("run", metavar="RUN_URL")
    pl.add_argument("--out", metavar="URL", help="folder for the PNGs (default: RUN_URL/plots)")
    store.add_storage_option(pl)
    pl.set_defaults(func=cmd_plot)

    add_leaderboard_cli(sub)

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
    except (DataError, RouterError, SpecError, UsageError) as e:
        print(f"routerbench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print("routerbench: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
