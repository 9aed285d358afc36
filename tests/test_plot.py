"""Cost–quality plots, rendered for real: legends inside the image and apart from the axes,
references named (frontier, zero router, oracle, every single model), routers' entries."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.transforms import Bbox
from PIL import Image

from routerbench.engine.synth import generate
from routerbench.routers.base import create
from routerbench.sweeps import plot
from routerbench.sweeps.labels import short_labels
from routerbench.sweeps.plot import family_figure, plot_family, png_bytes, router_entry, wrap
from routerbench.sweeps.run import evaluate
from routerbench.sweeps.summary import Results

FAM = "mmlu"
# A long grid label, and one long word: wrapped or cut, never clipped.
LONG = "mlp(alpha=0.07029897993777041, hidden_layer_sizes=100,100,100, learning_rate_init=0.001)"
LABELS = ["mlp#17", LONG, LONG * 5, "x" * 400]


@pytest.fixture(scope="module")
def res() -> Results:
    """Frontier, oracle, zero, knn(k=7) and every single model on two families, 20 replicates."""
    data = generate(3000, 0)
    routers = [create("frontier"), create("oracle"), create("zero"), create("knn", k=7)]
    routers += [create("single", model=m) for m in data.models]
    return evaluate(data, routers, bootstrap=20, families=[FAM, "mtbench"])


def relabel(curves: pd.DataFrame, router: str, label: str) -> pd.DataFrame:
    out = curves.copy()
    out.loc[out["router"] == router, "label"] = label
    return out


def legends(fig: Figure) -> list[Legend]:
    """Every legend of the figure, the figure's and the axes'."""
    return [*fig.legends, *(leg for a in fig.axes if (leg := a.get_legend()) is not None)]


def texts(leg: Legend) -> list[str]:
    return [t.get_text() for t in leg.get_texts()]


def rendered(fig: Figure) -> tuple[bytes, np.ndarray]:
    """The PNG as plot_family saves it, and its pixels read back (rows from the top)."""
    png = png_bytes(fig)
    return png, np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def inside(box: Bbox, w: float, h: float) -> bool:
    return box.x0 >= 0 and box.y0 >= 0 and box.x1 <= w and box.y1 <= h


def many_routers(res: Results, n: int, label: str) -> pd.DataFrame:
    """The curves with ``n`` copies of knn's row (distinct params) labelled ``label#i``."""
    c = res.curves
    knn = c[(c["router"] == "knn") & (c["family"] == FAM)].iloc[0]
    rows = [knn.copy() for _ in range(n)]
    for i, r in enumerate(rows):
        r["params"], r["label"], r["aiq"] = (
            json.dumps({"k": 100 + i}),
            f"{label}#{i}",
            0.9 + i / 1e3,
        )
    return pd.concat([c, pd.DataFrame(rows)], ignore_index=True)


