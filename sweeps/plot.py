"""Cost–quality plots: per family, the routers' points and hulls beside the references.

Routers (points, hulls, the points' intervals) are named in one legend with their AIQ and gap
closed; the references in another: the oracle frontier (the ceiling, dashed), the zero router
(dotted), the oracle (a star) and the single models (grey numbers, named in the legend). Both
legends sit right of the axes and the figure grows to hold them, so nothing is clipped. Names are
plain text: TeX-like names (``$\\frac{$``) are never parsed as math.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import textwrap
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from routerbench.engine import storage
from routerbench.sweeps.schema import MIN_N
from routerbench.sweeps.summary import complete
from routerbench.sweeps.text import interval, num

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend
    from matplotlib.path import Path

MAX_ROUTERS = 12  # routers drawn per plot, the best by AIQ (the tables hold them all)
WIDTH = 48  # characters per line of a label: longer labels wrap, 2 lines at most, then "…"
ONE_LINE = 64  # a router's label and numbers share one line up to this many characters
FONT = 7  # legend font size (points)
SIZE = (7.5, 5.0)  # inches, before the legends are added on the right
AXES_WIDTH = 6.5  # inches left for the axes (and their labels) beside the legends
DPI = 110
COLORS = tuple(f"tab:{c}" for c in "blue orange green purple brown pink olive cyan gray".split())
MARKERS = ("o", "s", "^", "D")  # with 9 colours: 36 distinct (colour, marker) pairs
REFERENCE_NAMES = {
    "frontier": "oracle frontier (ceiling)",
    "zero": "zero router (mixes single models)",
    "oracle": "oracle (best model per prompt)",
}


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


def wrap(text: str, width: int = WIDTH) -> str:
    """``text`` in lines of at most ``width`` characters, 2 lines at most (then ``…``)."""
    return "\n".join(textwrap.wrap(text, width, max_lines=2, placeholder=" …")) or text


def router_entry(row: pd.Series) -> str:
    """A router's legend entry: ``label (AIQ x [lo, hi], gap closed y)``, wrapped."""
    stats = f"AIQ {interval(row['aiq'], row.get('aiq_lo'), row.get('aiq_hi'), 3)}"
    gap = num(row.get("gap_closed"), 2, blank="")
    stats += f", gap closed {gap}" if gap else ""
    one = f"{row['label']} ({stats})"
    return one if len(one) <= ONE_LINE else f"{wrap(str(row['label']))}\n({stats})"


def _number(i: int) -> Path:
    """The marker of single model ``i``: its number, centred on the point."""
    from matplotlib.path import Path
    from matplotlib.textpath import TextPath

    tp = TextPath((0, 0), str(i), size=10)
    v = tp.vertices
    return Path(v - (v.min(axis=0) + v.max(axis=0)) / 2, tp.codes)


def _singles(ax: Any, fp: pd.DataFrame) -> list[Artist]:
    """Single models as grey numbers (by cost); their legend handles, labelled with the model."""
    from matplotlib.lines import Line2D

    rows = fp[fp["router"] == "single"].sort_values(["cost_mean", "params"])
    handles: list[Artist] = []
    for i, r in enumerate(rows.itertuples(), start=1):
        model = str(json.loads(str(r.params or "{}")).get("model", r.params))
        size = 8 + 2 * (i > 9)  # two digits: the marker is scaled to fit its size
        style: dict[str, Any] = dict(marker=_number(i), color="0.3", ms=size, mew=0)
        ax.plot([r.cost_mean], [r.quality_mean], ls="none", zorder=5, **style)
        handles.append(Line2D([], [], ls="none", label=wrap(f"{i}: {model}"), **style))
    return handles


def _references(ax: Any, fp: pd.DataFrame, fc: pd.DataFrame) -> list[Artist]:
    """The frontier (dashed) and zero router (dotted) hulls and the oracle's star; handles."""
    handles: list[Artist] = []
    for name, style in (("frontier", ("--", "0.1")), ("zero", (":", "0.35"))):
        for _, r in fc[fc["router"] == name].iterrows():
            extra = "" if r["label"] == name else f" {r['label']}"
            text = f"{REFERENCE_NAMES[name]}{extra}, AIQ {num(r['aiq'], 3)}"
            hc, hq = _dense(np.asarray(r["hull_cost"]), np.asarray(r["hull_quality"]))
            ls, color = style
            handles += ax.plot(hc, hq, ls=ls, color=color, lw=1.6, label=wrap(text), zorder=3)
    oracle = fp[fp["router"] == "oracle"]
    if len(oracle):
        handles.append(
            ax.scatter(
                oracle["cost_mean"],
                oracle["quality_mean"],
                marker="*",
                s=140,
                color="tab:red",
                edgecolors="k",
                linewidths=0.5,
                zorder=6,
                label=REFERENCE_NAMES["oracle"],
            )
        )
    return handles


