"""Reports of a run's curves: per family and split, the routers ranked by AIQ with rank bands,
and apart from them the references (frontier, oracle, zero router, single models), unranked.

Formats: a text table, Markdown, or JSON (``{"meta", "columns", "rows"}``); ``columns`` picks any
curves column (plus the derived ``rank`` and ``band``) in every format. Runs written before the
``kind``/``label``/gap columns existed are filled in on the fly (:func:`complete`).
:func:`compare_text` prints the paired difference of two routers, family by family.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from routerbench.engine.errors import DataError
from routerbench.sweeps import schema
from routerbench.sweeps.compare import paired, pairs, rank_bands
from routerbench.sweeps.labels import ONE_POINT_NOTE, label
from routerbench.sweeps.schema import MIN_N, SMALL_N
from routerbench.sweeps.summary import LIST_COLUMNS, complete
from routerbench.sweeps.text import interval, missing, num

__all__ = [
    "COLUMNS",
    "SMALL_NOTE",
    "ColumnError",
    "CompareError",
    "compare_text",
    "complete",
    "label",
    "leaderboard_table",
    "ordered",
    "render",
]

FORMATS = ("table", "markdown", "json")
# Where a family has too few test prompts for its intervals (curves' small_sample).
SMALL_NOTE = f"* fewer than {SMALL_N} test prompts: intervals unreliable (none below {MIN_N})"
LEGEND = (
    "band: a router shares the band of the row above when their paired AIQ difference is not "
    "significant (95% paired bootstrap); gap closed: (AIQ - AIQ zero) / (AIQ frontier - AIQ "
    "zero), 0 = the zero router, 1 = the frontier; calc_AIQ '-': the original's calc_AIQ has "
    "no value (one operating point: fewer than 3 distinct costs; or a reference it lacks), "
    "the reason is in the aiq_upstream_note column"
)
DERIVED = {
    "rank": "position of a router by AIQ in its family and split (1 = highest); none for "
    "references",
    "band": "rank band: a router shares the band of the row above unless their paired AIQ "
    "difference (95% paired bootstrap) is significant; none for references or without bootstrap",
}
COLUMNS: dict[str, str] = {**schema.CURVES, **DERIVED}  # every selectable column, described
HIDDEN = LIST_COLUMNS  # JSON: only if asked
META_KEYS = (
    "synthetic",
    "run_id",
    "spec_hash",
    "data_fingerprint",
    "data_source",
    "routerbench_version",
    "created",
)
AUDIT = ("cells", "tables")  # manifest entries left out of the JSON meta: hashes, for audit
REF_ORDER = {"frontier": 0, "oracle": 1, "zero": 2, "single": 3}
COSTS = ("c_min", "c_max", "cost_at_max_quality", "hull_cost")


class ColumnError(DataError):
    """A ``columns`` entry that is not a column of the report (a ValueError; CLI exit 2)."""


class CompareError(DataError):
    """A router to compare that the run does not have, or two that share no family."""


# ------------------------------------------------------------------------------- the rows
def _bands(routers: pd.DataFrame, confidence: float) -> list[int | None]:
    """Rank bands of routers sorted by AIQ; none where the family has no replicates."""
    reps = routers["aiq_reps"].tolist()
    if all(r is None or len(r) == 0 for r in reps):
        return [None] * len(routers)
    return rank_bands(routers["aiq"].tolist(), reps, confidence)  # type: ignore[return-value]


def ordered(curves: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """:func:`complete` curves per (family, split): routers by AIQ with ``rank`` and ``band``,
    then the references (frontier, oracle, zero, single models by AIQ) with neither."""
    df = complete(curves)
    parts = []
    for _, g in df.groupby(["family", "split"], sort=True):
        rt = g[g["kind"] != "reference"].sort_values(
            "aiq", ascending=False, kind="stable", na_position="last"
        )
        ref = g[g["kind"] == "reference"]
        order = ref["router"].map(REF_ORDER).fillna(len(REF_ORDER))
        ref = ref.assign(_o=order).sort_values(["_o", "aiq"], ascending=[True, False])
        rt = rt.assign(
            rank=pd.Series(range(1, len(rt) + 1), index=rt.index, dtype=object),
            band=pd.Series(_bands(rt, confidence), index=rt.index, dtype=object),
        )
        none = pd.Series([None] * len(ref), index=ref.index, dtype=object)
        parts += [rt, ref.drop(columns="_o").assign(rank=none, band=none)]
    if not parts:
        return df.assign(rank=pd.Series(dtype=object), band=pd.Series(dtype=object))
    return pd.concat(parts, ignore_index=True)


def _columns(columns: Sequence[str] | None, curves: pd.DataFrame) -> list[str] | None:
    """The selected columns (unique, in order), or None for the default view."""
    if columns is None:
        return None
    allowed = list(COLUMNS) + [c for c in curves.columns if c not in COLUMNS]
    if not columns:
        raise ColumnError(f"columns: none given; expected some of {', '.join(allowed)}")
    for c in columns:
        if c not in allowed:
            close = difflib.get_close_matches(c, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ColumnError(f"unknown column {c!r}{hint}; expected some of {', '.join(allowed)}")
    return list(dict.fromkeys(columns))


# --------------------------------------------------------------------------------- cells
def _value(col: str, v: Any) -> str:
    """One selected column's cell in a text table."""
    if col == "params" or isinstance(v, str):
        return str(v)
    if isinstance(v, list | tuple | np.ndarray):
        return ",".join(_value(col, x) for x in v)
    if isinstance(v, bool | np.bool_):
        return str(bool(v)).lower()
    if isinstance(v, float | np.floating):
        return num(v, 6 if col in COSTS else 4)
    return "" if v is None else str(v)


