"""``routerbench leaderboard refresh`` and ``routerbench leaderboard nightly``: thin calls of
:mod:`routerbench.cluster.leaderboard`."""

from __future__ import annotations

import argparse

from routerbench.cluster.cli.options import STORAGE_OPTION, Arg, Verb, parse_storage_options
from routerbench.cluster.cli.run import ADDRESS, EXECUTOR, executor, say
from routerbench.cluster.leaderboard import KEEP, collect, page_url
from routerbench.engine import storage
from routerbench.engine.errors import UsageError
from routerbench.engine.parallel import all_cores


def _keep(args: argparse.Namespace) -> int:
    if args.keep < 1:
        raise UsageError(f"--keep must be >= 1 (got {args.keep})")
    return int(args.keep)


def cmd_refresh(args: argparse.Namespace) -> int:
    from routerbench.cluster.leaderboard.publish import publish

    so = parse_storage_options(args.storage_option)
    keep = _keep(args)
    out = storage.output_url(args.out)
    storage.check_writable(out, so)
    with storage.user_errors(f"{args.runs} -> {out}"):
        collected = collect(args.runs, so)
        folder = publish(collected, out, so, keep=keep)
    skipped = collected.skipped
    print(f"read {len(collected.runs)} run(s), skipped {len(skipped)}" + ":" * bool(skipped))
    for why in skipped:
        print(f"  skipped {why}")
    print(f"page: {page_url(out)} (this version: {page_url(folder)})")
    print(folder)
    return 0


def cmd_nightly(args: argparse.Namespace) -> int:
    from routerbench.cluster.leaderboard.nightly import nightly

    so = parse_storage_options(args.storage_option)
    url = storage.output_url(args.store)
    storage.check_writable(url, so)
    run_on, keep = executor(args), _keep(args)
    with storage.user_errors(url):
        res = nightly(
            args.specs,
            url,
            storage_options=so,
            executor=run_on,
            workers=all_cores(),
            keep=keep,
            progress=say(args),
        )
    print(f"ran {len(res.ran)}, unchanged {len(res.skipped)}; published {res.published}")
    print(f"page: {page_url(storage.join(url, 'leaderboard'))}")
    return 0


# ------------------------------------------------------------------------------------- verbs
KEEP_ARG = Arg("--keep", type=int, default=KEEP, help=f"versions kept (default {KEEP})")


def verbs() -> list[Verb]:
    """``leaderboard`` and its verbs."""
    refresh = Verb(
        "refresh",
        "collect completed runs under --runs; publish to --out",
        "Read every completed run (manifest.json present) under RUNS, rank them and publish a "
        "new version of the leaderboard under OUT (OUT/versions/<id>/, then OUT/LATEST and "
        "OUT/index.html). Damaged runs are left out and named. Prints the runs read and "
        "skipped, the page's URL and, on the last line, the version folder.",
        cmd_refresh,
        [
            Arg("--runs", required=True, metavar="URL", help="folder or URL holding run folders"),
            Arg("--out", required=True, metavar="URL", help="folder or URL to publish into"),
            KEEP_ARG,
            STORAGE_OPTION,
        ],
    )
    nightly = Verb(
        "nightly",
        "run the specs whose inputs changed, then refresh the leaderboard",
        "For each spec: a run id from its spec hash, data fingerprint and code versions; run it "
        "into STORE/runs/<id> unless complete (an incomplete one resumes); then publish "
        "STORE/leaderboard from these runs. Unchanged inputs: nothing is evaluated.",
        cmd_nightly,
        [
            Arg("--specs", required=True, nargs="+", metavar="SPEC", help="spec files (TOML)"),
            Arg(
                "--store",
                required=True,
                metavar="URL",
                help="folder or URL for runs/ and leaderboard/",
            ),
            EXECUTOR,
            ADDRESS,
            Arg("--quiet", action="store_true", help="no progress output"),
            KEEP_ARG,
            STORAGE_OPTION,
        ],
    )
    return [
        Verb(
            "leaderboard",
            "publish the leaderboard of completed runs; the nightly job",
            "Rank routers per family and overall by AIQ (with intervals and rank bands), gap "
            "closed, max quality, cost at max quality and cost to match the best single model, "
            "over completed runs, with the references (single models, oracle, zero router, "
            "oracle frontier) apart; publish leaderboard.{parquet,csv,md,json} and a "
            "self-contained index.html atomically.",
            verbs=[refresh, nightly],
        )
    ]
