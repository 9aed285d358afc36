"""Paired comparisons of routers on the same prompts, and rank bands.

Replicate b of every curves row of a family reweights the same test prompts (weights keyed by
prompt and replicate, see :mod:`routerbench.engine.bootstrap`), so the difference of two routers'
AIQ (or max quality) in replicate b is a draw of the *paired* difference: its percentile interval
is much narrower than the two routers' own intervals suggest when both err on the same prompts.
Rows are comparable when their replicate lists have the same length and were drawn with the same
seed (same run, or runs of one spec on the same data and split).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from routerbench.engine.bootstrap import interval

METRICS = ("aiq", "max_quality")


def paired_interval(reps_a: Any, reps_b: Any, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the per-replicate differences ``a − b`` (NaN replicates left out;
    NaN ends when fewer than 2 remain or the lengths differ)."""
    a = np.asarray(reps_a, dtype=np.float64)
    b = np.asarray(reps_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        return (np.nan, np.nan)
    d = a - b
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return (np.nan, np.nan)
    lo, hi = interval(d, confidence, bounds=(-1.0, 1.0))
    return (float(lo), float(hi))


def paired(a: Any, b: Any, confidence: float = 0.95) -> dict[str, Any]:
    """The paired differences ``a − b`` of two curves rows (mappings with ``aiq``, ``aiq_reps``,
    ``max_quality``, ``max_quality_reps``): per metric the difference, its interval, and whether
    the interval excludes 0."""
    out: dict[str, Any] = {}
    for m in METRICS:
        lo, hi = paired_interval(a[f"{m}_reps"], b[f"{m}_reps"], confidence)
        out[f"{m}_diff"] = float(a[m]) - float(b[m])
        out[f"{m}_diff_lo"], out[f"{m}_diff_hi"] = lo, hi
        out[f"{m}_significant"] = bool(lo > 0.0 or hi < 0.0)
    return out


def pairs(curves: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Every pair of rows of each (split, family), the higher AIQ first: labels and the paired
    differences of AIQ and max quality with their intervals."""
    rows = []
    for (split, fam), g in curves.groupby(["split", "family"], sort=True):
        g = g.sort_values("aiq", ascending=False, kind="stable")
        recs = g.to_dict("records")
        for i, a in enumerate(recs):
            for b in recs[i + 1 :]:
                rows.append(
                    {"family": fam, "split": split, "a": a["label"], "b": b["label"]}
                    | paired(a, b, confidence)
                )
    cols = ["family", "split", "a", "b"] + [
        f"{m}_{s}" for m in METRICS for s in ("diff", "diff_lo", "diff_hi", "significant")
    ]
    return pd.DataFrame(rows, columns=cols)


def rank_bands(values: Sequence[float], reps: Sequence[Any], confidence: float = 0.95) -> list[int]:
    """Rank bands of rows already sorted best first: band 1 for the first; each next row stays
    in the band of the row above unless their paired difference is significant (its interval
    lies above 0), when it starts the next band. Rows without replicates are never significant.

    >>> rank_bands([0.9, 0.8, 0.5], [[0.9, 0.91, 0.89], [0.8, 0.92, 0.7], [0.5, 0.52, 0.49]])
    [1, 1, 2]
    """
    bands: list[int] = []
    for i in range(len(values)):
        if i == 0:
            bands.append(1)
            continue
        lo, _ = paired_interval(reps[i - 1], reps[i], confidence)
        bands.append(bands[-1] + int(lo > 0.0))
    return bands