def _default(r: Mapping[str, Any], mark: str, ref: bool) -> dict[str, str]:
    """The default columns of one row (references: no rank, no band)."""
    n = r["n_test"]
    cells = {
        "rank": "" if r["rank"] is None else str(r["rank"]),
        "band": "" if r["band"] is None else str(r["band"]),
        "label": str(r["label"]),
        "AIQ [95% CI]": interval(r["aiq"], r["aiq_lo"], r["aiq_hi"]),
        "gap closed [95% CI]": interval(r["gap_closed"], r["gap_closed_lo"], r["gap_closed_hi"], 3),
        "max quality [95% CI]": interval(
            r["max_quality"], r["max_quality_lo"], r["max_quality_hi"]
        ),
        "cost at max ($/query)": num(r["cost_at_max_quality"], 6),
        "calc_AIQ (original)": num(r["aiq_upstream"]),
        "test prompts": "" if missing(n) else f"{int(n)}{mark if r['small_sample'] else ''}",
    }
    if ref:
        del cells["rank"], cells["band"]
    return cells


# -------------------------------------------------------------------------------- tables
def _grid(rows: list[list[str]], fmt: str) -> str:
    """Rows (the first: headers) as a text table (left-aligned, 2 spaces) or a Markdown table."""
    if fmt == "markdown":
        esc = [[c.replace("|", "\\|") for c in row] for row in rows]
        lines = ["| " + " | ".join(row) + " |" for row in esc]
        return "\n".join([lines[0], "|" + "---|" * len(rows[0]), *lines[1:]])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _part(g: pd.DataFrame, fmt: str, cols: list[str] | None) -> str:
    """The routers' or the references' table of one family."""
    ref = bool((g["kind"] == "reference").all())
    mark = "\\*" if fmt == "markdown" else "*"
    recs: list[dict[str, Any]] = g.to_dict("records")  # type: ignore[assignment]
    if cols is None:
        dicts = [_default(r, mark, ref) for r in recs]
        rows = [list(dicts[0]), *[list(d.values()) for d in dicts]]
    else:
        rows = [list(cols), *[[_value(c, r[c]) for c in cols] for r in recs]]
    return _grid(rows, fmt)


def _section(g: pd.DataFrame, fmt: str, cols: list[str] | None) -> str:
    """One family and split: heading (test prompts, AIQ cost range), routers, references."""
    first = g.iloc[0]
    n = "" if missing(first["n_test"]) else f"{int(first['n_test'])} test prompts; "
    rng = f"AIQ cost range [{num(first['c_min'], 6)}, {num(first['c_max'], 6)}] $/query"
    md = fmt == "markdown"
    title = f"{first['family']}, split {first['split']}"
    out = [f"### {title}\n\n{n}{rng}" if md else f"{title}: {n}{rng}"]
    routers, refs = g[g["kind"] != "reference"], g[g["kind"] == "reference"]
    if len(routers):
        out += ["Routers, ranked by AIQ:"]
        out += [_part(routers, fmt, cols)]
    if len(refs):
        out += ["References (not ranked):"]
        out += [_part(refs, fmt, cols)]
    return ("\n\n" if md else "\n").join(out)


