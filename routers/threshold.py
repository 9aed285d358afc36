"""RouteLLM-style strong/weak routing: send a prompt to the strong model when a predictor's score
for it reaches a threshold.

The score is the predicted quality gain of the strong model over the weak one (from any predictive
router: KNN, MLP or linear). The knob is the threshold; its exact path is every distinct score.
``calibrate`` turns a target share of strong-model calls into the threshold that gives it on the
training prompts, as RouteLLM calibrates on a reference set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from routerbench.engine.data import RoutingData
from routerbench.routers.base import check, create, register

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
class FittedThreshold:
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
        strong = scores[None, :] >= np.asarray(knobs, dtype=np.float64)[:, None]
        return np.where(strong, self.strong, self.weak).astype(np.int64)

    def default_knobs(self) -> np.ndarray:
        return np.array([self.calibrate(s) for s in SHARES])

    def exact_path(
        self, scores: np.ndarray, data: RoutingData
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Cost and quality sums for every threshold, as a step function of the threshold.

        A prompt goes strong while the threshold is <= its score, so its step is just above the
        score (``nextafter``); the first knot (-inf) has every prompt strong.
        """
        rows = np.arange(data.n_prompts)
        cs, cw = data.cost[rows, self.strong], data.cost[rows, self.weak]
        qs, qw = data.quality[rows, self.strong], data.quality[rows, self.weak]
        order = np.argsort(scores, kind="stable")
        knots = np.concatenate([[-np.inf], np.nextafter(scores[order], np.inf)])
        cost = np.concatenate([[cs.sum()], cs.sum() + np.cumsum((cw - cs)[order])])
        quality = np.concatenate([[qs.sum()], qs.sum() + np.cumsum((qw - qs)[order])])
        last = np.append(knots[1:] != knots[:-1], True)  # one value per distinct knot
        return knots[last], cost[last], quality[last], data.n_prompts


@register("threshold")
@dataclass(frozen=True, kw_only=True)
class ThresholdRouter:
    """Strong model when ``P̂[strong] − P̂[weak] >= threshold``; ``predictor`` names a predictive
    router (``knn``, ``mlp`` or ``linear``) with default hyperparameters plus ``k`` for KNN."""

    strong: str = "gpt-4-1106-preview"
    weak: str = "mistralai/mixtral-8x7b-chat"
    predictor: str = "knn"
    k: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check(
            self.predictor in ("knn", "mlp", "linear"),
            "threshold",
            f"predictor must be one of ['knn', 'mlp', 'linear'] (got {self.predictor!r})",
        )
        check(self.strong != self.weak, "threshold", "strong and weak must be different models")
        check(
            isinstance(self.k, int) and self.k >= 1, "threshold", f"k must be >= 1 (got {self.k!r})"
        )

    def fit(self, train: RoutingData) -> FittedThreshold:
        strong, weak = train.model_index(self.strong), train.model_index(self.weak)
        params: dict[str, Any] = {"seed": self.seed}
        if self.predictor == "knn":
            params["k"] = self.k
        predictor = create(self.predictor, **params).fit(train)
        fitted = FittedThreshold(strong, weak, predictor, np.empty(0))
        return FittedThreshold(strong, weak, predictor, fitted.score(train))
