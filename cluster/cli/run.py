"""``routerbench run`` and ``routerbench validate``: thin calls of :mod:`routerbench.sweeps.run`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from routerbench.cluster.cli.options import STORAGE_OPTION, Arg, Verb, parse_storage_options
from routerbench.engine.errors import UsageError
from routerbench.engine.parallel import all_cores


def say(args: argparse.Namespace) -> Callable[[str], None] | None:
    """Where a command's progress lines go: stderr, or nowhere (None) with ``--quiet``."""
    if args.quiet:
        return None
    return lambda msg: print(msg, file=sys.stderr, flush=True)


def cmd_validate(args: argparse.Namespace) -> int:
    from routerbench.sweeps import spec as specmod
    from routerbench.sweeps.run import load_plan, load_spec

    if args.fields:
        print(specmod.describe_fields())
        return 0
    spec = load_spec(args.spec)
    so = parse_storage_options(args.storage_option)
    p = load_plan(spec, args.data, args.features, so, force=args.force)
    print(f"spec {spec.source}: valid (hash {spec.hash})")
    print(f"data: {p.data!r}")
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
    from routerbench.sweeps.report import leaderboard_table
    from routerbench.sweeps.run import load_spec, run

    spec, progress = load_spec(args.spec), say(args)
    outcome = run(
        spec,
        out=args.out,
        data=args.data,
        features=args.features,
        run_id=args.run_id,
        executor=executor(args),
        workers=args.workers,
        fail_fast=args.fail_fast,
        force=args.force,
        plots=not args.no_plots,
        storage_options=parse_storage_options(args.storage_option),
        progress=progress,
    )
    print(leaderboard_table(outcome.results.curves, synthetic=bool(outcome.manifest["synthetic"])))
    (progress or (lambda msg: None))(outcome.summary())
    failure = outcome.failure()
    if failure:
        print(f"routerbench: {failure}"[:400], file=sys.stderr)
        return 1
    return 0


def executor(args: argparse.Namespace) -> Any:
    """The in-process executor, or Ray's (local Ray on this machine's cores without --address;
    ``--shards`` where the command has it)."""
    from routerbench.sweeps.execute import local_executor

    if args.executor == "local":
        if args.address or getattr(args, "shards", None):
            raise UsageError("--address and --shards need --executor ray")
        return local_executor
    from routerbench.cluster.ray_executor import make_executor

    return make_executor(
        address=args.address, shards=getattr(args, "shards", None), quiet=args.quiet
    )


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return n


# ------------------------------------------------------------------------------------- verbs
EXECUTOR = Arg(  # `run` and `leaderboard nightly` (see executor())
    "--executor",
    choices=["local", "ray"],
    default="local",
    help="where cells are evaluated: this process (default) or Ray actors holding prompt "
    "shards; both give identical numbers",
)
ADDRESS = Arg(
    "--address", help="Ray cluster to join (auto or HOST:PORT); default: start a local Ray"
)
RUN_ARGS = [
    Arg("spec", nargs="?", metavar="SPEC", help="spec file (TOML); see 'validate'"),
    Arg("--data", metavar="URL", help="outcome data, replacing the spec's"),
    Arg(
        "--features",
        metavar="URL",
        help="prompt vectors replacing the spec's data.features: the original's embedding cache "
        "(.pkl, read without running code) or Parquet/CSV keyed by prompt_id or prompt",
    ),
    Arg("--out", metavar="URL", help="results folder or URL, replacing the spec's"),
    Arg(
        "--run-id",
        help="name of the run folder (default: a hash of the spec, data and code versions; "
        "running again resumes it)",
    ),
    Arg("--fail-fast", action="store_true", help="stop at the first failing cell"),
    EXECUTOR,
    ADDRESS,
    Arg("--shards", type=int, help="prompt shards (Ray actors); default: one per CPU"),
    Arg(
        "--workers",
        type=_positive,
        default=all_cores(),
        help="processes the in-process executor evaluates (cells, family) units on, this one "
        f"included; default: every core of this machine ({all_cores()}); 1: one process; the "
        "numbers do not depend on it",
    ),
    Arg("--no-plots", action="store_true", help="skip the PNG plots"),
    Arg(
        "--force",
        action="store_true",
        help="run a plan larger than this machine's memory (for a cluster that has the room)",
    ),
    STORAGE_OPTION,
    Arg(
        "--quiet",
        action="store_true",
        help="no progress output (a bar on a terminal, else a line every 10 s)",
    ),
]

VALIDATE_ARGS = [
    Arg("spec", nargs="?", metavar="SPEC", help="spec file (default: the quick job)"),
    Arg("--data", metavar="URL", help="plan against this data instead of the spec's"),
    Arg("--features", metavar="URL", help="prompt vectors, as for 'run'"),
    Arg("--fields", action="store_true", help="list every spec key and exit"),
    Arg("--force", action="store_true", help="accept a plan larger than this machine"),
    STORAGE_OPTION,
]


def verbs() -> list[Verb]:
    """``run`` and ``validate``."""
    return [
        Verb(
            "run",
            "run a sweep spec (default: the quick job on the embedded data set)",
            "Evaluate a spec's routers per family on its splits; prints AIQ (with its "
            "interval), max quality and its cost; writes points.parquet, curves.parquet, "
            "plots/<family>-<split>.png, spec.toml and manifest.json under OUT/<run id>/. "
            "Without SPEC, runs sweeps/quick.toml: single models, oracle, zero, random, KNN "
            "and cascade routers. Every run includes the oracle frontier and the zero router as "
            "references. Running again resumes an interrupted run, reusing its stored cells.",
            cmd_run,
            RUN_ARGS,
        ),
        Verb(
            "validate",
            "check a spec and print its plan (cells, work) without computing anything",
            "Parse a spec, load its data and check every router against it; print the "
            "families, splits, cells and work a run would do. Nothing is evaluated or written.",
            cmd_validate,
            VALIDATE_ARGS,
        ),
    ]
