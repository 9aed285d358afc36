"""The leaderboard published: completed runs ranked (:mod:`.rank`), its files rendered (the
page: :mod:`.page`) and published atomically.

``refresh(runs_url, out_url)`` reads every completed run under ``runs_url`` (a run is complete when
its ``manifest.json`` exists) and ranks router configurations per family and overall by AIQ, with
intervals, rank bands, gap closed, max quality, cost at max quality and the cost to match the best
single model; references (single models, oracle, zero router, oracle frontier) are shown apart,
the frontier first as the ceiling.

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
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd

from routerbench.cluster.leaderboard.page import page
from routerbench.cluster.leaderboard.rank import BOARD, COLUMNS, Collected, collect, rank
from routerbench.engine import storage
from routerbench.engine.errors import DataError
from routerbench.sweeps.labels import ONE_POINT_NOTE
from routerbench.sweeps.report import SMALL_NOTE
from routerbench.sweeps.resume import code_versions
from routerbench.sweeps.text import interval, num

KEEP = 14  # published versions kept (a reader of an older one may find it gone)
PRUNE_GRACE = dt.timedelta(minutes=10)  # a version younger than this is never pruned
PLOT_TOP = 8  # routers drawn per plot besides the references: the best by AIQ
FILES = ("leaderboard.parquet", "leaderboard.csv", "leaderboard.md", "leaderboard.json")


# ---------------------------------------------------------------------------------- outputs
def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    recs = table.astype(object).where(table.notna(), None).to_dict("records")
    return [{str(k): v for k, v in r.items()} for r in recs]


_MD_ROUTERS = (
    "| rank | band | router | AIQ [95% CI] | gap closed [95% CI] | max quality [95% CI] "
    "| cost at max ($/query) | cost to match best single ($/query) |",
    "|---:|---:|---|---|---|---|---:|---:|",
)
_MD_REFERENCES = (
    "| reference | AIQ [95% CI] | gap closed [95% CI] | max quality [95% CI] "
    "| cost at max ($/query) | cost to match best single ($/query) |",
    "|---|---|---|---|---:|---:|",
)


def _md_row(r: Any, head: list[str]) -> str:
    mark = "\\*" if r.small_sample else ""
    cells = [
        *head,
        f"{interval(r.aiq, r.aiq_lo, r.aiq_hi, blank='')}{mark}",
        interval(r.gap_closed, r.gap_closed_lo, r.gap_closed_hi, blank=""),
        f"{interval(r.max_quality, r.max_quality_lo, r.max_quality_hi, blank='')}{mark}",
        num(r.cost_at_max_quality, 6, blank=""),
        num(r.cost_to_match_best_single, 6, blank=""),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown(table: pd.DataFrame, provenance: dict[str, Any]) -> str:
    """The leaderboard as Markdown: per board and scope, the ranked routers, then the references
    (not ranked; the frontier first, as the ceiling)."""
    out = ["# RouterBench leaderboard", ""]
    if table["synthetic"].any():
        out += ["**Synthetic data**: these figures are not RouterBench's.", ""]
    out += [
        f"Generated {provenance['generated']} by routerbench "
        f"{provenance['generator']['routerbench']} from {len(provenance['runs'])} run(s). "
        "Routers share a rank band when their paired difference of AIQ is not significant.",
        "",
    ]
    for (fp, split), board in table.groupby(BOARD, sort=False):
        out += [f"## Data {str(fp)[:12]}, split {split}", ""]
        for scope, g in board.groupby("scope", sort=False):
            head = f"### {scope}"
            first = g.iloc[0]
            if scope != "overall":
                head += (
                    f" (AIQ cost range ${first['c_min']:.6f}–${first['c_max']:.6f} per query; "
                    f"best single model: {first['best_single'] or 'none'})"
                )
            routers, refs = g[g["kind"] != "reference"], g[g["kind"] == "reference"]
            out += [head, "", "Routers, ranked:", "", *_MD_ROUTERS]
            for r in routers.itertuples():
                out.append(_md_row(r, [str(r.rank), str(r.band), str(r.router)]))
            out += ["", "References, not ranked (the frontier is the ceiling):", ""]
            out += [*_MD_REFERENCES]
            for r in refs.itertuples():
                ceiling = " (ceiling)" if r.router_name == "frontier" else ""
                out.append(_md_row(r, [f"{r.router}{ceiling}"]))
            out.append("")
    out += [ONE_POINT_NOTE, ""]
    if table["small_sample"].any():
        out += [SMALL_NOTE.replace("*", "\\*", 1), ""]
    return "\n".join(out)


def plots(collected: Collected, table: pd.DataFrame, top: int = PLOT_TOP) -> list[dict[str, Any]]:
    """Per board and family, a PNG of the cost–quality plane: the references (single models,
    oracle, zero router, frontier) and the ``top`` routers by rank (their points and hulls),
    labelled as on the board."""
    from routerbench.sweeps.plot import plot_family

    out = []
    cv, pts = collected.curves, collected.points
    key = ["run_id", "family", "split", "router", "params"]
    fams = table[table["scope"] != "overall"]
    for (fp, split, fam), g in fams.groupby([*BOARD, "scope"], sort=True):
        drawn = pd.concat([g[g["kind"] != "reference"].head(top), g[g["kind"] == "reference"]])
        drawn = drawn[["router_name", "params", "router"]]
        drawn.columns = ["router", "params", "board_label"]
        here = cv[(cv["data_fingerprint"] == fp) & (cv["split"] == split) & (cv["family"] == fam)]
        curves = here.merge(drawn, on=["router", "params"])
        curves = curves.assign(label=curves.pop("board_label"))
        points = pts.merge(curves[key], on=key)  # the points of the drawn rows only
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
        vid = storage.read_bytes(storage.join(out_url, "LATEST"), storage_options).decode().strip()
    except FileNotFoundError:
        raise DataError(f"{out_url}: no leaderboard published (no LATEST)") from None
    return storage.join(out_url, "versions", vid)


def publish(
    collected: Collected,
    out_url: str,
    storage_options: dict[str, Any] | None = None,
    *,
    keep: int = KEEP,
) -> str:
    """Rank collected runs and publish the leaderboard under ``out_url``; returns the URL of the
    new version's folder."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (got {keep})")
    now = dt.datetime.now(dt.UTC)
    files = render(collected, now.isoformat(timespec="microseconds"))
    vid = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"
    folder = storage.join(out_url, "versions", vid)
    for name, data in files.items():
        storage.write_bytes(storage.join(folder, name), data, storage_options)
    if _latest_id(out_url, storage_options) < vid:  # LATEST never moves back to an older version
        storage.write_bytes(storage.join(out_url, "LATEST"), f"{vid}\n".encode(), storage_options)
        storage.write_bytes(
            storage.join(out_url, "index.html"), files["index.html"], storage_options
        )
    _prune(out_url, keep, storage_options)
    return folder


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
    collected = collect(runs_url, storage_options, include=include)
    return publish(collected, out_url, storage_options, keep=keep)


