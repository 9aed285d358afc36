"""The ``routerbench`` command: a thin layer over the Python API.

User mistakes (bad files, columns, names, values, output locations) print one line
``routerbench: error: ...`` and exit with code 2, with no traceback and nothing half-written.
Faults that outlast the retries (a store still unreachable, Ray actors dying past the limit) and
runs with failed cells exit with code 1, also with one line; success is 0. A command group named
without a command (``routerbench``, ``routerbench data``, ...) prints its help to stderr, exit 2.

``run`` and ``validate`` are here (their arguments in :mod:`cli_args`); ``report``, ``plot`` and
``runs`` in :mod:`cli_results`; ``routers`` in :mod:`cli_routers`; ``data ...`` in :mod:`cli_data`.
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

from routerbench.cluster.cli_results import _safe, _write_plots
from routerbench.engine.errors import (
    ClusterError,
    DataError,
    RouterError,
    RunFailed,
    SpecError,
    Unreachable,
    UsageError,
)

__all__ = ["UsageError", "_safe", "_write_plots", "build_parser", "main"]


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


def _plan(args: argparse.Namespace, spec: Any, so: dict[str, Any]) -> Any:
    """Check what can be checked without data (search space, memory), load the data (the spec's
    or --data) and plan the spec on it, which checks the routers against the data's facts."""
    from routerbench.sweeps.execute import check_memory, load_data, plan

    url = _data_url(args)
    if spec.search["kind"] == "optuna":
        from routerbench.sweeps.search import check_space

        check_space(spec)  # before the data is read; plan() checks it against the data too
    check_memory(spec, url, force=args.force)
    features = getattr(args, "features", None)
    if features is not None and not features.strip():
        raise UsageError("--features is empty: expected a file or URL (or leave it out)")
    return plan(spec, load_data(spec, url, so, features=features))


def _check_run_id(run_id: str | None) -> None:
    """A run id names one folder: letters, digits and ``._-``, not ``.`` or ``..``."""
    if run_id is None:
        return
    if (
        run_id in (".", "..")
        or not run_id
        or any(not (c.isascii() and (c.isalnum() or c in "._-")) for c in run_id)
    ):
        raise UsageError(
            f"--run-id {run_id!r}: expected a folder name of letters, digits, '.', '_' and '-'"
        )


def _data_url(args: argparse.Namespace) -> str | None:
    if args.data is not None and not args.data.strip():
        raise UsageError("--data is empty: expected a file or URL (leave it out for the spec's)")
    return args.data  # type: ignore[no-any-return]


def cmd_validate(args: argparse.Namespace) -> int:
    from routerbench.cluster import store
    from routerbench.sweeps import spec as specmod

    if args.fields:
        print(specmod.describe_fields())
        return 0
    spec = _spec(args.spec)
    p = _plan(args, spec, store.parse_storage_options(args.storage_option))
    data = p.data
    print(f"spec {spec.source}: valid (hash {spec.hash})")
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
    from routerbench.cluster import runs, store
    from routerbench.cluster.resume import default_run_id, is_complete, run_lock
    from routerbench.sweeps.report import leaderboard_table

    t0 = time.perf_counter()
    spec = _spec(args.spec)
    so = store.parse_storage_options(args.storage_option)
    base = store.output_url(args.out if args.out is not None else spec.output["url"])
    store.check_writable(base, so)  # before any computation: nothing is computed in vain
    _check_run_id(args.run_id)
    p = _plan(args, spec, so)
    data = p.data
    _log(args, f"data: {data!r}")
    _log(args, f"plan: {len(p.cells)} cells x {len(p.families)} families")
    out = store.join(base, args.run_id or default_run_id(spec.hash, data.fingerprint()))
    with run_lock(out):  # one process per run folder; completeness is decided under the lock
        if is_complete(out, so):
            done = runs.read_run(out, so)  # checked against its manifest, or refused
            _same_inputs(done.manifest, spec, data, out)
            if not done.manifest["failed_rows"]:  # nothing to evaluate or write
                print(leaderboard_table(done.curves, synthetic=bool(done.manifest["synthetic"])))
                _log(args, f"results: {out} (already complete: nothing evaluated)")
                return 0
            _log(args, f"{out}: complete but with failed cells: evaluating them again")
        from routerbench.engine.parallel import workers

        executor = _executor(args)
        phases = {"load": time.perf_counter() - t0}
        with workers(args.workers):
            res, trials, cell_hashes = _evaluate(args, spec, p, out, so, executor)
        phases["evaluate"] = time.perf_counter() - t0 - phases["load"]
        manifest = _write_run(args, spec, p, out, so, res, trials, cell_hashes, t0, phases)
    print(leaderboard_table(res.curves, synthetic=data.synthetic))
    times = ", ".join(f"{k} {v:.1f} s" for k, v in manifest["phases"].items())
    _log(args, f"results: {out}  ({manifest['seconds']:.1f} s: {times})")
    failed = manifest["failed_rows"]
    if failed or res.points.empty:
        first = res.points.loc[res.points["status"] == "failed", "error"].head(1).tolist()
        why = f"; first error: {first[0]}" if first else ""
        print(
            f"routerbench: {failed} of {len(res.points)} result rows failed (see the 'error' "
            f"column of {store.join(out, 'points.parquet')}){why}"[:400],
            file=sys.stderr,
        )
        return 1
    return 0


