"""Predictive routers: KNN, MLP and linear models predict every model's quality from the prompt.

Each fits a :class:`~routerbench.routers.predictors.FittedPredictive`: predicted quality and a cost
term per prompt and model, traded by the λ rule (see :mod:`routerbench.routers.predictors`, which
also describes the cost terms and the features they read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from routerbench.engine import neighbours
from routerbench.engine.data import RoutingData
from routerbench.engine.evaluate import one_blas_thread
from routerbench.routers.base import Router, check, register
from routerbench.routers.params import SEED, Constraint, Each, Interval, Options, PromptCount
from routerbench.routers.predictors import (
    COST_MODELS,
    FittedPredictive,
    LengthCost,
    Regression,
    fit_regressors,
    prepare,
)

__all__ = ["KNNRouter", "LinearRouter", "MLPRouter"]

# The hyperparameters every predictive router has.
_COMMON = {"cost_model": Options(COST_MODELS), "feature_dim": Interval(int, 1), "seed": SEED}


def _work_group(self: Any) -> str:
    """Predictive routers with the same ``feature_dim`` and ``seed`` fit the same text featurizer
    on a family's prompts (memoised per process), and KNN routers share neighbour searches: an
    executor evaluates such cells in one process."""
    return f"predictive|feature_dim={self.feature_dim}|seed={self.seed}"


# ------------------------------------------------------------------------------------ KNN


def _neighbour_mean(values: np.ndarray, idx: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Mean of ``values[idx[i, j], m]`` over the neighbours j, ignoring NaN; ``fallback[m]``
    where every neighbour's value is NaN.  Memory O(n·m), not O(n·k·m)."""
    total = np.zeros((idx.shape[0], values.shape[1]))
    count = np.zeros_like(total)
    for j in range(idx.shape[1]):
        v = values[idx[:, j]]
        known = ~np.isnan(v)
        total += np.where(known, v, 0.0)
        count += known
    return np.where(count > 0, total / np.maximum(count, 1), fallback[None, :])


@dataclass(frozen=True, eq=False)
class _Neighbours:
    """Quality and cost: means over the k nearest training rows (NaN ignored; the training mean
    where no neighbour has a value). The search (:mod:`routerbench.engine.neighbours`) is shared
    in this process by every k on the same training and scored rows."""

    index: neighbours.Index  # the training features and their content key
    k: int
    quality: np.ndarray  # training rows [n_train, m]; every column has a known value
    cost: np.ndarray

    def __call__(self, x: np.ndarray, data: RoutingData) -> tuple[np.ndarray, np.ndarray]:
        idx = self.index.top_k(x, self.k)
        q, c = self.quality, self.cost
        return (
            _neighbour_mean(q, idx, np.nanmean(q, axis=0)),
            _neighbour_mean(c, idx, np.nanmean(c, axis=0)),
        )


@register("knn")
@dataclass(frozen=True, kw_only=True)
class KNNRouter(Router):
    """P̂ = unweighted mean quality of the k nearest training prompts (brute force, NaN ignored;
    ties to the earlier training prompt: :mod:`routerbench.engine.neighbours`)."""

    k: int = 10
    metric: str = "cosine"
    cost_model: str = "expected"
    feature_dim: int = 64
    seed: int = 0

    knob = "lambda"
    constraints: ClassVar[dict[str, Constraint]] = {
        "k": PromptCount(),
        "metric": Options(("cosine", "euclidean")),
        **_COMMON,
    }
    example: ClassVar[dict[str, Any]] = {"k": 5}

    work_group = _work_group

    @one_blas_thread()
    def fit(self, train: RoutingData) -> FittedPredictive:
        check(
            self.k <= train.n_prompts,
            "knn",
            f"k={self.k} exceeds the {train.n_prompts} training rows",
        )
        x, featurizer, price = prepare("knn", train, self.cost_model, self.feature_dim, self.seed)
        index = neighbours.Index.of(x, self.metric)
        predict = _Neighbours(index, self.k, train.quality, train.cost)
        return FittedPredictive(train.models, featurizer, x.shape[1], predict, price)


# ------------------------------------------------------------------------------------ MLP


@register("mlp")
@dataclass(frozen=True, kw_only=True)
class MLPRouter(Router):
    """P̂ from scikit-learn ``MLPRegressor`` (relu, adam); predictions unclipped, as upstream.

    ``per_model=False``: one multi-output network on the complete training rows.
    ``per_model=True`` (upstream): one network per model, on the rows where its quality is known.
    """

    hidden: tuple[int, ...] = (100,)
    alpha: float = 1e-4
    learning_rate: float = 1e-3
    max_iter: int = 200
    per_model: bool = False
    cost_model: str = "expected"
    feature_dim: int = 64
    seed: int = 1234

    knob = "lambda"
    constraints: ClassVar[dict[str, Constraint]] = {
        "hidden": Each(Interval(int, 1)),
        "alpha": Interval(float, 0),
        "learning_rate": Interval(float, 0, closed="neither"),
        "max_iter": Interval(int, 1),
        **_COMMON,
    }
    example: ClassVar[dict[str, Any]] = {"hidden": (16,), "max_iter": 60}
    work_group = _work_group

    @one_blas_thread()
    def fit(self, train: RoutingData) -> FittedPredictive:
        from sklearn.neural_network import MLPRegressor

        def make() -> Any:
            return MLPRegressor(
                hidden_layer_sizes=self.hidden,
                activation="relu",
                solver="adam",
                alpha=self.alpha,
                learning_rate_init=self.learning_rate,
                max_iter=self.max_iter,
                random_state=self.seed,
            )

        x, featurizer, price = prepare("mlp", train, self.cost_model, self.feature_dim, self.seed)
        ests = fit_regressors("mlp", make, x, train, self.per_model)
        predict = Regression(ests, LengthCost.fit(train))
        return FittedPredictive(train.models, featurizer, x.shape[1], predict, price)


# --------------------------------------------------------------------------------- linear


@register("linear")
@dataclass(frozen=True, kw_only=True)
class LinearRouter(Router):
    """P̂ from linear models.

    ``per_model=True`` (upstream): one ``LinearSVR(C, random_state=seed)`` per model, on the rows
    where its quality is known.  ``per_model=False``: one multi-output ``Ridge(alpha=1/C)`` on the
    complete training rows (fast).
    """

    C: float = 1.0
    per_model: bool = True
    cost_model: str = "expected"
    feature_dim: int = 64
    seed: int = 1234

    knob = "lambda"
    constraints: ClassVar[dict[str, Constraint]] = {
        "C": Interval(float, 0, closed="neither"),
        **_COMMON,
    }
    work_group = _work_group

    @one_blas_thread()
    def fit(self, train: RoutingData) -> FittedPredictive:
        from sklearn.linear_model import Ridge
        from sklearn.svm import LinearSVR

        def make() -> Any:
            if self.per_model:
                return LinearSVR(C=self.C, random_state=self.seed)
            return Ridge(alpha=1.0 / self.C)

        x, featurizer, price = prepare(
            "linear", train, self.cost_model, self.feature_dim, self.seed
        )
        ests = fit_regressors("linear", make, x, train, self.per_model)
        predict = Regression(ests, LengthCost.fit(train))
        return FittedPredictive(train.models, featurizer, x.shape[1], predict, price)
