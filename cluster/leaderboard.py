"""The leaderboard: completed runs collected, routers ranked, published atomically; the nightly job.

``refresh(runs_url, out_url)`` reads every completed run under ``runs_url`` (a run is complete when
its ``manifest.json`` exists) and ranks router configurations per family and overall by AIQ, with
intervals, max quality, cost at max quality and the cost to match the best single model. Routers
are compared only on the same data (fingerprint) and split: each (data, split) is one *board*.
When several runs hold the same router configuration on the same board and family, the newest
run's result is used.

Publishing is atomic for readers. Layout under ``out_url``::

    versions/<version>/leaderboard.{parquet,csv,md,json}, index.html   (each written once)
    LATEST        the version id of the newest complete version (one small object, written after)
    index.html    a copy of the newest page (one self-contained object)

A reader reads ``LATEST`` (:func:`read_latest`) and then that version's files: every file of a
version is written before ``LATEST`` names it, and a version is never rewritten, so a reader sees
the old leaderboard or the new one, never a mix. On S3, where there is no atomic rename, this
needs only single-object PUTs (atomic) and S3's read-after-write consistency. Two refreshes at once
write two version folders (ids are unique) and each pointer write is whole: the last writer wins.
Old versions beyond ``keep`` are deleted, never the one ``LATEST`` names.

``nightly(specs, store_url)`` runs each spec whose inputs changed (new spec hash, data
fingerprint or code versions give a new deterministic run id, see
:func:`routerbench.cluster.resume.default_run_id`), skips those already complete, then refreshes
``<store_url>/leaderboard`` from ``<store_url>/runs``. On unchanged inputs it evaluates nothing and
the published files are byte-identical to the previous ones apart from the generation time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import json
import math
import sys
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from routerbench.cluster import runs, store
from routerbench.cluster.resume import code_versions, default_run_id, is_complete
from routerbench.engine.data import DataError
from routerbench.sweeps.report import SMALL_NOTE

KEEP = 14  # published versions kept (a reader of an older one may find it gone)
PRUNE_GRACE = dt.timedelta(minutes=10)  # a version younger than this is never pruned
PLOT_TOP = 8  # routers drawn per plot besides the single models: the best by AIQ
FILES = ("leaderboard.parquet", "leaderboard.csv", "leaderboard.md", "leaderboard.json")

# The leaderboard table: every column, in order, with what it holds (also the page's tooltips).
COLUMNS: dict[str, str] = {
    "data_fingerprint": "sha256 of the outcome data; routers are ranked only against others "
    "evaluated on the same data and split",
    "split": "train/test split the routers were evaluated on",
    "scope": "a family, or 'overall': the mean over the board's families (routers evaluated on "
    "every family only)",
    "rank": "1 = highest AIQ within (data, split, scope); ties broken by max quality",
    "router": "router and its hyperparameters that differ from the defaults",
    "router_name": "registered router name",
    "params": "every hyperparameter, as canonical JSON",
    "aiq": "AIQ: mean of the router's non-decreasing convex hull over [c_min, c_max]",
    "aiq_lo": "lower end of AIQ's interval (bootstrap over prompts; overall: the families' "
    "intervals combined, families being disjoint prompt sets)",
    "aiq_hi": "upper end of AIQ's interval",
    "c_min": "start of the AIQ cost range (mean USD per query)",
    "c_max": "end of the AIQ cost range (mean USD per query)",
    "max_quality": "highest mean quality over the router's operating points",
    "max_quality_lo": "lower end of max quality's interval",
    "max_quality_hi": "upper end of max quality's interval",
    "cost_at_max_quality": "mean USD per query at the first operating point reaching max quality",
    "cost_to_match_best_single": "least mean USD per query on the router's hull that reaches the "
    "best single model's quality; empty if the hull never does",
    "best_single": "the family's best single model (highest quality, then cheapest)",
    "families": "number of families behind the row",
    "run_id": "run(s) the row comes from",
    "spec_hash": "hash of the spec(s) of those runs",
    "routerbench_version": "routerbench version(s) that computed the row",
    "synthetic": "true when the data is the synthetic stand-in, not RouterBench's",
    "n_test": "test prompts behind the row (overall: summed over its families)",
    "small_sample": "true when a family behind the row has fewer than 30 test prompts: its "
    "intervals are unreliable (none below 2)",
}
_BOARD = ["data_fingerprint", "split"]
_CONFIG = ["router", "params"]
_POINT_KEY = ["run_id", "family", "split", *_CONFIG]  # the points behind one curve row


# -------------------------------------------------------------------------------- collecting
@dataclass(frozen=True)
class Collected:
    """The newest result of every (board, family, router configuration) over completed runs."""

    curves: pd.DataFrame  # curves rows, with each run's provenance columns
    points: pd.DataFrame  # the points rows behind those curves
    runs: list[dict[str, Any]]  # the runs' manifests, by run id
    skipped: list[str] = dataclasses.field(default_factory=list)  # damaged runs left out: why


def completed_runs(runs_url: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Sorted ids of the complete runs (``manifest.json`` present) directly under ``runs_url``."""
    return [p.split("/")[0] for p in store.glob(runs_url, "*/manifest.json", storage_options)]