def _same_inputs(manifest: dict[str, Any], spec: Any, data: Any, out: str) -> None:
    """A complete run found under ``out`` (an explicit --run-id) must come from these inputs."""
    from routerbench.cluster.resume import code_versions

    now = {
        "spec_hash": spec.hash,
        "data_fingerprint": data.fingerprint(),
        "code_versions": code_versions(),
    }
    for key, value in now.items():
        if manifest.get(key) != value:
            raise DataError(
                f"{out}: a complete run made from other inputs ({key} differs); choose another "
                "--run-id or --out, or delete the folder"
            )


def _evaluate(
    args: argparse.Namespace, spec: Any, p: Any, out: str, so: Any, executor: Any
) -> tuple[Any, Any, dict[str, str]]:
    """Evaluate a plan into the run folder ``out``: a grid (each finished cell stored, stored
    cells reused) or an Optuna search (its journal beside the run). Returns the results, the
    trials table (None for a grid) and the sha256 of each stored cell object."""
    from routerbench.cluster import store
    from routerbench.cluster.resume import CellStore, inputs_key
    from routerbench.engine.progress import progress
    from routerbench.sweeps.execute import run_grid

    if spec.search["kind"] == "optuna":
        from routerbench.sweeps.search import run_optuna

        # The study's journal lives beside the run (any fsspec URL): an interrupted search resumes.
        journal = store.join(out, "study.journal")
        res, trials = run_optuna(
            spec, p, executor=executor, quiet=args.quiet, journal=journal, storage_options=so
        )
        return res, trials, {}
    cells = CellStore(out, so, inputs=inputs_key(spec.hash, p.data.fingerprint()))
    stored = set(cells.stored())
    reused = sum(c.cell_id in stored for c in p.cells)
    if reused:
        _log(args, f"reused {reused} stored cells")
    with progress(len(p.cells), "cell", initial=reused, quiet=args.quiet) as bar:

        def tick(r: Any) -> None:
            cells.save(r)
            bar.update(1)

        res = run_grid(
            spec, p, executor=executor, fail_fast=args.fail_fast, skip=cells.load, on_result=tick
        )
    return res, None, dict(sorted(cells.hashes.items()))