def across_splits(curves: pd.DataFrame) -> pd.DataFrame:
    """Spread across splits (seeds, folds): per family and configuration (routers first), the
    number of splits and the mean and standard deviation of AIQ and max quality."""
    df = complete(curves)
    g = df.groupby(["family", "kind", "label"], sort=True)
    out = g.agg(
        splits=("split", "nunique"),
        aiq_mean=("aiq", "mean"),
        aiq_sd=("aiq", "std"),
        max_quality_mean=("max_quality", "mean"),
        max_quality_sd=("max_quality", "std"),
    ).reset_index()
    out["_ref"] = out["kind"] == "reference"
    out = out.sort_values(["family", "_ref", "aiq_mean"], ascending=[True, True, False])
    return out.drop(columns=["_ref"])


def _text(df: pd.DataFrame, fmt: str, cols: list[str] | None, synthetic: bool) -> str:
    md = fmt == "markdown"
    if synthetic:
        head = (
            "_Synthetic data: figures are not RouterBench's._\n\n"
            if md
            else ("SYNTHETIC DATA (embedded default): figures are not RouterBench's\n")
        )
    else:
        head = ""
    if df.empty:
        return head + "(no results)"
    sep = "\n\n"
    parts = [_section(g, fmt, cols) for _, g in df.groupby(["family", "split"], sort=False)]
    notes = []
    if (df["kind"] == "reference").any():
        notes.append(ONE_POINT_NOTE)
    if df["small_sample"].astype(bool).any():
        notes.append(SMALL_NOTE.replace("*", "\\*", 1) if md else SMALL_NOTE)
    notes.append(LEGEND)
    text = head + sep.join(parts) + sep + ("\n\n" if md else "\n").join(notes)
    return text


def leaderboard_table(
    curves: pd.DataFrame, *, synthetic: bool = False, columns: Sequence[str] | None = None
) -> str:
    """Per family and split: routers ranked by AIQ with rank bands, then the references."""
    return _text(ordered(curves), "table", _columns(columns, curves), synthetic)


# ---------------------------------------------------------------------------------- JSON
def _plain(v: Any) -> Any:
    """A JSON value: NaN as null, arrays as lists, numpy scalars as Python ones."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v if v is None or isinstance(v, str | int | float | bool) else str(v)


def _json(
    df: pd.DataFrame, meta: Mapping[str, Any] | None, cols: list[str] | None, syn: bool
) -> str:
    """``{"meta": ..., "columns": {name: description}, "rows": [...]}``."""
    m: dict[str, Any] = dict.fromkeys(META_KEYS)
    for k in ("run_id", "spec_hash", "data_fingerprint"):  # a run's tables carry these
        if k in df and len(df):
            m[k] = df[k].iloc[0]
    m |= {k: v for k, v in (meta or {}).items() if k not in AUDIT}
    m["synthetic"] = syn
    if cols is None:
        cols = [c for c in COLUMNS if c not in HIDDEN]
    rows = []
    for r in df.to_dict("records"):
        row = {c: _plain(r[c]) for c in cols}
        if "params" in row and isinstance(row["params"], str):
            row["params"] = json.loads(row["params"]) if row["params"] else {}
        rows.append(row)
    described = {c: COLUMNS.get(c, "the run's provenance, as in meta") for c in cols}
    out = {"meta": _plain(m), "columns": described, "rows": rows}
    return json.dumps(out, indent=1, allow_nan=False)


def render(
    curves: pd.DataFrame,
    fmt: str = "table",
    *,
    meta: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    synthetic: bool | None = None,
    confidence: float = 0.95,
) -> str:
    """A run's curves as a text table, Markdown or JSON (see the module docstring). ``meta``:
    the run's manifest (JSON's meta); ``synthetic`` defaults to ``meta["synthetic"]``;
    ``confidence``: the level of the run's intervals (the spec's metrics.confidence), used for
    the bands and named in the headers."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be 'table', 'markdown' or 'json' (got {fmt!r})")
    syn = bool((meta or {}).get("synthetic", False)) if synthetic is None else synthetic
    cols = _columns(columns, curves)
    df = ordered(curves, confidence)
    if fmt == "json":
        return _json(df, meta, cols, syn)
    text = _text(df, fmt, cols, syn)
    if confidence != 0.95:  # the headers and the legend are written for the default level
        pc = f"{confidence:.0%}"
        text = text.replace("[95% CI]", f"[{pc} CI]").replace("(95% paired", f"({pc} paired")
    if cols is None and not df.empty and df["split"].nunique() > 1:
        spread = across_splits(df).drop(columns=["kind"])
        rows = [list(spread.columns)]
        rows += [
            [_value(c, v) for c, v in zip(spread.columns, r, strict=True)]
            for r in spread.to_numpy()
        ]
        text += "\n\nAcross splits (mean, sd):\n" + ("\n" if fmt == "markdown" else "")
        text += _grid(rows, fmt)
    return text


