"""The arguments of ``routerbench run`` and ``routerbench validate``."""

from __future__ import annotations

import argparse
from typing import Any

from routerbench.cluster import store
from routerbench.engine.parallel import all_cores


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return n


def add_run(sub: Any) -> argparse.ArgumentParser:
    """Register ``run`` (its ``func`` is set by the caller)."""
    r = sub.add_parser(
        "run",
        help="run a sweep spec (default: the quick job on the embedded data set)",
        description="Evaluate a spec's routers per family on its splits; prints AIQ (with its "
        "interval), max quality and its cost; writes points.parquet, curves.parquet, "
        "plots/<family>-<split>.png, spec.toml and manifest.json under OUT/<run id>/. Without "
        "SPEC, runs sweeps/quick.toml: single models, oracle, zero, random and KNN routers. "
        "Running again resumes an interrupted run, reusing its stored cells.",
    )
    r.add_argument("spec", nargs="?", metavar="SPEC", help="spec file (TOML); see 'validate'")
    r.add_argument("--data", metavar="URL", help="outcome data, replacing the spec's")
    r.add_argument(
        "--features",
        metavar="URL",
        help="prompt vectors replacing the spec's data.features: the original's embedding cache "
        "(.pkl, read without running code) or Parquet/CSV keyed by prompt_id or prompt",
    )
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
    r.add_argument(
        "--workers",
        type=_positive,
        default=all_cores(),
        help="processes for independent fits (one regressor per model); default: every core "
        f"of this machine ({all_cores()}); the numbers do not depend on it",
    )
    r.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    r.add_argument(
        "--force",
        action="store_true",
        help="run a plan larger than this machine's memory (for a cluster that has the room)",
    )
    store.add_storage_option(r)
    r.add_argument(
        "--quiet",
        action="store_true",
        help="no progress output (a bar on a terminal, else a line every 10 s)",
    )
    return r  # type: ignore[no-any-return]


def add_validate(sub: Any) -> argparse.ArgumentParser:
    """Register ``validate`` (its ``func`` is set by the caller)."""
    v = sub.add_parser(
        "validate",
        help="check a spec and print its plan (cells, work) without computing anything",
        description="Parse a spec, load its data and check every router against it; print "
        "the families, splits, cells and work a run would do. Nothing is evaluated or written.",
    )
    v.add_argument("spec", nargs="?", metavar="SPEC", help="spec file (default: the quick job)")
    v.add_argument("--data", metavar="URL", help="plan against this data instead of the spec's")
    v.add_argument("--features", metavar="URL", help="prompt vectors, as for 'run'")
    v.add_argument("--fields", action="store_true", help="list every spec key and exit")
    v.add_argument("--force", action="store_true", help="accept a plan larger than this machine")
    store.add_storage_option(v)
    return v  # type: ignore[no-any-return]
