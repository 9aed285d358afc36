"""The leaderboard's table: completed runs collected, routers ranked, references kept apart.

Routers are compared only on the same data (fingerprint) and split: each (data, split) is one
*board*. When several runs hold the same router configuration on the same board and family, the
newest run's result is used.

Per board and scope (each family, and 'overall') the routers (``kind`` 'router') are ranked by
AIQ and grouped in *rank bands*: each router shares the band of the one ranked above it unless
their paired bootstrap difference of AIQ is significant (:func:`routerbench.sweeps.compare.
rank_bands`). Pairing needs the same bootstrap replicates: rows from runs with other bootstrap
settings (replicates, seed; read from each run's ``spec.toml``), rows whose replicate lists differ
in length and rows without replicates are treated as not significantly different. References
(single models, the oracle, the zero router, the oracle frontier) get no rank and no band; they
are listed after the routers, the frontier first: it is the ceiling.

Runs written before the ``kind``, ``label``, ``trial``, gap and replicate columns existed are read
too: ``kind`` comes from the router's name, gaps are NaN and replicates empty (no bands).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import tomllib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from routerbench.engine import storage
from routerbench.engine.bootstrap import interval
from routerbench.engine.errors import DataError
from routerbench.sweeps import runs, summary
from routerbench.sweeps.compare import rank_bands
from routerbench.sweeps.labels import short_labels
from routerbench.sweeps.spec import FIELDS
from routerbench.sweeps.summary import gap_closed

CONFIDENCE = 0.95  # of the paired intervals behind the rank bands
_REFERENCE_ORDER = {"frontier": 0, "oracle": 1, "zero": 2, "single": 3}  # the ceiling first

# The leaderboard table: every column, in order, with what it holds (also the page's tooltips).
COLUMNS: dict[str, str] = {
    "data_fingerprint": "sha256 of the outcome data; routers are ranked only against others "
    "evaluated on the same data and split",
    "split": "train/test split the routers were evaluated on",
    "scope": "a family, or 'overall': the mean over the board's families (configurations "
    "evaluated on every family only)",
    "kind": "'router' (ranked), or 'reference': single models, the oracle, the zero router and "
    "the oracle frontier (the ceiling), shown apart and not ranked",
    "rank": "routers only: 1 = highest AIQ within (data, split, scope); ties broken by max "
    "quality; empty for references",
    "band": "routers only: rank band; a router shares the band of the one ranked above it "
    "unless their paired bootstrap difference of AIQ is significant (95%); rows from runs with "
    "other bootstrap settings, or without replicates, count as not significantly different; "
    "empty where no router of the scope has replicates (bootstrap = 0)",
    "router": "short label, unique on the board: the router and the hyperparameters that vary "
    "or differ from their defaults (3 significant digits); an Optuna trial as mlp#17, with "
    "@<run id> where trials of different runs would share a label",
    "router_name": "registered router name",
    "params": "every hyperparameter, as canonical JSON",
    "aiq": "AIQ: mean of the router's non-decreasing convex hull over [c_min, c_max]",
    "aiq_lo": "lower end of AIQ's interval (bootstrap over prompts; overall: the percentile "
    "interval of the per-replicate means over families, as the bands use, where every family has "
    "the same replicates; else the families' intervals combined in quadrature)",
    "aiq_hi": "upper end of AIQ's interval",
    "gap_closed": "(aiq - AIQ of the zero router) / (aiq_frontier - AIQ of the zero router): 0 "
    "is no better than mixing single models, 1 is the frontier; overall: the same ratio of the "
    "overall AIQs (the means over families)",
    "gap_closed_lo": "lower end of the gap's interval (paired bootstrap replicates; overall: "
    "the ratio in each replicate of the means over families)",
    "gap_closed_hi": "upper end of the gap's interval",
    "aiq_frontier": "the ceiling: AIQ of the oracle frontier (the best any router could do at "
    "every cost) on the same family; overall: the families' mean",
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
BOARD = ["data_fingerprint", "split"]  # one board: routers are compared only within it
_CONFIG = ["router", "params"]


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
    return [p.split("/")[0] for p in storage.glob(runs_url, f"*/{runs.MANIFEST}", storage_options)]


def bootstrap_key(spec_toml: bytes | None, run_id: str) -> str:
    """The bootstrap settings of a run (replicates and seed, from its ``spec.toml``): rows of
    runs with the same key were drawn on the same replicates. Unknown settings (no or unreadable
    spec) give a key of the run's own."""
    if spec_toml is None:
        return f"run {run_id}"
    try:
        doc = tomllib.loads(spec_toml.decode())
        b = doc.get("metrics", {}).get("bootstrap", FIELDS["metrics"]["bootstrap"][1])
        seed = doc.get("search", {}).get("seed", FIELDS["search"]["seed"][1])
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        return f"run {run_id}"
    return f"bootstrap={b!r}, seed={seed!r}"