def collect(
    runs_url: str,
    storage_options: dict[str, Any] | None = None,
    *,
    include: Collection[str] | None = None,
) -> Collected:
    """Read the complete runs under ``runs_url`` (only those named in ``include``, if given)."""
    ids = completed_runs(runs_url, storage_options)
    if include is not None:
        missing = sorted(set(include) - set(ids))
        if missing:
            raise DataError(f"{runs_url}: run {missing[0]!r} is not complete (no manifest.json)")
        ids = [i for i in ids if i in include]
    if not ids:
        raise DataError(
            f"{runs_url}: no completed runs (a run folder is complete when its manifest.json "
            "exists; write runs with 'routerbench run --out URL')"
        )

    def read(name: str, which: Sequence[str]) -> list[bytes | None]:
        return store.read_many(runs_url, [f"{i}/{name}" for i in which], storage_options)

    manifests = dict(zip(ids, read(runs.MANIFEST, ids), strict=True))
    tables = {name: read(name, ids) for name in ("points.parquet", "curves.parquet")}
    curves, points, kept, skipped = [], [], [], []
    for j, run_id in enumerate(ids):
        url = store.join(runs_url, run_id)
        try:
            raw_manifest = manifests[run_id]
            if raw_manifest is None:
                raise DataError(f"{store.join(url, runs.MANIFEST)}: gone while reading")
            m = runs.read_manifest(url, raw_manifest)
            present = {name: raw[j] for name, raw in tables.items() if raw[j] is not None}
            run = runs.check_run(url, m, present)  # type: ignore[arg-type]
        except DataError as e:  # a damaged run is named and left out; the others are published
            skipped.append(f"{run_id}: {e}")
            print(f"routerbench: warning: run skipped: {e}", file=sys.stderr)
            continue
        tag: dict[str, Any] = {
            "run_id": run_id,
            "spec_hash": str(m["spec_hash"]),
            "data_fingerprint": str(m["data_fingerprint"]),
            "routerbench_version": str(m.get("routerbench_version", "")),
            "synthetic": bool(m["synthetic"]),
            "created": str(m.get("created", "")),
        }
        curves.append(run.curves.assign(**tag))
        points.append(run.points.assign(run_id=run_id))
        kept.append({**m, "run_id": run_id})
    if not kept:
        raise DataError(f"{runs_url}: no readable completed run ({skipped[0]})")
    cv = pd.concat(curves, ignore_index=True).sort_values(["created", "run_id"], kind="stable")
    cv = cv.drop_duplicates([*_BOARD, "family", *_CONFIG], keep="last")
    pts = pd.concat(points, ignore_index=True)
    pts = pts.merge(cv[_POINT_KEY], on=_POINT_KEY)
    return Collected(cv.reset_index(drop=True), pts, kept, skipped)