class TestFamilyFigure:
    @pytest.mark.parametrize("label", LABELS)
    def test_legends_inside_the_image(self, res: Results, label: str) -> None:
        """With a long router label, every legend lies inside the saved PNG (its size read back)
        and is drawn there: the legend's box holds dark pixels."""
        fig = family_figure(res.points, relabel(res.curves, "knn", label), FAM)
        _, px = rendered(fig)
        h, w = px.shape
        assert (w, h) == (int(fig.bbox.width), int(fig.bbox.height))  # as Agg sizes its canvas
        legs = legends(fig)
        assert len(legs) == 2
        for leg in legs:
            box = leg.get_window_extent(fig.canvas.get_renderer())
            assert inside(box, w, h), (box, w, h)
            crop = px[int(h - box.y1) : int(h - box.y0), int(box.x0) : int(box.x1)]
            assert crop.min() < 100

    @pytest.mark.parametrize("label", LABELS)
    def test_nothing_overlaps_or_is_clipped(self, res: Results, label: str) -> None:
        """Legends do not overlap the axes nor each other; the axes with their title, tick and
        axis labels lie inside the figure."""
        fig = family_figure(res.points, relabel(res.curves, "knn", label), FAM, title=LONG)
        rendered(fig)
        r = fig.canvas.get_renderer()
        (ax,) = fig.axes
        boxes = [leg.get_window_extent(r) for leg in legends(fig)]
        assert inside(ax.get_tightbbox(r), fig.bbox.width, fig.bbox.height)
        assert not any(b.overlaps(ax.get_tightbbox(r)) for b in boxes)
        assert not boxes[0].overlaps(boxes[1])

    def test_many_long_routers_fit(self, res: Results) -> None:
        """14 routers with long labels: the best 12 by AIQ are drawn and named, the title says
        so, and the taller legends still fit inside the figure."""
        base = "mlp(alpha=0.0703, hidden_layer_sizes=100,100,100)"  # 2 lines with its #i
        fig = family_figure(res.points, many_routers(res, 14, base), FAM)
        _, px = rendered(fig)
        routers = legends(fig)[0]
        assert "best 12 of 15" in routers.get_title().get_text()
        names = [t.rsplit("\n", 1)[0] for t in texts(routers)]
        assert names == [wrap(f"{base}#{i}") for i in range(13, 1, -1)]
        assert all("\n" in n and n.endswith(f"#{13 - j}") for j, n in enumerate(names))
        for leg in legends(fig):
            assert inside(leg.get_window_extent(), px.shape[1], px.shape[0])

    def test_every_single_model_named(self, res: Results) -> None:
        """Each single model has a legend entry 'i: model', numbered by cost, and its number is
        drawn at its point."""
        fig = family_figure(res.points, res.curves, FAM)
        p = res.points
        singles = p[(p["family"] == FAM) & (p["router"] == "single")].sort_values("cost_mean")
        models = [json.loads(s)["model"] for s in singles["params"]]
        assert len(models) == 11
        refs = texts(legends(fig)[1])
        assert [t.replace("\n", " ") for t in refs[3:]] == [
            f"{i}: {m}" for i, m in enumerate(models, 1)
        ]
        drawn = [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "None"]
        got = [(ln.get_xdata()[0], ln.get_ydata()[0]) for ln in drawn]
        assert got == list(zip(singles["cost_mean"], singles["quality_mean"], strict=True))

    def test_references_drawn_and_named(self, res: Results) -> None:
        """The frontier's hull is a dashed line named with its AIQ; the zero router's dotted;
        the oracle a star at its point; no reference is in the routers' legend."""
        fig = family_figure(res.points, res.curves, FAM)
        c = res.curves[res.curves["family"] == FAM].set_index("router")
        lines = {ln.get_label().split(",")[0]: ln for ln in fig.axes[0].lines}
        for name, key, style in (
            ("frontier", "oracle frontier (ceiling)", "--"),
            ("zero", "zero router (mixes single models)", ":"),
        ):
            line = lines[key]
            assert line.get_label() == f"{key}, AIQ {c.loc[name, 'aiq']:.3f}"
            assert line.get_linestyle() == style
            hc, hq = np.asarray(c.loc[name, "hull_cost"]), np.asarray(c.loc[name, "hull_quality"])
            assert len(hc) >= 2
            assert np.allclose(np.interp(hc, line.get_xdata(), line.get_ydata()), hq)
            assert line.get_label() in texts(legends(fig)[1])
        routers, refs = (texts(leg) for leg in legends(fig))
        assert refs[2] == "oracle (best model per prompt)"
        (star,) = fig.axes[0].collections[-1:]
        o = res.points[(res.points["family"] == FAM) & (res.points["router"] == "oracle")]
        assert np.allclose(star.get_offsets(), o[["cost_mean", "quality_mean"]].to_numpy())
        assert len(routers) == 1 and routers[0].startswith("knn(k=7) (AIQ")

    def test_labels_without_the_column(self, res: Results) -> None:
        """Curves written before the label and kind columns: labels from short_labels over the
        given curves, references still apart."""
        old = res.curves.drop(columns=["label", "kind"])
        fig = family_figure(res.points, old, FAM)
        want = short_labels(old["router"], old["params"], old["trial"])
        knn = want[int(np.flatnonzero((old["router"] == "knn") & (old["family"] == FAM))[0])]
        routers, refs = (texts(leg) for leg in legends(fig))
        assert knn == "knn(k=7)" and len(routers) == 1 and routers[0].startswith(knn + " (")
        assert refs[0].startswith("oracle frontier (ceiling), AIQ")

    def test_names_are_plain_text(self, res: Results) -> None:
        """A TeX-like label is drawn as typed (a broken one does not raise), while the log axis'
        tick labels are still typeset (no raw '$\\mathdefault' drawn)."""
        fig = family_figure(res.points, relabel(res.curves, "knn", "$\\frac{$ a$x^2$"), FAM)
        rendered(fig)
        assert texts(legends(fig)[0])[0].startswith("$\\frac{$ a$x^2$ (AIQ")
        ticks = fig.axes[0].get_xticklabels()
        assert any("mathdefault" in t.get_text() for t in ticks)
        assert all(t.get_parse_math() for t in ticks if "$" in t.get_text())


