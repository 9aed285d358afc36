"""Evaluate routers on a split of a data set: the points and curves tables.

One function evaluates; callers decide which routers and knobs. Every router configuration gives
one point per (family, knob): the sum and mean of realised cost and the mean quality on the
family's test prompts. Per (family, router configuration) the curve is the non-decreasing convex
hull of its points, with AIQ over a fixed cost range per family: from the cheapest to the dearest
single model's mean cost per query on that family's test prompts (the zero router's range),
reported as ``c_min``/``c_max``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from routerbench.engine.data import RoutingData
from routerbench.engine.evaluate import Sums, outcome_sums, per_prompt_sums
from routerbench.engine.metrics import aiq, aiq_upstream, max_quality, ndch
from routerbench.engine.splits import seeded_split, upstream_split
from routerbench.routers.base import Fitted, Router, name_of, params_json
from routerbench.routers.reference import SingleModel

SPLITS = ("upstream", "seeded")


@dataclass(frozen=True)
class Results:
    """``points``: one row per (family, router configuration, knob); ``curves``: one per
    (family, router configuration)."""

    points: pd.DataFrame
    curves: pd.DataFrame


def split_mask(data: RoutingData, split: str = "upstream", seed: int = 0) -> np.ndarray:
    """Train mask for ``split`` in :data:`SPLITS`."""
    if split == "upstream":
        return upstream_split(data.families)
    if split == "seeded":
        return seeded_split(data.families, seed)
    raise ValueError(f"split must be one of {list(SPLITS)} (got {split!r})")


def evaluate(
    data: RoutingData,
    routers: Sequence[Router],
    *,
    train_mask: np.ndarray,
    families: Sequence[str] | None = None,
    progress: Callable[[str], Any] | None = None,
) -> Results:
    """Fit each router per family on the train prompts and evaluate it on the test prompts."""
    fams = list(families) if families is not None else data.family_names()
    rows: list[dict[str, Any]] = []
    exact: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}
    for fam in fams:
        in_fam = data.families == fam
        train, test = data.take(in_fam & train_mask), data.take(in_fam & ~train_mask)
        if train.n_prompts == 0 or test.n_prompts == 0:
            continue
        group = np.zeros(test.n_prompts, dtype=np.int64)
        for router in routers:
            if progress:
                progress(f"{fam}: {name_of(router)}")
            t0 = time.perf_counter()
            fitted = router.fit(train)
            scores = fitted.score(test)
            knobs = np.asarray(fitted.default_knobs(), dtype=np.float64)
            sums = knob_sums(fitted, scores, test, knobs, group, 1)
            cost_mean, quality_mean = sums.means()
            key = (fam, name_of(router), params_json(router))
            exact_path = getattr(fitted, "exact_path", None)
            if exact_path is not None:
                _, path_cost, path_quality, n = exact_path(scores, test)
                exact[key] = (path_cost / n, path_quality / n)
            elapsed = time.perf_counter() - t0
            for j, knob in enumerate(knobs):
                rows.append(
                    {
                        "family": fam,
                        "router": key[1],
                        "params": key[2],
                        "knob_name": fitted.knob_name,
                        "knob": float(knob),
                        "cost_sum": float(sums.cost[0, j]),
                        "cost_mean": float(cost_mean[0, j]),
                        "quality_mean": float(quality_mean[0, j]),
                        "n": int(sums.count[0]),
                        "status": "ok",
                        "error": "",
                        "seconds": elapsed,
                    }
                )
    points = pd.DataFrame(rows)
    return Results(points=points, curves=curves_from_points(points, exact))


def knob_sums(
    fitted: Fitted,
    scores: Any,
    data: RoutingData,
    knobs: np.ndarray,
    group: np.ndarray,
    n_groups: int,
) -> Sums:
    """Per-group outcome sums of a fitted router at each knob value.

    A router whose prompts each go to one model gives decisions (``decide``); one whose outcome is
    not a single model's (a cascade pays for every call) gives per-prompt outcomes (``outcomes``).
    """
    outcomes = getattr(fitted, "outcomes", None)
    if outcomes is not None:
        cost, quality = outcomes(scores, data, knobs)
        return per_prompt_sums(cost, quality, group, n_groups)
    choice = fitted.decide(scores, knobs)
    return outcome_sums(data.quality, data.cost, choice, group, n_groups)


def curves_from_points(
    points: pd.DataFrame,
    exact: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """Per router configuration: hull, AIQ (paper and upstream variants), max quality, its cost.

    Where a router has an exact parameter path (``exact[(family, router, params)]``: mean cost and
    quality at every step, in knob order), the curve is computed from the path instead of the
    grid points: every operating point, not a sample of them.
    """
    exact = exact or {}
    out: list[dict[str, Any]] = []
    for fam, fp in points[points["status"] == "ok"].groupby("family", sort=False):
        single = fp[fp["router"] == "single"]
        ref = single if len(single) else fp
        c_min, c_max = float(ref["cost_mean"].min()), float(ref["cost_mean"].max())
        groups = list(fp.groupby(["router", "params"], sort=False))
        curves = [
            exact.get(
                (str(fam), str(router), str(params)),
                (g["cost_mean"].to_numpy(), g["quality_mean"].to_numpy()),
            )
            for (router, params), g in groups
        ]
        upstream = aiq_upstream(curves)
        for ((router, params), _), (c, q), aiq_up in zip(groups, curves, upstream, strict=True):
            hc, hq = ndch(c, q)
            qmax, cmax = max_quality(c, q)
            out.append(
                {
                    "family": fam,
                    "router": router,
                    "params": params,
                    "hull_cost": hc.tolist(),
                    "hull_quality": hq.tolist(),
                    "aiq": aiq(hc, hq, c_min, c_max),
                    "c_min": c_min,
                    "c_max": c_max,
                    "aiq_upstream": float(aiq_up),
                    "max_quality": qmax,
                    "cost_at_max_quality": cmax,
                }
            )
    return pd.DataFrame(out)


def reference_routers(data: RoutingData, seed: int = 0) -> list[Router]:
    """Every single model, the oracle, the zero router and a random router."""
    from routerbench.routers.reference import Oracle, RandomRouter, ZeroRouter

    singles: list[Router] = [SingleModel(model=m) for m in data.models]
    return [*singles, Oracle(), ZeroRouter(seed=seed), RandomRouter(seed=seed)]