def page_url(folder: str) -> str:
    """The URL of the page in ``folder`` (a ``file://`` URL for a local folder)."""
    url = storage.join(folder, "index.html")
    if not storage.is_local(url):
        return url
    return Path(os.path.abspath(url.removeprefix("file://"))).as_uri()


def _latest_id(out_url: str, storage_options: dict[str, Any] | None) -> str:
    """The version id LATEST names ("" when nothing is published yet)."""
    try:
        return storage.read_bytes(storage.join(out_url, "LATEST"), storage_options).decode().strip()
    except FileNotFoundError:
        return ""


def _prune(out_url: str, keep: int, storage_options: dict[str, Any] | None) -> None:
    """Delete versions beyond the newest ``keep``, but only those older than the version LATEST
    names (re-read now) and older than :data:`PRUNE_GRACE`: a refresh still writing its version
    may be about to name it."""
    versions = storage.list_dir(storage.join(out_url, "versions"), storage_options)
    latest = _latest_id(out_url, storage_options)
    cutoff = f"{dt.datetime.now(dt.UTC) - PRUNE_GRACE:%Y%m%dT%H%M%S%fZ}"
    for vid in versions[:-keep]:
        if vid < latest and vid < cutoff:
            storage.remove(storage.join(out_url, "versions", vid), storage_options)
