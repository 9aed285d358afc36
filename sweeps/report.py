"""Text tables of results: per family, routers ranked by AIQ with their intervals."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pandas as pd

from routerbench.routers.base import REGISTRY, load_all
from routerbench.sweeps.schema import MIN_N, SMALL_N

# Where a family has too few test prompts for its intervals (curves' small_sample).
SMALL_NOTE = f"* fewer than {SMALL_N} test prompts: intervals unreliable (none below {MIN_N})"


def label(router: str, params: str) -> str:
    """A short display name: ``single:gpt-4-1106-preview``, ``knn(k=40)``; parameters at their
    defaults are left out."""
    p = json.loads(params) if params else {}
    if router == "single":
        return f"single:{p.get('model', '?')}"
    load_all()
    defaults = {}
    if router in REGISTRY:
        for f in dataclasses.fields(REGISTRY[router]):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
    shown = {
        k: v
        for k, v in p.items()
        if k != "seed" and (k not in defaults or _canon(defaults[k]) != _canon(v))
    }
    if not shown:
        return router
    return router + "(" + ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(shown.items())) + ")"


def _canon(v: object) -> str:
    return json.dumps(v, sort_keys=True, default=list)


def _fmt(v: object) -> str:
    return ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)


def _ci(x: Any, lo: Any, hi: Any) -> str:
    if any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
        return f"{x:.4f}"
    return f"{x:.4f} [{lo:.4f}, {hi:.4f}]"


def _n(curves: pd.DataFrame, mark: str = "*") -> list[str]:
    """Test prompts per row, with ``mark`` where the family is too small for its intervals."""
    if "n_test" not in curves:  # a run written before the column existed
        return [""] * len(curves)
    small = curves["small_sample"].to_numpy(dtype=bool)
    return [f"{n}{mark if s else ''}" for n, s in zip(curves["n_test"], small, strict=True)]


def _small(curves: pd.DataFrame) -> bool:
    return "small_sample" in curves and bool(curves["small_sample"].any())


def leaderboard_table(curves: pd.DataFrame, *, synthetic: bool = False) -> str:
    """Per family (and split), routers by AIQ: AIQ and max quality with their intervals, and the
    mean cost per query at max quality."""
    if curves.empty:
        return "(no results)"
    df = curves.assign(
        router_label=[label(r, p) for r, p in zip(curves["router"], curves["params"], strict=True)]
    )
    df = df.sort_values(["family", "split", "aiq"], ascending=[True, True, False], kind="stable")
    table = pd.DataFrame(
        {
            "family": df["family"],
            "split": df["split"],
            "router": df["router_label"],
            "AIQ [95% CI]": [
                _ci(a, lo, hi)
                for a, lo, hi in zip(df["aiq"], df["aiq_lo"], df["aiq_hi"], strict=True)
            ],
            "max quality [95% CI]": [
                _ci(a, lo, hi)
                for a, lo, hi in zip(
                    df["max_quality"], df["max_quality_lo"], df["max_quality_hi"], strict=True
                )
            ],
            "cost at max ($/query)": df["cost_at_max_quality"].map("{:.6f}".format),
            "test prompts": _n(df),
        }
    )
    if table["split"].nunique() == 1:
        table = table.drop(columns=["split"])
    head = "SYNTHETIC DATA (embedded default): figures are not RouterBench's\n" if synthetic else ""
    ranges = df.groupby("family", sort=True)[["c_min", "c_max"]].first()
    foot = "\nAIQ cost range per family ($/query): " + "; ".join(
        f"{f} [{r.c_min:.6f}, {r.c_max:.6f}]" for f, r in ranges.iterrows()
    )
    if _small(df):
        foot += "\n" + SMALL_NOTE
    return head + table.to_string(index=False) + foot


def across_splits(curves: pd.DataFrame) -> pd.DataFrame:
    """Spread across splits (seeds, folds): per family and router configuration, the mean and
    standard deviation of AIQ and max quality, and the number of splits."""
    g = curves.groupby(["family", "router", "params"], sort=True)
    out = g.agg(
        splits=("split", "nunique"),
        aiq_mean=("aiq", "mean"),
        aiq_sd=("aiq", "std"),
        max_quality_mean=("max_quality", "mean"),
        max_quality_sd=("max_quality", "std"),
    ).reset_index()
    out.insert(
        1, "router_label", [label(r, p) for r, p in zip(out["router"], out["params"], strict=True)]
    )
    return out.sort_values(["family", "aiq_mean"], ascending=[True, False], kind="stable")


def render(curves: pd.DataFrame, fmt: str = "table", *, synthetic: bool = False) -> str:
    """A run's curves as a text table, a Markdown table or JSON records."""
    if fmt == "table":
        text = leaderboard_table(curves, synthetic=synthetic)
        if curves["split"].nunique() > 1:
            spread = across_splits(curves).drop(columns=["router", "params"])
            text += "\n\nAcross splits (mean, sd):\n" + spread.to_string(
                index=False, float_format="{:.4f}".format
            )
        return text
    cols = [
        "family", "split", "router", "params", "aiq", "aiq_lo", "aiq_hi", "c_min", "c_max",
        "aiq_upstream", "aiq_upstream_note", "aiq_upstream_path", "max_quality", "max_quality_lo",
        "max_quality_hi", "cost_at_max_quality", "n_test", "small_sample", "boot_excluded",
    ]  # fmt: skip
    df = curves[[c for c in cols if c in curves]].assign(
        label=[label(r, p) for r, p in zip(curves["router"], curves["params"], strict=True)]
    )
    df = df.sort_values(["family", "split", "aiq"], ascending=[True, True, False], kind="stable")
    if fmt == "json":
        return df.to_json(orient="records", indent=1)
    if fmt == "markdown":
        head = "_Synthetic data: figures are not RouterBench's._\n\n" if synthetic else ""
        rows = [
            "| family | split | router | AIQ [95% CI] | max quality [95% CI] | cost at max "
            "| test prompts |",
            "|---|---|---|---|---|---|---:|",
        ]
        for r, n in zip(df.itertuples(), _n(df, "\\*"), strict=True):
            rows.append(
                f"| {r.family} | {r.split} | {r.label} | {_ci(r.aiq, r.aiq_lo, r.aiq_hi)} | "
                f"{_ci(r.max_quality, r.max_quality_lo, r.max_quality_hi)} | "
                f"{r.cost_at_max_quality:.6f} | {n} |"
            )
        foot = "\n\n" + SMALL_NOTE.replace("*", "\\*", 1) if _small(df) else ""
        return head + "\n".join(rows) + foot
    raise ValueError(f"format must be 'table', 'markdown' or 'json' (got {fmt!r})")
