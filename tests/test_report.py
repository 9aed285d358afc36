"""Reports of a run's curves (issue 14, points 1, 3, 4, 6): references apart from the ranked
routers, rank bands and paired comparisons checked against a direct computation on the
replicates, JSON with metadata, column selection in every format, runs without the new columns."""

from __future__ import annotations

import itertools
import json
import re
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from routerbench.engine import synth
from routerbench.engine.errors import DataError
from routerbench.routers.base import create
from routerbench.sweeps import schema
from routerbench.sweeps.labels import ONE_POINT_NOTE
from routerbench.sweeps.report import (
    SMALL_NOTE,
    ColumnError,
    CompareError,
    compare_text,
    leaderboard_table,
    render,
)
from routerbench.sweeps.run import evaluate

B = 40
FAMILIES = ["hellaswag", "mmlu"]
REFS = {"single", "oracle", "zero", "frontier"}
NEW = [
    "kind", "label", "trial", "aiq_frontier", "gap_closed", "gap_closed_lo", "gap_closed_hi",
    "aiq_reps", "max_quality_reps",
]  # fmt: skip
META = {
    "run_id": "r1",
    "spec_hash": "abc",
    "data_fingerprint": "fp",
    "synthetic": True,
    "data_source": "synthetic:3000",
    "routerbench_version": "0.1.0",
    "created": "2025-01-01T00:00:00+00:00",
    "cells": {"x": "deadbeef"},
}


@pytest.fixture(scope="module")
def curves() -> pd.DataFrame:
    """Routers (two close knn, one far, a random) and references on two families, B = 40."""
    data = synth.generate(3000, 0)
    routers = [
        create("knn", k=40),
        create("knn", k=35),
        create("knn", k=5),
        create("random", seed=0),
        create("oracle"),
        create("zero"),
        create("frontier"),
        create("single", model=data.models[0]),
        create("single", model=data.models[4]),
    ]
    return evaluate(data, routers, families=FAMILIES, bootstrap=B).curves


def rows(c: pd.DataFrame, **kw) -> list[dict]:
    return json.loads(render(c, "json", **kw))["rows"]


def section(text: str, family: str) -> str:
    """The text of one family's section of a table."""
    lines = text.splitlines()
    heads = [i for i, ln in enumerate(lines) if re.match(r"[\w-]+, split [\w-]+: ", ln)]
    i = next(i for i in heads if lines[i].startswith(f"{family}, split upstream: "))
    return "\n".join(lines[i : next((h for h in heads if h > i), len(lines))])


def direct_bands(reps: list[list[float]]) -> list[int]:
    """Bands from the replicates of routers sorted best first, written out here."""
    bands = [1]
    for above, below in itertools.pairwise(reps):
        d = np.asarray(above) - np.asarray(below)
        d = d[np.isfinite(d)]
        bands.append(bands[-1] + int(np.quantile(d, 0.025) > 0))
    return bands


class TestOrdering:
    def test_references_after_routers_unranked(self, curves: pd.DataFrame) -> None:
        """Per family, routers come first ranked 1..n by AIQ; references after, without rank."""
        recs = rows(curves)
        for fam in FAMILIES:
            fr = [r for r in recs if r["family"] == fam]
            kinds = [r["router"] in REFS for r in fr]
            assert kinds == sorted(kinds) and any(kinds) and not all(kinds)
            routers = [r for r in fr if r["router"] not in REFS]
            assert [r["rank"] for r in routers] == list(range(1, len(routers) + 1))
            assert [r["aiq"] for r in routers] == sorted((r["aiq"] for r in routers), reverse=True)
            refs = [r for r in fr if r["router"] in REFS]
            assert all(r["rank"] is None and r["band"] is None for r in refs)
            assert [r["router"] for r in refs][:3] == ["frontier", "oracle", "zero"]

    def test_table_shows_references_apart(self, curves: pd.DataFrame) -> None:
        """In the table no reference label sits in the routers' part; the frontier heads the
        references; the one-point note and the legend are printed."""
        text = render(curves)
        for fam in FAMILIES:
            sec = section(text, fam)
            ranked, _, refs = sec.partition("References (not ranked):")
            assert "oracle" not in ranked and "frontier" not in ranked and "single:" not in ranked
            assert "knn(k=40)" in ranked and "knn(k=40)" not in refs
            assert refs.strip().splitlines()[1].startswith("frontier ")
        assert ONE_POINT_NOTE in text and "band:" in text and "gap closed:" in text