class TestRouterEntry:
    def test_entry(self, res: Results) -> None:
        """'label (AIQ x [lo, hi], gap closed y)' from the curves row; no interval without one."""
        c = res.curves
        row = c[(c["router"] == "knn") & (c["family"] == FAM)].iloc[0]
        a, lo, hi, g = row["aiq"], row["aiq_lo"], row["aiq_hi"], row["gap_closed"]
        assert np.isfinite([lo, hi, g]).all()
        want = f"knn(k=7) (AIQ {a:.3f} [{lo:.3f}, {hi:.3f}], gap closed {g:.2f})"
        assert router_entry(row) == want
        bare = row.copy()
        bare["aiq_lo"] = bare["aiq_hi"] = bare["gap_closed"] = np.nan
        assert router_entry(bare) == f"knn(k=7) (AIQ {a:.3f})"
        old = row.drop(["gap_closed"])
        assert router_entry(old) == f"knn(k=7) (AIQ {a:.3f} [{lo:.3f}, {hi:.3f}])"

    @pytest.mark.parametrize("label", LABELS)
    def test_lines_are_short(self, res: Results, label: str) -> None:
        """Every line of an entry is at most ONE_LINE characters; a long label keeps its start
        and its numbers."""
        c = relabel(res.curves, "knn", label)
        row = c[(c["router"] == "knn") & (c["family"] == FAM)].iloc[0]
        entry = router_entry(row)
        assert max(len(line) for line in entry.split("\n")) <= plot.ONE_LINE
        assert entry.startswith(label[:6]) and f"AIQ {row['aiq']:.3f}" in entry


class TestWrap:
    def test_wrap(self) -> None:
        """At most 2 lines of WIDTH characters; longer text ends in '…'; short text unchanged."""
        assert wrap("mlp#17") == "mlp#17"
        lines = wrap(LONG * 3).split("\n")
        assert len(lines) == 2 and all(len(x) <= plot.WIDTH for x in lines)
        assert lines[1].endswith("…") and lines[0] == LONG[: len(lines[0])]


class TestPlotFamily:
    def test_png_deterministic(self, res: Results) -> None:
        """The same inputs give the same PNG bytes; another label gives other bytes."""
        a = plot_family(res.points, res.curves, FAM, title="t")
        assert a[:8] == b"\x89PNG\r\n\x1a\n"
        assert a == plot_family(res.points, res.curves, FAM, title="t")
        assert a != plot_family(res.points, relabel(res.curves, "knn", "mlp#17"), FAM, title="t")

    def test_same_as_the_figure(self, res: Results) -> None:
        """plot_family's PNG is family_figure's, saved by png_bytes."""
        fig = family_figure(res.points, res.curves, "mtbench", title="t")
        assert plot_family(res.points, res.curves, "mtbench", title="t") == png_bytes(fig)