def complete(curves: pd.DataFrame) -> pd.DataFrame:
    """:func:`routerbench.sweeps.summary.complete` curves (runs written before some columns
    existed: kind derived, trial -1, gaps and ceiling NaN, no replicates), with bootstrap
    settings of each run's own where none are known."""
    out = summary.complete(curves)
    if "bootstrap_key" not in out:
        out["bootstrap_key"] = [f"run {r}" for r in out["run_id"]]
    return out


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

    def read(name: str) -> list[bytes | None]:
        return storage.read_many(runs_url, [f"{i}/{name}" for i in ids], storage_options)

    manifests, specs = read(runs.MANIFEST), read("spec.toml")
    tables = {name: read(name) for name in ("points.parquet", "curves.parquet")}
    curves, points, kept, skipped = [], [], [], []
    for j, run_id in enumerate(ids):
        url = storage.join(runs_url, run_id)
        try:
            raw_manifest = manifests[j]
            if raw_manifest is None:
                raise DataError(f"{storage.join(url, runs.MANIFEST)}: gone while reading")
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
            "bootstrap_key": bootstrap_key(specs[j], run_id),
        }
        curves.append(complete(run.curves.assign(**tag)))
        points.append(run.points.assign(run_id=run_id))
        kept.append({**m, "run_id": run_id})
    if not kept:
        raise DataError(f"{runs_url}: no readable completed run ({skipped[0]})")
    cv = pd.concat(curves, ignore_index=True).sort_values(["created", "run_id"], kind="stable")
    cv = cv.drop_duplicates([*BOARD, "family", *_CONFIG], keep="last")
    pts = pd.concat(points, ignore_index=True)
    key = ["run_id", "family", "split", *_CONFIG]
    pts = pts.merge(cv[key], on=key)
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


def board_labels(board: pd.DataFrame) -> dict[tuple[str, str], str]:
    """The label of every configuration (router, params) of one board's curves: short labels
    over the board; Optuna trial labels that different runs share get ``@`` and the run id (its
    last 6 characters, or all of it where those do not tell the runs apart); configurations
    still sharing a label are labelled by their router and full parameters."""
    cfg = board.drop_duplicates(_CONFIG, keep="last")
    labels = short_labels(list(cfg["router"]), list(cfg["params"]), list(cfg["trial"]))
    for cut in (6, None):
        shared = pd.Series(labels).duplicated(keep=False).to_numpy()
        labels = [
            f"{lab.split('@')[0]}@{str(run)[-cut:] if cut else run}" if s else lab
            for lab, s, run in zip(labels, shared, cfg["run_id"], strict=True)
        ]
    shared = pd.Series(labels).duplicated(keep=False).to_numpy()
    labels = [
        f"{r}{p}" if s else lab
        for lab, s, r, p in zip(labels, shared, cfg["router"], cfg["params"], strict=True)
    ]
    return dict(zip(zip(cfg["router"], cfg["params"], strict=True), labels, strict=True))


def bands(
    values: Sequence[float],
    reps: Sequence[Any],
    keys: Sequence[str],
    confidence: float = CONFIDENCE,
) -> list[int] | list[None]:
    """Rank bands of rows in rank order (:func:`rank_bands`), where a row whose bootstrap
    settings (``keys``) differ from the row above's stays in that row's band. No row with
    replicates: no bands (None), rather than one band that would read as a tie."""
    if not any(len(r) for r in reps):
        return [None] * len(values)
    out: list[int] = []
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or keys[i] != keys[i - 1]:
            base = out[-1] - 1 if out else 0
            out += [base + b for b in rank_bands(values[start:i], reps[start:i], confidence)]
            start = i
    return out