class TestBands:
    def test_bands_match_direct_computation(self, curves: pd.DataFrame) -> None:
        """Bands equal those written out here from the replicates; some are shared, some not."""
        recs = rows(curves, columns=["family", "router", "aiq", "aiq_reps", "band"])
        seen = set()
        for fam in FAMILIES:
            routers = [r for r in recs if r["family"] == fam and r["router"] not in REFS]
            want = direct_bands([r["aiq_reps"] for r in routers])
            assert [r["band"] for r in routers] == want
            seen |= {b - a for a, b in itertools.pairwise(want)}
        assert seen == {0, 1}  # both a shared band and a new one occur

    def test_table_band_column(self, curves: pd.DataFrame) -> None:
        """The table's rank and band columns are the JSON's."""
        text = render(curves)
        for r in rows(curves):
            if r["rank"] is not None:
                line = next(
                    ln for ln in section(text, r["family"]).splitlines() if r["label"] in ln
                )
                assert line.split()[:3] == [str(r["rank"]), str(r["band"]), r["label"]]


class TestJson:
    def test_object_meta_columns_rows(self, curves: pd.DataFrame) -> None:
        """One object: meta from the manifest (no audit hashes), columns described as in the
        schema, params as objects, no NaN tokens, replicates and hulls left out."""
        text = render(curves, "json", meta=META)
        out = json.loads(text, parse_constant=lambda s: pytest.fail(f"token {s}"))  # NaN, Infinity
        assert set(out) == {"meta", "columns", "rows"}
        assert out["meta"] == {k: v for k, v in META.items() if k != "cells"}
        assert all(
            out["columns"][c] == schema.CURVES[c] for c in out["columns"] if c in schema.CURVES
        )
        assert {"rank", "band"} <= set(out["columns"])
        assert not {"aiq_reps", "max_quality_reps", "hull_cost", "hull_quality"} & set(
            out["columns"]
        )
        assert len(out["rows"]) == len(curves)
        for r in out["rows"]:
            assert isinstance(r["params"], dict) and set(r) == set(out["columns"])
        front = [r for r in out["rows"] if r["router"] == "frontier"]
        assert front and all(r["aiq_upstream"] is None for r in front)  # NaN as null
        knn = next(r for r in out["rows"] if r["label"] == "knn(k=5)")
        assert knn["params"]["k"] == 5

    def test_synthetic_from_meta_or_keyword(self, curves: pd.DataFrame) -> None:
        """The synthetic flag comes from meta, or the keyword; it heads the text formats."""
        assert json.loads(render(curves, "json"))["meta"]["synthetic"] is False
        assert json.loads(render(curves, "json", synthetic=True))["meta"]["synthetic"] is True
        assert render(curves, meta=META).startswith("SYNTHETIC DATA")
        assert render(curves, "markdown", synthetic=True).startswith("_Synthetic data")
        assert not render(curves).startswith("SYNTHETIC")
        assert leaderboard_table(curves, synthetic=True).startswith("SYNTHETIC DATA")


class TestColumns:
    COLS: ClassVar[list[str]] = ["label", "aiq", "aiq_reps"]

    def test_selected_in_every_format(self, curves: pd.DataFrame) -> None:
        """The chosen columns, in order, make the table, the Markdown table and the JSON rows."""
        knn = curves[curves["label"] == "knn(k=40)"].set_index("family")
        recs = rows(curves, columns=self.COLS)
        assert all(list(r) == self.COLS for r in recs)
        got = {r["aiq"] for r in recs if r["label"] == "knn(k=40)"}
        assert got == set(knn["aiq"]) and all(len(r["aiq_reps"]) == B for r in recs)
        text = render(curves, columns=self.COLS)
        md = render(curves, "markdown", columns=self.COLS)
        for fam in FAMILIES:
            line = next(ln for ln in section(text, fam).splitlines() if ln.startswith("knn(k=40)"))
            assert line.split()[1] == f"{knn.loc[fam, 'aiq']:.4f}"
        heads = [ln for ln in text.splitlines() if ln.startswith("label ")]
        assert len(heads) == 4 and all(h.split() == self.COLS for h in heads)  # 2 parts x 2
        assert md.count("| label | aiq | aiq_reps |") == 4 and "AIQ [95% CI]" not in md

    def test_unknown_column(self, curves: pd.DataFrame) -> None:
        """An unknown column is a ColumnError (a DataError, so a ValueError): one line naming
        it, a close match and the allowed names."""
        for fmt in ("table", "markdown", "json"):
            with pytest.raises(ColumnError) as e:
                render(curves, fmt, columns=["aiq", "gap_close"])
            msg = str(e.value)
            assert isinstance(e.value, DataError) and "\n" not in msg
            assert "'gap_close'" in msg and "'gap_closed'" in msg and "rank" in msg