# ---------------------------------------------------------------------------------- ranking
def cost_to_reach(hull_cost: np.ndarray, hull_quality: np.ndarray, target: float) -> float:
    """Least cost at which a non-decreasing hull reaches quality ``target`` (linear between its
    vertices); NaN if it never does.

    >>> cost_to_reach(np.array([1.0, 3.0]), np.array([0.5, 1.0]), 0.75)
    2.0
    """
    hc = np.asarray(hull_cost, dtype=np.float64)
    hq = np.asarray(hull_quality, dtype=np.float64)
    if math.isnan(target) or len(hq) == 0 or hq[-1] < target:
        return math.nan
    j = int(np.argmax(hq >= target))
    if j == 0:
        return float(hc[0])
    t = (target - hq[j - 1]) / (hq[j] - hq[j - 1])
    return float(hc[j - 1] + t * (hc[j] - hc[j - 1]))


def rank(curves: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard table (:data:`COLUMNS`) of collected curves: per board, each family and
    'overall' ranked by AIQ."""
    from routerbench.sweeps.report import label

    parts = []
    for _, board in curves.groupby(_BOARD, sort=True):
        fams = []
        for fam, g in board.groupby("family", sort=True):
            singles = g[g["router"] == "single"].sort_values(
                ["max_quality", "cost_at_max_quality"], ascending=[False, True], kind="stable"
            )
            best = singles.iloc[0] if len(singles) else None
            target = math.nan if best is None else float(best["max_quality"])
            fams.append(
                g.assign(
                    scope=str(fam),
                    families=1,
                    best_single="" if best is None else label("single", best["params"]),
                    cost_to_match_best_single=[
                        cost_to_reach(hc, hq, target)
                        for hc, hq in zip(g["hull_cost"], g["hull_quality"], strict=True)
                    ],
                )
            )
        per_family = pd.concat(fams, ignore_index=True)
        overall = _overall(per_family)
        parts += [overall, per_family] if len(overall) else [per_family]
    table = pd.concat(parts, ignore_index=True)
    table["router_name"] = table["router"]
    table["router"] = [label(r, p) for r, p in zip(table["router"], table["params"], strict=True)]
    table["by_family"] = table["scope"] != "overall"  # 'overall' first, then families by name
    table = table.sort_values(
        [*_BOARD, "by_family", "scope", "aiq", "max_quality", "router", "params"],
        ascending=[True, True, True, True, False, False, True, True],
        kind="stable",
    )
    table["rank"] = table.groupby([*_BOARD, "scope"], sort=False).cumcount() + 1
    return table[list(COLUMNS)].reset_index(drop=True)


def _overall(per_family: pd.DataFrame) -> pd.DataFrame:
    """Per router configuration evaluated on every family of the board: means over families;
    interval ends combined in quadrature (the families are disjoint sets of prompts)."""
    n = per_family["family"].nunique()
    rows = []
    for (router, params), g in per_family.groupby(_CONFIG, sort=True):
        if len(g) < n:
            continue
        row: dict[str, Any] = {
            "router": router,
            "params": params,
            "scope": "overall",
            "families": n,
        }
        for m in ("aiq", "max_quality"):
            x, lo, hi = (g[c].to_numpy(dtype=np.float64) for c in (m, f"{m}_lo", f"{m}_hi"))
            row[m] = float(x.mean())
            row[f"{m}_lo"] = row[m] - float(np.sqrt(np.sum((x - lo) ** 2))) / n
            row[f"{m}_hi"] = row[m] + float(np.sqrt(np.sum((hi - x) ** 2))) / n
        for m in ("cost_at_max_quality", "cost_to_match_best_single"):
            row[m] = float(g[m].to_numpy(dtype=np.float64).mean())  # NaN if any family's is
        for c in ("run_id", "spec_hash", "routerbench_version"):
            row[c] = ",".join(sorted(set(g[c])))
        row |= {
            "data_fingerprint": g["data_fingerprint"].iloc[0],
            "split": g["split"].iloc[0],
            "c_min": math.nan,
            "c_max": math.nan,
            "best_single": "",
            "synthetic": bool(g["synthetic"].any()),
            "n_test": int(g["n_test"].sum()),
            "small_sample": bool(g["small_sample"].any()),
        }
        rows.append(row)
    return pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "router_name"])


# ---------------------------------------------------------------------------------- outputs
def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    recs = table.to_dict("records")
    return [
        {str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in recs
    ]


def _ci(x: Any, lo: Any, hi: Any) -> str:
    x, lo, hi = float(x), float(lo), float(hi)
    if math.isnan(x):
        return ""
    return f"{x:.4f}" if math.isnan(lo) else f"{x:.4f} [{lo:.4f}, {hi:.4f}]"


def _usd(x: Any) -> str:
    x = float(x)
    return "" if math.isnan(x) else f"{x:.6f}"


def markdown(table: pd.DataFrame, provenance: dict[str, Any]) -> str:
    """The leaderboard as Markdown: one ranked table per board and scope."""
    out = ["# RouterBench leaderboard", ""]
    if table["synthetic"].any():
        out += ["**Synthetic data**: these figures are not RouterBench's.", ""]
    out += [
        f"Generated {provenance['generated']} by routerbench "
        f"{provenance['generator']['routerbench']} from {len(provenance['runs'])} run(s).",
        "",
    ]
    for (fp, split), board in table.groupby(_BOARD, sort=False):
        out += [f"## Data {str(fp)[:12]}, split {split}", ""]
        for scope, g in board.groupby("scope", sort=False):
            head = f"### {scope}"
            first = g.iloc[0]
            if scope != "overall":
                head += (
                    f" (AIQ cost range ${first['c_min']:.6f}–${first['c_max']:.6f} per query; "
                    f"best single model: {first['best_single'] or 'none'})"
                )
            out += [
                head,
                "",
                "| rank | router | AIQ [95% CI] | max quality [95% CI] | cost at max ($/query) "
                "| cost to match best single ($/query) |",
                "|---:|---|---|---|---:|---:|",
            ]
            for r in g.itertuples():
                mark = "\\*" if r.small_sample else ""
                out.append(
                    f"| {r.rank} | {r.router} | {_ci(r.aiq, r.aiq_lo, r.aiq_hi)}{mark} | "
                    f"{_ci(r.max_quality, r.max_quality_lo, r.max_quality_hi)}{mark} | "
                    f"{_usd(r.cost_at_max_quality)} | {_usd(r.cost_to_match_best_single)} |"
                )
            out.append("")
    if table["small_sample"].any():
        out += [SMALL_NOTE.replace("*", "\\*", 1), ""]
    return "\n".join(out)


def plots(collected: Collected, table: pd.DataFrame, top: int = PLOT_TOP) -> list[dict[str, Any]]:
    """Per board and family, a PNG of the cost–quality plane: single models and the ``top``
    routers by AIQ (their points and hulls)."""
    from routerbench.sweeps.plot import plot_family

    out = []
    cv, pts = collected.curves, collected.points
    for (fp, split, fam), g in table[table["scope"] != "overall"].groupby(
        [*_BOARD, "scope"], sort=True
    ):
        best = g[g["router_name"] != "single"].head(top)[["router_name", "params"]]
        best = best.rename(columns={"router_name": "router"})
        here = cv[(cv["data_fingerprint"] == fp) & (cv["split"] == split) & (cv["family"] == fam)]
        curves = here.merge(best, on=_CONFIG)
        keys = pd.concat([curves, here[here["router"] == "single"]])[_POINT_KEY]
        points = pts.merge(keys, on=_POINT_KEY)  # the points of the drawn routers only
        tag = " (synthetic data)" if g["synthetic"].any() else ""
        title = f"{fam}, {split} split, data {str(fp)[:12]}{tag}"
        out.append(
            {
                "data_fingerprint": fp,
                "split": split,
                "family": fam,
                "title": title,
                "png": plot_family(points, curves, str(fam), title=title),
            }
        )
    return out


def _provenance(collected: Collected, generated: str) -> dict[str, Any]:
    keys = (
        "run_id", "spec", "spec_hash", "data_source", "data_fingerprint", "synthetic",
        "routerbench_version", "created",
    )  # fmt: skip
    return {
        "generated": generated,
        "generator": {"routerbench": code_versions()["routerbench"]},
        "runs": [{k: m.get(k, "") for k in keys} for m in collected.runs],
    }


def render(collected: Collected, generated: str) -> dict[str, bytes]:
    """Every published file of a leaderboard, by name (``generated`` is the only timestamp)."""
    from routerbench.cluster.leaderboard_page import page

    table = rank(collected.curves)
    prov = _provenance(collected, generated)
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    doc = {**prov, "columns": COLUMNS, "rows": _records(table)}
    return {
        "leaderboard.parquet": buf.getvalue(),
        "leaderboard.csv": table.to_csv(index=False, lineterminator="\n").encode(),
        "leaderboard.md": markdown(table, prov).encode(),
        "leaderboard.json": (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode(),
        "index.html": page(table, plots(collected, table), prov, COLUMNS).encode(),
    }


# -------------------------------------------------------------------------------- publishing
def read_latest(out_url: str, storage_options: dict[str, Any] | None = None) -> str:
    """URL of the newest complete published version (the folder ``LATEST`` names)."""
    try:
        vid = store.read_bytes(store.join(out_url, "LATEST"), storage_options).decode().strip()
    except FileNotFoundError:
        raise DataError(f"{out_url}: no leaderboard published (no LATEST)") from None
    return store.join(out_url, "versions", vid)


def refresh(
    runs_url: str,
    out_url: str,
    storage_options: dict[str, Any] | None = None,
    *,
    include: Collection[str] | None = None,
    keep: int = KEEP,
) -> str:
    """Collect the complete runs under ``runs_url`` (only ``include``, if given), rank them and
    publish the leaderboard under ``out_url``; returns the URL of the new version's folder."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (got {keep})")
    collected = collect(runs_url, storage_options, include=include)
    now = dt.datetime.now(dt.UTC)
    files = render(collected, now.isoformat(timespec="microseconds"))
    vid = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"
    folder = store.join(out_url, "versions", vid)
    for name, data in files.items():
        store.write_bytes(store.join(folder, name), data, storage_options)
    if _latest_id(out_url, storage_options) < vid:  # LATEST never moves back to an older version
        store.write_bytes(store.join(out_url, "LATEST"), f"{vid}\n".encode(), storage_options)
        store.write_bytes(store.join(out_url, "index.html"), files["index.html"], storage_options)
    _prune(out_url, keep, storage_options)
    return folder


def _latest_id(out_url: str, storage_options: dict[str, Any] | None) -> str:
    """The version id LATEST names ("" when nothing is published yet)."""
    try:
        return store.read_bytes(store.join(out_url, "LATEST"), storage_options).decode().strip()
    except FileNotFoundError:
        return ""


def _prune(out_url: str, keep: int, storage_options: dict[str, Any] | None) -> None:
    """Delete versions beyond the newest ``keep``, but only those older than the version LATEST
    names (re-read now) and older than :data:`PRUNE_GRACE`: a refresh still writing its version
    may be about to name it."""
    versions = store.list_dir(store.join(out_url, "versions"), storage_options)
    latest = _latest_id(out_url, storage_options)
    cutoff = f"{dt.datetime.now(dt.UTC) - PRUNE_GRACE:%Y%m%dT%H%M%S%fZ}"
    for vid in versions[:-keep]:
        if vid < latest and vid < cutoff:
            store.remove(store.join(out_url, "versions", vid), storage_options)


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
            raise runs.RunFailed(
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
        description="Rank routers per family and overall by AIQ (with intervals), max quality, "
        "cost at max quality and cost to match the best single model, over completed runs; "
        "publish leaderboard.{parquet,csv,md,json} and a self-contained index.html atomically.",
    )

    def usage(args: argparse.Namespace) -> int:
        lb.print_help()
        return 2

    lb.set_defaults(func=usage)
    sub = lb.add_subparsers(dest="leaderboard_command", metavar="LEADERBOARD_COMMAND")

    r = sub.add_parser("refresh", help="collect completed runs under --runs; publish to --out")
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
    from routerbench.cluster.cli import UsageError

    if args.keep < 1:
        raise UsageError(f"--keep must be >= 1 (got {args.keep})")
    return int(args.keep)


def _cmd_refresh(args: argparse.Namespace) -> int:
    so = store.parse_storage_options(args.storage_option)
    keep = _keep(args)
    args.out = store.output_url(args.out)
    store.check_writable(args.out, so)
    with store.user_errors(f"{args.runs} -> {args.out}"):
        folder = refresh(args.runs, args.out, so, keep=keep)
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
    return 0
