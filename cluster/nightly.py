"""The nightly job and the ``routerbench leaderboard`` verbs.

``nightly(specs, store_url)`` runs each spec whose inputs changed (new spec hash, data
fingerprint or code versions give a new deterministic run id, see
:func:`routerbench.cluster.resume.default_run_id`), skips those already complete, then refreshes
``<store_url>/leaderboard`` from ``<store_url>/runs``. On unchanged inputs it evaluates nothing and
the published files are byte-identical to the previous ones apart from the generation time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from routerbench.cluster import runs, store
from routerbench.cluster.leaderboard import KEEP, collect, page_url, publish, refresh
from routerbench.cluster.resume import default_run_id, is_complete
from routerbench.engine.errors import RunFailed, UsageError


# ----------------------------------------------------------------------------------- nightly
@dataclass(frozen=True)
class Nightly:
    """What a nightly job did: runs evaluated, runs already complete, the version published."""

    ran: list[str]
    skipped: list[str]
    published: str


def nightly(
    specs: Sequence[str],
    store_url: str,
    *,
    storage_options: dict[str, Any] | None = None,
    run_args: Sequence[str] = (),
    keep: int = KEEP,
    quiet: bool = False,
) -> Nightly:
    """Run each spec whose inputs changed into ``<store_url>/runs/<run id>`` (resuming a run left
    incomplete), skip the complete ones, then refresh ``<store_url>/leaderboard`` from the runs of
    these specs. ``run_args`` go to ``routerbench run`` (e.g. ``["--executor", "ray"]``)."""
    from routerbench.cluster.cli import build_parser
    from routerbench.sweeps.execute import load_data
    from routerbench.sweeps.spec import load

    runs_url = store.join(store_url, "runs")
    so_args = [f"--storage-option={k}={json.dumps(v)}" for k, v in (storage_options or {}).items()]
    ran, skipped = [], []
    for path in specs:
        spec = load(path)
        run_id = default_run_id(spec.hash, load_data(spec, None, storage_options).fingerprint())
        url = store.join(runs_url, run_id)
        if (
            is_complete(url, storage_options)
            and not (runs.read_run(url, storage_options).manifest["failed_rows"])
        ):
            skipped.append(run_id)
            _say(quiet, f"{path}: unchanged, run {run_id} is complete")
            continue
        _say(quiet, f"{path}: running {run_id}")
        argv = ["run", path, "--out", runs_url, "--run-id", run_id, *so_args, *run_args]
        args = build_parser().parse_args([*argv, "--quiet"] if quiet else argv)
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            rc = args.func(args)  # prints the run's table unless quiet
        if rc:  # the published leaderboard stays as it was; the next night resumes the run
            raise RunFailed(
                f"{path}: run {run_id} finished with exit code {rc} (failed cells); the "
                "leaderboard was not refreshed"
            )
        ran.append(run_id)
    published = refresh(
        runs_url,
        store.join(store_url, "leaderboard"),
        storage_options,
        include=ran + skipped,
        keep=keep,
    )
    _say(quiet, f"published {published}")
    return Nightly(ran, skipped, published)


def _say(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------- CLI
def add_cli(subparsers: Any) -> None:
    """Register ``routerbench leaderboard refresh`` and ``routerbench leaderboard nightly``."""
    lb = subparsers.add_parser(
        "leaderboard",
        help="publish the leaderboard of completed runs; the nightly job",
        description="Rank routers per family and overall by AIQ (with intervals and rank bands), "
        "gap closed, max quality, cost at max quality and cost to match the best single model, "
        "over completed runs, with the references (single models, oracle, zero router, oracle "
        "frontier) apart; publish leaderboard.{parquet,csv,md,json} and a self-contained "
        "index.html atomically.",
    )

    sub = lb.add_subparsers(
        dest="leaderboard_command", metavar="LEADERBOARD_COMMAND", help="what to do"
    )

    r = sub.add_parser(
        "refresh",
        help="collect completed runs under --runs; publish to --out",
        description="Read every completed run (manifest.json present) under RUNS, rank them and "
        "publish a new version of the leaderboard under OUT (OUT/versions/<id>/, then OUT/LATEST "
        "and OUT/index.html). Damaged runs are left out and named. Prints the runs read and "
        "skipped, the page's URL and, on the last line, the version folder.",
    )
    r.add_argument("--runs", required=True, metavar="URL", help="folder or URL holding run folders")
    r.add_argument("--out", required=True, metavar="URL", help="folder or URL to publish into")
    _common(r)
    r.set_defaults(func=_cmd_refresh)

    n = sub.add_parser(
        "nightly",
        help="run the specs whose inputs changed, then refresh the leaderboard",
        description="For each spec: a run id from its spec hash, data fingerprint and code "
        "versions; run it into STORE/runs/<id> unless complete (an incomplete one resumes); then "
        "publish STORE/leaderboard from these runs. Unchanged inputs: nothing is evaluated.",
    )
    n.add_argument("--specs", required=True, nargs="+", metavar="SPEC", help="spec files (TOML)")
    n.add_argument(
        "--store", required=True, metavar="URL", help="folder or URL for runs/ and leaderboard/"
    )
    n.add_argument(
        "--executor", choices=["local", "ray"], default="local", help="where cells are evaluated"
    )
    n.add_argument("--address", help="Ray cluster to join (with --executor ray)")
    n.add_argument("--quiet", action="store_true", help="no progress output")
    _common(n)
    n.set_defaults(func=_cmd_nightly)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep", type=int, default=KEEP, help=f"versions kept (default {KEEP})")
    store.add_storage_option(p)


def _keep(args: argparse.Namespace) -> int:

    if args.keep < 1:
        raise UsageError(f"--keep must be >= 1 (got {args.keep})")
    return int(args.keep)


def _cmd_refresh(args: argparse.Namespace) -> int:
    so = store.parse_storage_options(args.storage_option)
    keep = _keep(args)
    args.out = store.output_url(args.out)
    store.check_writable(args.out, so)
    with store.user_errors(f"{args.runs} -> {args.out}"):
        collected = collect(args.runs, so)
        folder = publish(collected, args.out, so, keep=keep)
    skipped = collected.skipped
    print(f"read {len(collected.runs)} run(s), skipped {len(skipped)}" + ":" * bool(skipped))
    for why in skipped:
        print(f"  skipped {why}")
    print(f"page: {page_url(args.out)} (this version: {page_url(folder)})")
    print(folder)
    return 0


def _cmd_nightly(args: argparse.Namespace) -> int:
    so = store.parse_storage_options(args.storage_option)
    args.store = store.output_url(args.store)
    store.check_writable(args.store, so)
    run_args = ["--executor", args.executor] + (["--address", args.address] if args.address else [])
    keep = _keep(args)
    with store.user_errors(args.store):
        res = nightly(
            args.specs,
            args.store,
            storage_options=so,
            run_args=run_args,
            keep=keep,
            quiet=args.quiet,
        )
    print(f"ran {len(res.ran)}, unchanged {len(res.skipped)}; published {res.published}")
    print(f"page: {page_url(store.join(args.store, 'leaderboard'))}")
    return 0