# ------------------------------------------------------------------------------- compare
def _which(df: pd.DataFrame, name: str) -> pd.Series:
    """Rows whose label or cell id is ``name``; CompareError naming close matches if none."""
    hit = (df["label"] == name) | (df["cell_id"] == name)
    if not hit.any():
        known = list(dict.fromkeys(df["label"].tolist() + df["cell_id"].tolist()))
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise CompareError(
            f"unknown router {name!r}: not a label or cell id of this run{hint}; the labels "
            "are in the report's label column"
        )
    return hit


def _diff(p: Mapping[Any, Any], m: str) -> tuple[str, str]:
    """A paired difference with its interval, and whether it is significant."""
    d, lo, hi = p[f"{m}_diff"], p[f"{m}_diff_lo"], p[f"{m}_diff_hi"]
    text = interval(d, lo, hi, sign=True)
    if missing(lo) or missing(hi):
        return text, "n/a (no replicates)"
    return text, "yes" if p[f"{m}_significant"] else "no"


def compare_text(
    curves: pd.DataFrame, a: str, b: str, *, confidence: float = 0.95, synthetic: bool = False
) -> str:
    """Per family and split holding both: router ``a``'s AIQ and max quality minus ``b``'s,
    paired over the same bootstrap replicates, with intervals; each side's own AIQ [CI]."""
    df = complete(curves)
    in_a, in_b = _which(df, a), _which(df, b)
    pc = f"{confidence:.0%}"
    rows = [["family", "split", "AIQ A [CI]", "AIQ B [CI]", f"AIQ A-B [{pc} CI]", "significant"]]
    rows[0] += [f"max quality A-B [{pc} CI]", "significant"]
    for _, g in df.groupby(["family", "split"], sort=True):
        ga, gb = g[in_a.loc[g.index]], g[in_b.loc[g.index]]
        if ga.empty or gb.empty:
            continue
        ra, rb = ga.iloc[0], gb.iloc[0]
        p = paired(ra, rb, confidence)
        own = [interval(r["aiq"], r["aiq_lo"], r["aiq_hi"]) for r in (ra, rb)]
        where = [str(ra["family"]), str(ra["split"])]
        rows.append([*where, *own, *_diff(p, "aiq"), *_diff(p, "max_quality")])
    if len(rows) == 1:
        raise CompareError(f"{a!r} and {b!r} share no family and split in this run")
    names = []
    for x, hit in ((a, in_a), (b, in_b)):
        lab = str(df.loc[hit, "label"].iloc[0])
        names.append(lab if lab == x else f"{lab} ({x})")
    head = "SYNTHETIC DATA: figures are not RouterBench's\n" if synthetic else ""
    head += (
        f"A = {names[0]}, B = {names[1]}: paired differences over the same bootstrap replicates\n"
    )
    foot = (
        f"\nsignificant: the {pc} percentile interval of the per-replicate differences excludes "
        "0 (replicate b of both rows reweights the same test prompts)"
    )
    return head + _grid(rows, "table") + foot


def pairs_text(curves: pd.DataFrame, *, confidence: float = 0.95, synthetic: bool = False) -> str:
    """Every pair of routers (references left out) of each family and split, the higher AIQ
    first: the paired differences of AIQ and max quality with their intervals."""
    df = complete(curves)
    table = pairs(df[df["kind"] == "router"], confidence)
    pc = f"{confidence:.0%}"
    rows = [["family", "split", "A", "B", f"AIQ A-B [{pc} CI]", "significant"]]
    rows[0] += [f"max quality A-B [{pc} CI]", "significant"]
    for r in table.to_dict("records"):
        rows.append([str(r["family"]), str(r["split"]), r["a"], r["b"]])
        rows[-1] += [*_diff(r, "aiq"), *_diff(r, "max_quality")]
    head = "SYNTHETIC DATA: figures are not RouterBench's\n" if synthetic else ""
    if len(rows) == 1:
        return head + "(no two routers share a family and split)"
    return head + _grid(rows, "table")
