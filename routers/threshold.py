"""RouteLLM-style strong/weak routing: send a prompt to the strong model when a predictor's score
for it reaches a threshold.

The score is the predicted quality gain of the strong model over the weak one (from any predictive
router: KNN, MLP or linear). The knob is the threshold: a prompt goes strong iff its score is >=
the threshold, for every threshold (-inf: all strong; +inf: all weak, as scores are finite; a
threshold equal to a score sends that prompt strong); NaN is refused.  Its exact path steps just
above every distinct score.
``calibrate`` turns a target share of strong-model calls into the threshold that gives it on the
training prompts, as RouteLLM calibrates on a reference set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError
from routerbench.engine.stepsums import StepSums, knob_problem
from routerbench.routers.base import ExactPath, Fitted, Router, check, create, register
from routerbench.routers.params import SEED, Constraint, Model, Options, PromptCount

SHARES = np.linspace(0.0, 1.0, 21)  # default operating points: strong-call shares 0%, 5%, ...


def threshold_for_share(scores: np.ndarray, share: float) -> float:
    """The threshold at which ``share`` of ``scores`` are >= it (strong calls).

    >>> s = np.array([0.1, 0.2, 0.3, 0.4])
    >>> [threshold_for_share(s, p) for p in (0.0, 0.5, 1.0)]
    [inf, 0.3, 0.1]
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1] (got {share})")
    k = round(share * len(scores))
    if k == 0:
        return float("inf")
    return float(np.sort(scores)[::-1][k - 1])


@dataclass(frozen=True, eq=False)
class FittedThreshold(Fitted):
    strong: int
    weak: int
    predictor: Any
    train_scores: np.ndarray
    knob_name: str = "threshold"

    def score(self, data: RoutingData) -> np.ndarray:
        P = self.predictor.score(data).P
        return np.asarray(P[:, self.strong] - P[:, self.weak], dtype=np.float64)

    def calibrate(self, share: float) -> float:
        """The threshold that sends ``share`` of the training prompts to the strong model."""
        return threshold_for_share(self.train_scores, share)

    def decide(self, scores: np.ndarray, knobs: np.ndarray) -> np.ndarray:
        if problem := knob_problem(knobs, self.knob_name):
            raise RouterError(problem)
        strong = scores[None, :] >= np.asarray(knobs, dtype=np.float64).reshape(-1)[:, None]
        return np.where(strong, self.strong, self.weak).astype(np.int64)

    def default_knobs(self) -> np.ndarray:
        return np.array([self.calibrate(s) for s in SHARES])

    def exact_path(self, scores: np.ndarray, data: RoutingData) -> ExactPath:
        """Exact cost and quality sums for every threshold, as a step function of the threshold.

        A prompt goes weak once the threshold exceeds its score, so its step is at the next float
        above the score; the first knot (-inf) has every prompt strong.  Sums are correctly
        rounded (as ``math.fsum`` of the decisions' outcomes at any threshold from the knot on).
        """
        n, rows = data.n_prompts, np.arange(data.n_prompts)
        cols = (self.strong, self.weak)
        strong, weak = (np.stack([data.cost[rows, j], data.quality[rows, j]]) for j in cols)
        keys = np.nextafter(scores, np.inf)
        steps = StepSums.build(strong, weak, strong, rows, keys, np.zeros(n, np.intp), 1)
        knots = np.concatenate([[-np.inf], np.unique(keys)])
        cost, quality = steps.totals(knots)[:, 0]
        return knots, cost, quality, n


@register("threshold")
@dataclass(frozen=True, kw_only=True)
class ThresholdRouter(Router):
    """Strong model when ``P̂[strong] − P̂[weak] >= threshold``; ``predictor`` names a predictive
    router (``knn``, ``mlp`` or ``linear``) with default hyperparameters plus ``k`` for KNN."""

    strong: str = "gpt-4-1106-preview"
    weak: str = "mistralai/mixtral-8x7b-chat"
    predictor: str = "knn"
    k: int = 10
    seed: int = 0

    knob = "threshold"
    constraints: ClassVar[dict[str, Constraint]] = {
        "strong": Model(),
        "weak": Model(),
        "predictor": Options(("knn", "mlp", "linear")),
        "k": PromptCount(),
        "seed": SEED,
    }
    example: ClassVar[dict[str, Any]] = {"k": 5}

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.strong != self.weak, "threshold", "strong and weak must be different models")

    def fit(self, train: RoutingData) -> FittedThreshold:
        strong, weak = train.model_index(self.strong), train.model_index(self.weak)
        params: dict[str, Any] = {"seed": self.seed}
        if self.predictor == "knn":
            params["k"] = self.k
        predictor = create(self.predictor, **params).fit(train)
        fitted = FittedThreshold(strong, weak, predictor, np.empty(0))
        return FittedThreshold(strong, weak, predictor, fitted.score(train))