def rank(curves: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard table (:data:`COLUMNS`) of collected curves: per board, each family and
    'overall', routers ranked by AIQ in bands, references after them."""
    parts = []
    for _, board in complete(curves).groupby(BOARD, sort=True):
        labels = board_labels(board)
        configs = zip(board["router"], board["params"], strict=True)
        board = board.assign(label=[labels[k] for k in configs])
        per_family = pd.concat(
            [_family(str(fam), g) for fam, g in board.groupby("family", sort=True)],
            ignore_index=True,
        )
        overall = _overall(per_family)
        parts += [overall, per_family] if len(overall) else [per_family]
    table = pd.concat(parts, ignore_index=True)
    return _order(table)[list(COLUMNS)]


def _family(fam: str, g: pd.DataFrame) -> pd.DataFrame:
    """One family's rows with their scope and the cost to match its best single model."""
    singles = g[g["router"] == "single"].sort_values(
        ["max_quality", "cost_at_max_quality"], ascending=[False, True], kind="stable"
    )
    target = float(singles["max_quality"].iloc[0]) if len(singles) else math.nan
    return g.assign(
        scope=fam,
        families=1,
        best_single=str(singles["label"].iloc[0]) if len(singles) else "",
        cost_to_match_best_single=[
            cost_to_reach(hc, hq, target)
            for hc, hq in zip(g["hull_cost"], g["hull_quality"], strict=True)
        ],
    )


def _order(table: pd.DataFrame) -> pd.DataFrame:
    """Sorted: per board 'overall' first, then families by name; in each, routers by rank, then
    references (the frontier first); with rank and band."""
    table = table.assign(
        router_name=table["router"],
        router=table["label"],
        by_family=table["scope"] != "overall",
        is_reference=table["kind"] == "reference",
        reference_order=[
            _REFERENCE_ORDER.get(r, 9) if k == "reference" else 0
            for r, k in zip(table["router"], table["kind"], strict=True)
        ],
    )
    order = {"by_family": True, "scope": True, "is_reference": True, "reference_order": True}
    order |= {"aiq": False, "max_quality": False, "router": True, "params": True}
    table = table.sort_values(
        [*BOARD, *order], ascending=[True, True, *order.values()], kind="stable"
    ).reset_index(drop=True)
    table["rank"] = pd.array([pd.NA] * len(table), dtype="Int64")
    table["band"] = pd.array([pd.NA] * len(table), dtype="Int64")
    routers = table[~table["is_reference"]]
    for _, g in routers.groupby([*BOARD, "scope"], sort=False):
        table.loc[g.index, "rank"] = np.arange(1, len(g) + 1)
        table.loc[g.index, "band"] = bands(
            list(g["aiq"]), list(g["aiq_reps"]), list(g["bootstrap_key"])
        )
    return table


def _combined(g: pd.DataFrame, m: str, n: int) -> tuple[float, float, float]:
    """The families' mean of metric ``m`` (NaN if any is) and its interval: the families'
    half-widths combined in quadrature (the families are disjoint sets of prompts)."""
    x, lo, hi = (g[c].to_numpy(dtype=np.float64) for c in (m, f"{m}_lo", f"{m}_hi"))
    mean = float(x.mean())
    return (
        mean,
        mean - float(np.sqrt(np.sum((x - lo) ** 2))) / n,
        mean + float(np.sqrt(np.sum((hi - x) ** 2))) / n,
    )


def _mean_reps(g: pd.DataFrame) -> list[float]:
    """Per bootstrap replicate, the mean over the families (replicate b of every family is
    drawn in the same replicate); empty unless every family has replicates of one length and
    the same bootstrap settings."""
    reps = [np.asarray(r, dtype=np.float64) for r in g["aiq_reps"]]
    if g["bootstrap_key"].nunique() != 1 or len({len(r) for r in reps}) != 1 or not len(reps[0]):
        return []
    return [float(v) for v in np.mean(reps, axis=0)]


def _overall(per_family: pd.DataFrame) -> pd.DataFrame:
    """Per router configuration evaluated on every family of the board: means over families;
    replicates averaged per replicate, AIQ's interval from them where every family has the same
    replicates (else, and for the other intervals, the families' ends combined in quadrature)."""
    n = per_family["family"].nunique()
    rows = []
    for (router, params), g in per_family.groupby(_CONFIG, sort=True):
        if len(g) < n:
            continue
        row: dict[str, Any] = {"router": router, "params": params, "scope": "overall"}
        for m in ("aiq", "max_quality"):
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = _combined(g, m, n)
        reps = _mean_reps(g)
        if reps:  # the same replicates as the bands: the percentile interval of their means
            r = np.asarray(reps)
            r = r[np.isfinite(r)]
            if len(r) >= 2:
                row["aiq_lo"], row["aiq_hi"] = interval(r, CONFIDENCE, bounds=(0.0, 1.0)).tolist()
        for m in ("cost_at_max_quality", "cost_to_match_best_single"):
            row[m] = float(g[m].to_numpy(dtype=np.float64).mean())  # NaN if any family's is
        for c in ("run_id", "spec_hash", "routerbench_version"):
            row[c] = ",".join(sorted(set(g[c])))
        keys = set(g["bootstrap_key"])
        row |= {
            "data_fingerprint": g["data_fingerprint"].iloc[0],
            "split": g["split"].iloc[0],
            "kind": g["kind"].iloc[0],
            "label": g["label"].iloc[0],
            "families": n,
            "c_min": math.nan,
            "c_max": math.nan,
            "best_single": "",
            "synthetic": bool(g["synthetic"].any()),
            "n_test": int(g["n_test"].sum()),
            "small_sample": bool(g["small_sample"].any()),
            "aiq_reps": reps,
            "bootstrap_key": keys.pop() if len(keys) == 1 else "mixed",
        }
        rows.append(row)
    _overall_gap(rows)
    return pd.DataFrame(rows)


def _overall_gap(rows: list[dict[str, Any]]) -> None:
    """The overall gap closed from the overall AIQs, ``(a − z) / (f − z)`` of the means over
    families (an average of the families' ratios would let a small family whose frontier and
    zero router nearly tie swamp it), with its interval from the averaged replicates of rows
    drawn with the same bootstrap settings; in place. The ceiling is the frontier's overall
    AIQ: the families' mean."""
    gap_closed(rows, CONFIDENCE, lambda a, b: a["bootstrap_key"] == b["bootstrap_key"])
