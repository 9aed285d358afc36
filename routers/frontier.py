"""The oracle frontier: the best any router could do at every cost, a reference.

Each prompt goes to ``argmax_m λ·quality[i, m] − cost[i, m]``: the λ rule of the predictive
routers with the *true* outcomes in place of predictions.  Over the exact λ path its points are
the vertices of the upper concave envelope of every deterministic routing of the prompts (the
objective is separable by prompt), so the hull of no router that calls one model per prompt lies
above it on the same prompts: its AIQ is the ceiling of a family, and a router's *gap closed* is
measured against it (see :mod:`routerbench.sweeps.summary`).  At λ = +inf it is the oracle (best
quality, then cheapest).  A router that may call no model (the oracle with
``no_model_correct="upstream"``: cost 0 where every model scores 0) can lie above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from routerbench.engine.data import RoutingData
from routerbench.engine.paths import ZERO_PLUS, lambda_path
from routerbench.routers.base import ExactPath, Fitted, Router, register
from routerbench.routers.params import Constraint, Interval
from routerbench.routers.predictors import PredictiveScores, decide_lambda, lambda_exact_path

GRID = 64  # λ grid points taken from the training prompts' path (the bootstrap's grid)


@dataclass(frozen=True)
class FittedFrontier(Fitted):
    """Scores are the outcomes themselves; ``knobs``: a λ grid from the training prompts."""

    knobs: np.ndarray
    knob_name: str = "lambda"

    def score(self, data: RoutingData) -> PredictiveScores:
        return PredictiveScores(data.quality, data.cost)

    def decide(self, scores: PredictiveScores, knobs: np.ndarray) -> np.ndarray:
        return decide_lambda(scores.P, scores.C, knobs)

    def default_knobs(self) -> np.ndarray:
        return self.knobs.copy()

    def exact_path(self, scores: PredictiveScores, data: RoutingData) -> ExactPath:
        return lambda_exact_path(scores, data)


@register("frontier")
@dataclass(frozen=True, kw_only=True)
class Frontier(Router):
    """The oracle frontier (a reference): per prompt, true quality minus λ·cost, over every λ.

    ``grid``: how many λ values of the training prompts' path the bootstrap replicates use (the
    reported curve is the exact path of the test prompts).
    """

    grid: int = GRID
    knob = "lambda"
    constraints: ClassVar[dict[str, Constraint]] = {"grid": Interval(int, 2)}

    def fit(self, train: RoutingData) -> FittedFrontier:
        return FittedFrontier(lambda_grid(train, self.grid))


def lambda_grid(train: RoutingData, size: int) -> np.ndarray:
    """``size`` λ values spread over the breakpoints of the training prompts' frontier (evenly
    by rank), ending at +inf (the oracle); just above 0 (the cheapest choices) comes first."""
    path = lambda_path(
        train.quality,
        train.cost,
        train.quality,
        train.cost,
        np.zeros(train.n_prompts, np.intp),
        1,
    )
    lams = np.unique(path.breakpoints(0)[0])
    lams = lams[lams >= ZERO_PLUS]
    if len(lams) > size - 1:
        lams = lams[np.linspace(0, len(lams) - 1, size - 1).round().astype(np.intp)]
    return np.append(np.union1d(lams, [ZERO_PLUS]), np.inf)