def _write_run(
    args: argparse.Namespace,
    spec: Any,
    p: Any,
    out: str,
    so: Any,
    res: Any,
    trials: Any,
    cell_hashes: dict[str, str],
    t0: float,
    phases: dict[str, float],
) -> dict[str, Any]:
    """Write a run's tables, spec and plots, then its manifest (last: it marks the run
    complete); returns the manifest, with the seconds of each phase (load and plan, evaluate
    and summarise, write; ``fits``: the cells' fitting seconds added up)."""
    from routerbench.cluster import runs, store
    from routerbench.cluster.resume import code_versions

    data = p.data
    manifest: dict[str, Any] = {
        "run_id": out.rstrip("/").rsplit("/", 1)[-1],
        "spec": spec.source,
        "spec_hash": spec.hash,
        "data_source": args.data or spec.data["url"] or data.source,
        "data_fingerprint": data.fingerprint(),
        "features_source": args.features or spec.data["features"] or "",
        "features": data.features_source,
        "synthetic": data.synthetic,
        "confidence": spec.metrics["confidence"],  # of every interval in the tables
        "routerbench_version": _version(),
        "code_versions": code_versions(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    tables = {"points": res.points, "curves": res.curves}
    if trials is not None:
        tables["trials"] = trials
    manifest["tables"] = runs.write_tables(out, tables, manifest, so)
    store.write_bytes(store.join(out, "spec.toml"), spec.text.encode(), so)
    if not args.no_plots:
        _write_plots(store.join(out, "plots"), res.points, res.curves, data.synthetic, so)
    manifest["seconds"] = round(time.perf_counter() - t0, 3)
    phases = {**phases, "write": manifest["seconds"] - sum(phases.values())}
    phases["fits"] = float(res.points.drop_duplicates(["cell_id", "family"])["seconds"].sum())
    manifest["phases"] = {k: round(v, 3) for k, v in phases.items()}
    manifest["failed_rows"] = int((res.points["status"] == "failed").sum())
    manifest["cells"] = cell_hashes
    store.write_json(store.join(out, runs.MANIFEST), manifest, so)
    return manifest


def _executor(args: argparse.Namespace) -> Any:
    """The in-process executor, or Ray's (local Ray on this machine's cores without --address)."""
    from routerbench.sweeps.execute import local_executor

    if args.executor == "local":
        if args.address or args.shards:
            raise UsageError("--address and --shards need --executor ray")
        return local_executor
    from routerbench.cluster.ray_executor import make_executor

    return make_executor(address=args.address, shards=args.shards, quiet=args.quiet)


# ----------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from routerbench.cluster import cli_args, cli_data, cli_results, cli_routers
    from routerbench.cluster.nightly import add_cli as add_leaderboard_cli

    p = argparse.ArgumentParser(
        prog="routerbench",
        description="Evaluate LLM routers by replaying precomputed outcomes (RouterBench).",
    )
    p.add_argument("--version", action="version", version=f"routerbench {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", help="what to do")
    cli_args.add_run(sub).set_defaults(func=cmd_run)
    cli_args.add_validate(sub).set_defaults(func=cmd_validate)
    cli_results.add_parsers(sub)
    cli_routers.add_parser(sub)
    add_leaderboard_cli(sub)
    cli_data.add_parsers(sub)
    return p


def _bare_group(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """The innermost command group named without one of its commands (``routerbench``,
    ``routerbench data``, ...), or None when a command was named."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            return parser if chosen is None else _bare_group(action.choices[chosen], args)
    return None


def _one_line(e: BaseException) -> str:
    """An error as one line (newlines folded, at most 2000 characters)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 2000 else text[:1997] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    group = _bare_group(parser, args)
    if group is not None:  # one rule for every group: its help on stderr, exit code 2
        group.print_help(sys.stderr)
        return 2
    try:
        rc: Any = args.func(args)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stdout = open(os.devnull, "w")
        return 0
    except Unreachable as e:  # a fault that outlasted the retries
        print(f"routerbench: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except (DataError, RouterError, SpecError, UsageError) as e:
        print(f"routerbench: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:
        from routerbench.cluster import store

        if store.is_transient(e):  # a refused or lost connection past the retries: a fault
            print(f"routerbench: error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
            return 1
        # storage, permission and filesystem errors are the user's to fix
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"routerbench: error: {where}{_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        from routerbench.cluster import store

        if isinstance(e, ClusterError | RunFailed) or store.is_transient(e):  # faults
            print(f"routerbench: error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        print("routerbench: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
