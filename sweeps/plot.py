"""Cost–quality plots: per family, router points and hulls, single models, oracle, zero router."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from routerbench.sweeps.report import label as router_label
from routerbench.sweeps.schema import MIN_N


def _dense(hc: np.ndarray, hq: np.ndarray, per: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Hull vertices with points inserted along each segment, so that the straight segments
    (straight in cost, not log cost) draw correctly on a log axis."""
    if len(hc) < 2:
        return hc, hq
    t = np.linspace(0.0, 1.0, per, endpoint=False)
    c = np.append((hc[:-1, None] + t * np.diff(hc)[:, None]).ravel(), hc[-1])
    return c, np.interp(c, hc, hq)


def small_sample_note(curves: pd.DataFrame) -> str:
    """A second title line for a family with too few test prompts for its intervals (``""``
    otherwise): ``n = 4 test prompts: intervals unreliable``, or ``...: no intervals`` below 2."""
    if "small_sample" not in curves or not curves["small_sample"].any():
        return ""
    n = int(curves["n_test"].min())
    return f"\nn = {n} test prompt{'s' * (n != 1)}: " + (
        "no intervals" if n < MIN_N else "intervals unreliable"
    )


def plot_family(
    points: pd.DataFrame, curves: pd.DataFrame, family: str, *, title: str = ""
) -> bytes:
    """A PNG (bytes) of one family's cost–quality plane (mean cost per query on a log axis).

    Names are drawn as plain text: TeX-like names (``$\\frac{$``) are never parsed as math.
    """
    import matplotlib

    matplotlib.use("Agg")
    with matplotlib.rc_context({"text.parse_math": False}):
        return _plot_family(points, curves, family, title)


def _plot_family(points: pd.DataFrame, curves: pd.DataFrame, family: str, title: str) -> bytes:
    import matplotlib.pyplot as plt

    fp = points[(points["family"] == family) & (points["status"] == "ok")]
    fc = curves[curves["family"] == family]
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=110)
    singles = fp[fp["router"] == "single"]
    for _, r in singles.iterrows():
        ax.scatter(r["cost_mean"], r["quality_mean"], s=22, color="0.35", zorder=3)
        label = str(r["params"]).split('"model":"')[-1].rstrip('"}').split("/")[-1]
        ax.annotate(
            label,
            (r["cost_mean"], r["quality_mean"]),
            fontsize=6.5,
            xytext=(3, 2),
            textcoords="offset points",
            color="0.3",
        )
    palette = iter(
        ["tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
        * 20
    )
    for _, r in fc[fc["router"] != "single"].iterrows():
        name = r["router"]
        style = {"oracle": ("*", "tab:red"), "zero": ("s", "tab:blue"), "random": ("x", "tab:gray")}
        marker, color = style.get(name) or ("o", next(palette))
        rp = fp[(fp["router"] == name) & (fp["params"] == r["params"])]
        hc, hq = _dense(np.asarray(r["hull_cost"]), np.asarray(r["hull_quality"]))
        ci = "" if np.isnan(r["aiq_lo"]) else f" [{r['aiq_lo']:.3f}, {r['aiq_hi']:.3f}]"
        line = ax.plot(
            hc,
            hq,
            "-",
            color=color,
            lw=1.4,
            label=f"{router_label(name, r['params'])} (AIQ {r['aiq']:.3f}{ci})",
        )[0]
        ax.scatter(
            rp["cost_mean"],
            rp["quality_mean"],
            marker=marker,
            s=28,
            color=line.get_color(),
            zorder=4,
        )
        if "quality_lo" in rp and rp["quality_lo"].notna().any():  # 95% intervals of the points
            # Drawn from end to end, not as errors around the estimate: a percentile interval
            # need not contain it, and errorbar refuses a negative length.
            ax.vlines(
                rp["cost_mean"],
                rp["quality_lo"],
                rp["quality_hi"],
                colors=line.get_color(),
                alpha=0.35,
                lw=0.8,
                zorder=2,
            )
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query (USD, log scale)")
    ax.set_ylabel("mean quality")
    ax.set_title((title or family) + small_sample_note(fc))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