class TestSections:
    def test_heading_has_prompts_and_cost_range(self, curves: pd.DataFrame) -> None:
        """Each family's heading gives its test prompts and AIQ cost range, in both formats."""
        text, md = render(curves), render(curves, "markdown")
        for fam, g in curves.groupby("family"):
            r = g.iloc[0]
            info = f"{r.n_test} test prompts; AIQ cost range [{r.c_min:.6f}, {r.c_max:.6f}]"
            assert f"{fam}, split upstream: {info}" in text
            assert f"### {fam}, split upstream\n\n{info}" in md

    def test_small_sample_note(self, curves: pd.DataFrame) -> None:
        """A small family's prompts are marked and the note explains the mark."""
        small = curves.assign(small_sample=curves["family"] == "mmlu")
        n = int(curves.loc[curves["family"] == "mmlu", "n_test"].iloc[0])
        text, md = render(small), render(small, "markdown")
        assert SMALL_NOTE in text and f" {n}*" in text and SMALL_NOTE not in render(curves)
        assert f"| {n}\\* |" in md and SMALL_NOTE.replace("*", "\\*", 1) in md

    def test_across_splits(self, curves: pd.DataFrame) -> None:
        """With two splits: a section per split and the mean and sd over splits."""
        two = pd.concat([curves, curves.assign(split="seeded-1", aiq=curves["aiq"] + 0.01)])
        text = render(two)
        assert "mmlu, split seeded-1:" in text and "mmlu, split upstream:" in text
        spread = text.split("Across splits (mean, sd):\n")[1]
        a = curves.loc[(curves["label"] == "knn(k=5)") & (curves["family"] == "mmlu"), "aiq"].item()
        line = next(ln for ln in spread.splitlines() if ln.startswith("mmlu") and "knn(k=5)" in ln)
        assert line.split()[2:4] == ["2", f"{a + 0.005:.4f}"]


class TestCompare:
    def test_matches_direct_paired_computation(self, curves: pd.DataFrame) -> None:
        """Differences, intervals and significance equal a direct computation on the
        replicates; each side's own AIQ [CI] is shown."""
        text = compare_text(curves, "knn(k=40)", "knn(k=5)")
        for fam in FAMILIES:
            g = curves[curves["family"] == fam].set_index("label")
            a, b = g.loc["knn(k=40)"], g.loc["knn(k=5)"]
            line = next(ln for ln in text.splitlines() if ln.startswith(fam + " "))
            for m in ("aiq", "max_quality"):
                d = np.asarray(a[f"{m}_reps"]) - np.asarray(b[f"{m}_reps"])
                lo, hi = np.quantile(d[np.isfinite(d)], [0.025, 0.975])
                sig = "yes" if lo > 0 or hi < 0 else "no"
                assert f"{a[m] - b[m]:+.4f} [{lo:+.4f}, {hi:+.4f}]  {sig}" in line
            assert f"{a.aiq:.4f} [{a.aiq_lo:.4f}, {a.aiq_hi:.4f}]" in line
            assert f"{b.aiq:.4f} [{b.aiq_lo:.4f}, {b.aiq_hi:.4f}]" in line

    def test_cell_id_and_order(self, curves: pd.DataFrame) -> None:
        """A cell id names a router too; swapping A and B negates the differences."""
        cid = curves.loc[curves["label"] == "knn(k=5)", "cell_id"].iloc[0]
        ab = compare_text(curves, "knn(k=40)", cid)
        ba = compare_text(curves, cid, "knn(k=40)")
        assert f"B = knn(k=5) ({cid})" in ab
        row = lambda t: next(ln for ln in t.splitlines() if ln.startswith("mmlu ")).split()  # noqa: E731
        d_ab, d_ba = float(row(ab)[8]), float(row(ba)[8])  # the AIQ difference
        assert d_ab != 0 and d_ab == pytest.approx(-d_ba, abs=1e-4)

    def test_unknown_router(self, curves: pd.DataFrame) -> None:
        """An unknown label is a CompareError (a DataError): one line, with close matches."""
        with pytest.raises(CompareError) as e:
            compare_text(curves, "knn(k=4)", "oracle")
        msg = str(e.value)
        assert isinstance(e.value, DataError) and "\n" not in msg
        assert "'knn(k=4)'" in msg and "knn(k=40)" in msg


class TestOldRuns:
    def test_render_without_new_columns(self, curves: pd.DataFrame) -> None:
        """Curves written before kind/label/gap/replicates: kind and label derived, references
        still apart, gaps and bands empty, every format renders, compare says no replicates."""
        old = curves.drop(columns=NEW)
        text = render(old)
        assert "References (not ranked):" in text and "knn(k=40)" in text
        for fmt in ("markdown", "json"):
            assert render(old, fmt)
        recs = rows(old)
        assert {r["kind"] for r in recs if r["router"] in REFS} == {"reference"}
        assert all(r["gap_closed"] is None and r["band"] is None for r in recs)
        assert [r["label"] for r in recs if r["router"] == "knn"][:3] == [
            r["label"] for r in rows(curves) if r["router"] == "knn"
        ][:3]
        assert "n/a (no replicates)" in compare_text(old, "knn(k=40)", "oracle")

    def test_empty(self) -> None:
        """A run without curves rows renders in every format."""
        empty = pd.DataFrame(columns=list(schema.CURVES))
        assert render(empty) == "(no results)"
        assert json.loads(render(empty, "json"))["rows"] == []
        assert render(empty, "markdown") == "(no results)"