def _routers(ax: Any, fp: pd.DataFrame, routers: pd.DataFrame) -> list[Artist]:
    """Each router's hull, points and the points' intervals; handles named by router_entry."""
    from matplotlib.lines import Line2D

    handles: list[Artist] = []
    for i, (_, r) in enumerate(routers.iterrows()):
        color, marker = COLORS[i % len(COLORS)], MARKERS[i % len(MARKERS)]
        rp = fp[(fp["router"] == r["router"]) & (fp["params"] == r["params"])]
        hc, hq = _dense(np.asarray(r["hull_cost"]), np.asarray(r["hull_quality"]))
        ax.plot(hc, hq, "-", color=color, lw=1.4, zorder=3)
        ax.scatter(rp["cost_mean"], rp["quality_mean"], marker=marker, s=24, color=color, zorder=4)
        if "quality_lo" in rp and rp["quality_lo"].notna().any():  # the points' intervals
            # Drawn from end to end, not as errors around the estimate: a percentile interval
            # need not contain it, and errorbar refuses a negative length.
            lo, hi = rp["quality_lo"], rp["quality_hi"]
            ax.vlines(rp["cost_mean"], lo, hi, colors=color, alpha=0.35, lw=0.8, zorder=2)
        handles.append(Line2D([], [], color=color, marker=marker, label=router_entry(r)))
    return handles


def _legend(
    fig: Figure,
    handles: list[Artist],
    title: str,
    loc: Literal["outside right upper", "outside right lower"],
) -> Legend:
    leg = fig.legend(handles=handles, loc=loc, fontsize=FONT, title=title, alignment="left")
    leg.get_title().set_fontsize(FONT + 1)
    for t in [*leg.get_texts(), leg.get_title()]:
        t.set_parse_math(False)
    return leg


def _fit(fig: Figure, legends: list[Legend]) -> None:
    """Grow the figure so that the legends, stacked right of the axes, fit inside it."""
    fig.draw_without_rendering()
    boxes = [leg.get_window_extent() for leg in legends]
    if not boxes:
        return
    w = AXES_WIDTH + max(b.width for b in boxes) / fig.dpi + 0.2
    h = sum(b.height for b in boxes) / fig.dpi + 0.3 * len(boxes)
    fig.set_size_inches(max(SIZE[0], w), max(SIZE[1], h))


def family_figure(
    points: pd.DataFrame, curves: pd.DataFrame, family: str, *, title: str = ""
) -> Figure:
    """The figure of one family's cost–quality plane (mean cost per query on a log axis):
    routers and references, each in its own legend right of the axes, all inside the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = complete(curves)
    fp = points[(points["family"] == family) & (points["status"] == "ok")]
    fc = curves[curves["family"] == family]
    routers = fc[fc["kind"] == "router"].sort_values("aiq", ascending=False, na_position="last")
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    drawn = _routers(ax, fp, routers.head(MAX_ROUTERS))
    refs = _references(ax, fp, fc) + _singles(ax, fp)
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query (USD, log scale)")
    ax.set_ylabel("mean quality")
    head = "\n".join(textwrap.wrap(title or family, 70))
    ax.set_title(head + small_sample_note(fc), fontsize=10, parse_math=False)
    ax.grid(alpha=0.3)
    more = f", best {MAX_ROUTERS} of {len(routers)}" if len(routers) > MAX_ROUTERS else ""
    legends = []
    if drawn:
        name = f"routers{more}: AIQ [interval], gap closed"
        legends.append(_legend(fig, drawn, name, "outside right upper"))
    if refs:
        legends.append(_legend(fig, refs, "references (not ranked)", "outside right lower"))
    _fit(fig, legends)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes, at its own size and dpi (whatever the rc settings say)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches=None, facecolor="white")
    return buf.getvalue()


def plot_family(
    points: pd.DataFrame, curves: pd.DataFrame, family: str, *, title: str = ""
) -> bytes:
    """A PNG (bytes) of one family's cost–quality plane: see :func:`family_figure`."""
    return png_bytes(family_figure(points, curves, family, title=title))


# ------------------------------------------------------------------------------ files
def _safe(name: str) -> str:
    """A file name for a family: its letters, digits and ``-_.`` (others as ``_``), at most 60
    characters; a name that had to change gets a short hash of it, so two never collide."""
    slug = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "-_." else "_" for ch in name)
    if slug == name and 0 < len(name) <= 60 and not name.startswith("."):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug.lstrip('.')[:60]}-{digest}"


def plot_name(family: str, split: str) -> str:
    """The one file name of a family's plot on a split: ``<family>-<split>.png``."""
    return f"{_safe(family)}-{split}.png"


def write_plots(
    folder: str,
    points: pd.DataFrame,
    curves: pd.DataFrame,
    synthetic: bool,
    storage_options: dict[str, Any] | None = None,
) -> list[str]:
    """Plots per family and split into ``folder`` as :func:`plot_name` (the URLs written). A
    plot that fails is one warning line on stderr, never an incomplete run: results and
    manifest are written regardless."""
    tag = " (synthetic data)" if synthetic else ""
    written = []
    for fam in dict.fromkeys(curves["family"]):
        for split in sorted(set(curves["split"])):
            url = storage.join(folder, plot_name(fam, split))
            try:
                png = plot_family(
                    points[points["split"] == split],
                    curves[curves["split"] == split],
                    fam,
                    title=f"{fam}, {split} split{tag}",
                )
                storage.write_bytes(url, png, storage_options)
                written.append(url)
            except Exception as e:
                print(
                    f"routerbench: warning: {url} not written ({type(e).__name__}: {e})",
                    file=sys.stderr,
                )
    return written
