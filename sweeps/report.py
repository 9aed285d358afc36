"""Text tables of results."""

from __future__ import annotations

import json

import pandas as pd


def label(router: str, params: str) -> str:
    """A short display name: ``single:gpt-4-1106-preview``, ``knn(k=10)``, ``oracle``."""
    p = json.loads(params) if params else {}
    if router == "single":
        return f"single:{p.get('model', '?')}"
    shown = {k: v for k, v in p.items() if k not in ("seed",)}
    if not shown or router in ("oracle", "zero", "random"):
        return router
    return router + "(" + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) + ")"


def leaderboard_table(curves: pd.DataFrame, *, synthetic: bool = False) -> str:
    """Per family, routers by AIQ (desc): AIQ, max quality and the mean cost per query there."""
    if curves.empty:
        return "(no results)"
    df = curves.assign(
        router_label=[label(r, p) for r, p in zip(curves["router"], curves["params"], strict=True)]
    )
    df = df.sort_values(["family", "aiq"], ascending=[True, False], kind="stable")
    table = pd.DataFrame(
        {
            "family": df["family"],
            "router": df["router_label"],
            "AIQ": df["aiq"].map("{:.4f}".format),
            "max quality": df["max_quality"].map("{:.4f}".format),
            "cost at max ($/query)": df["cost_at_max_quality"].map("{:.6f}".format),
        }
    )
    head = "SYNTHETIC DATA (embedded default): figures are not RouterBench's\n" if synthetic else ""
    ranges = df.groupby("family", sort=True)[["c_min", "c_max"]].first()
    foot = "\nAIQ cost range per family ($/query, cheapest to dearest single model): " + "; ".join(
        f"{f} [{r.c_min:.6f}, {r.c_max:.6f}]" for f, r in ranges.iterrows()
    )
    return head + table.to_string(index=False) + foot
