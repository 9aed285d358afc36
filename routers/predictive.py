"""Predictive routers: predict every model's quality from the prompt, then pay for it with λ.

A fitted router scores a prompt set once: ``P[i, m]``, the predicted quality of model m on prompt
i, and ``C[i, m]``, the cost term.  The decision at willingness to pay ``λ > 0`` is
``argmax_m λ·P[i, m] − C[i, m]`` (ties: the lowest model column, i.e. response order); ``λ <= 0``
ignores cost (``argmax_m P[i, m]``), as in the original.

Cost terms (``cost_model``):

- ``"expected"`` (default): the prompt's predicted cost for each model.  KNN: the neighbours' mean
  cost.  MLP and linear: a per-model least-squares line in the prompt's length in characters,
  clipped at 0 (the training mean cost per model when prompts are absent).
- ``"upstream"``: the original's constant per-model term, output / 1e7 + input / 1e7 with the
  prices in USD per 1M tokens (a per-token price 10x too small): 4e-6 for gpt-4-1106-preview.

Features: ``data.features`` when the training data has them; otherwise a TF-IDF + SVD
:class:`~routerbench.engine.features.TextFeaturizer` fitted on the training prompts only and
stored in the fitted router, which transforms the prompts it scores.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError, RouterError
from routerbench.engine.evaluate import one_blas_thread
from routerbench.engine.features import TextFeaturizer, fitted_featurizer
from routerbench.engine.parallel import Deferred, map_fits, resolved
from routerbench.engine.paths import UPSTREAM_LAMBDAS, knob_problem, lambda_choices, lambda_path
from routerbench.routers.base import check, register

__all__ = [
    "UPSTREAM_LAMBDAS",
    "FittedPredictive",
    "KNNRouter",
    "LinearRouter",
    "MLPRouter",
    "PredictiveScores",
    "decide_lambda",
    "lambda_exact_path",
    "upstream_price",
]

UPSTREAM_PRICE_DIVISOR = 1e7  # upstream: a token costs (USD per 1M tokens) / 1e7, 10x too little
COST_MODELS = ("expected", "upstream")


def upstream_price(models: tuple[str, ...] | list[str]) -> np.ndarray:
    """The original's constant cost term per model, with its floating-point operations:
    output price / 1e7 + input price / 1e7 (USD per 1M tokens; its request cost is 0 for every
    model here). ``(in + out) * 1e-7`` differs in the last bit for code-llama (0.776, 0.776),
    enough to flip an exact tie.

    >>> upstream_price(["gpt-4-1106-preview", "mistralai/mistral-7b-chat"])
    array([4.e-06, 4.e-08])
    >>> float(upstream_price(["meta/code-llama-instruct-34b-chat"])[0])
    1.5520000000000001e-07
    """
    from routerbench.engine.synth import PRICES

    for name in models:
        if name not in PRICES:
            raise RouterError(
                f"cost_model 'upstream': no known price for model {name!r} "
                f"(known: {sorted(PRICES)})"
            )
    d = UPSTREAM_PRICE_DIVISOR
    return np.array([PRICES[name][1] / d + PRICES[name][0] / d for name in models])


def decide_lambda(P: np.ndarray, C: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """Decisions ``[k, n]`` by the one λ rule that the exact path follows too
    (:func:`~routerbench.engine.paths.lambda_choices`): ``argmax_m lams[k]·P[i, m] − C[i, m]``
    for λ > 0; ``argmax_m P`` where λ <= 0 (-inf too); at λ = +inf the highest P, then the lowest
    C.  Ties go to the lowest column.  NaN: a RouterError naming the knob.

    >>> P = np.array([[0.9, 0.5], [0.2, 0.3]]); C = np.array([[1.0, 0.1], [1.0, 0.1]])
    >>> decide_lambda(P, C, np.array([0.0, 1.0, 100.0]))
    array([[0, 1],
           [1, 1],
           [0, 1]])
    """
    if problem := knob_problem(lams, "lambda"):
        raise RouterError(problem)
    return lambda_choices(P, C, lams)


@dataclass(frozen=True)
class PredictiveScores:
    """``P[n, m]``: predicted quality; ``C[n, m]``: the cost term λ trades it against."""

    P: np.ndarray
    C: np.ndarray


@dataclass(frozen=True, eq=False)
class FittedPredictive:
    """A fitted predictive router (picklable: plain arrays and fitted scikit-learn objects).

    ``predict(x, data)`` maps features to (predicted quality, expected cost); ``price`` is the
    upstream per-model cost term, used instead of the expected cost when not None.
    """

    models: tuple[str, ...]
    featurizer: TextFeaturizer | None  # None: read data.features
    n_features: int
    predict: Callable[[np.ndarray, RoutingData], tuple[np.ndarray, np.ndarray]]
    price: np.ndarray | None
    knob_name: str = "lambda"

    def features(self, data: RoutingData) -> np.ndarray:
        """The prompt features this router reads (the same source as at fit time)."""
        if self.featurizer is not None:
            if data.prompts is None:
                raise DataError(f"{data.source}: the router was fitted on prompt text; no prompts")
            return self.featurizer.transform(data.prompts)
        if data.features is None or data.features.shape[1] != self.n_features:
            got = None if data.features is None else data.features.shape[1]
            raise DataError(f"{data.source}: expected features[n, {self.n_features}], got {got}")
        return data.features

    @one_blas_thread()
    def score(self, data: RoutingData) -> PredictiveScores:
        if data.models != self.models:
            raise DataError(
                f"{data.source}: models {list(data.models)} differ from the training models "
                f"{list(self.models)}"
            )
        P, C = self.predict(self.features(data), data)
        if self.price is not None:
            C = np.repeat(self.price[None, :], len(P), axis=0)
        return PredictiveScores(P, C)

    def decide(self, scores: PredictiveScores, knobs: np.ndarray) -> np.ndarray:
        return decide_lambda(scores.P, scores.C, knobs)

    def default_knobs(self) -> np.ndarray:
        return UPSTREAM_LAMBDAS.copy()

    def exact_path(
        self, scores: PredictiveScores, data: RoutingData
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Every operating point, as a step function of λ: breakpoints (knot 0: every λ <= 0, cost
        ignored; knot ZERO_PLUS: the cheapest choices just above 0, where they differ), the exact
        cost and quality sums from each breakpoint on, and the prompt count."""
        return lambda_exact_path(scores, data)


def lambda_exact_path(
    scores: PredictiveScores, data: RoutingData
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The exact λ path of ``scores`` on ``data`` (one group): breakpoints, the cost and quality
    sums from each breakpoint on, and the prompt count."""
    path = lambda_path(
        scores.P, scores.C, data.quality, data.cost, np.zeros(data.n_prompts, np.intp), 1
    )
    lams, cost, quality = path.breakpoints(0)
    return lams, cost, quality, data.n_prompts


# ----------------------------------------------------------------------------- shared fitting


def _check_common(name: str, cost_model: str, feature_dim: int, seed: int) -> None:
    check(
        cost_model in COST_MODELS,
        name,
        f"cost_model must be one of {list(COST_MODELS)} (got {cost_model!r})",
    )
    check(
        isinstance(feature_dim, int) and feature_dim >= 1,
        name,
        f"feature_dim must be an integer >= 1 (got {feature_dim!r})",
    )
    check(
        isinstance(seed, int) and 0 <= seed < 2**32,
        name,
        f"seed must be an integer in [0, 2**32) (got {seed!r})",
    )


def _prepare(
    name: str, train: RoutingData, cost_model: str, feature_dim: int, seed: int
) -> tuple[np.ndarray, TextFeaturizer | None, np.ndarray | None]:
    """Check the training data (before any training), then return its features, the fitted
    featurizer when they come from prompt text, and the upstream price term if asked for."""
    unknown = [
        m
        for m, gone in zip(train.models, np.asarray(train.missing.all(axis=0)), strict=True)
        if gone
    ]
    if unknown:
        raise RouterError(f"router {name!r}: model {unknown[0]!r} has no known training quality")
    price = upstream_price(train.models) if cost_model == "upstream" else None
    if train.features is not None:
        return train.features, None, price
    if train.prompts is None:
        raise DataError(f"{train.source}: the training data has neither features nor prompts")
    featurizer = fitted_featurizer(train.prompts, dim=feature_dim, seed=seed)
    return featurizer.transform(train.prompts), featurizer, price


def _lengths(data: RoutingData) -> np.ndarray | None:
    if data.prompts is None:
        return None
    return np.array([len(p) for p in data.prompts], dtype=np.float64)


@dataclass(frozen=True)
class _LengthCost:
    """Expected cost per model as a least-squares line in the prompt length, clipped at 0."""

    intercept: np.ndarray  # [m] USD
    slope: np.ndarray  # [m] USD per character (0 when the training data has no prompts)
    mean_length: np.ndarray  # [m] used when the scored data has no prompts

    @classmethod
    def fit(cls, train: RoutingData) -> _LengthCost:
        ok = ~np.isnan(train.cost)
        n_ok = ok.sum(axis=0)
        cost = np.where(ok, train.cost, 0.0)
        mean_cost = cost.sum(axis=0) / n_ok
        length = _lengths(train)
        if length is None:
            return cls(mean_cost, np.zeros_like(mean_cost), np.zeros_like(mean_cost))
        mean_len = np.where(ok, length[:, None], 0.0).sum(axis=0) / n_ok
        dl = np.where(ok, length[:, None] - mean_len, 0.0)
        dc = np.where(ok, cost - mean_cost, 0.0)
        var = (dl * dl).sum(axis=0)
        slope = np.divide((dl * dc).sum(axis=0), var, out=np.zeros_like(var), where=var > 0)
        return cls(mean_cost - slope * mean_len, slope, mean_len)

    def __call__(self, data: RoutingData) -> np.ndarray:
        length = _lengths(data)
        ln = self.mean_length[None, :] if length is None else length[:, None]
        cost = np.maximum(self.intercept + self.slope * ln, 0.0)
        return np.broadcast_to(cost, (data.n_prompts, len(self.slope))).copy()


@dataclass(frozen=True, eq=False)
class _Regression:
    """Quality from fitted regressors (one per model, or one multi-output); cost by length."""

    estimators: Sequence[Any] | Deferred  # Deferred: still fitting on worker processes
    cost: _LengthCost

    def __call__(self, x: np.ndarray, data: RoutingData) -> tuple[np.ndarray, np.ndarray]:
        P = np.column_stack([e.predict(x).reshape(len(x), -1) for e in resolved(self.estimators)])
        return P.astype(np.float64), self.cost(data)


def _fit_column(make: Callable[[], Any], x: np.ndarray, q: np.ndarray, j: int) -> Any:
    """Model ``j``'s regressor, on the rows where its quality is known."""
    from sklearn.exceptions import ConvergenceWarning

    known = ~np.isnan(q[:, j])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make().fit(x[known], q[known, j])


def _fit_regressors(
    name: str, make: Callable[[], Any], x: np.ndarray, train: RoutingData, per_model: bool
) -> Sequence[Any] | Deferred:
    """Per model on its rows with known quality (independent fits: on worker processes inside
    :func:`routerbench.engine.parallel.workers`, deferred inside ``deferring``), or one
    multi-output model on complete rows.

    scikit-learn's ConvergenceWarning (max_iter reached) is silenced: max_iter is a setting.
    """
    from sklearn.exceptions import ConvergenceWarning

    q = train.quality
    ok = ~np.isnan(q)
    if per_model:
        return map_fits(partial(_fit_column, make, x, q), range(q.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        rows = ok.all(axis=1)
        check(
            bool(rows.any()),
            name,
            "multi-output fitting needs a training row with every model's quality "
            "(none has); use per_model=True",
        )
        return (make().fit(x[rows], q[rows]),)


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
    where no neighbour has a value)."""

    index: Any  # fitted sklearn NearestNeighbors
    k: int
    quality: np.ndarray  # training rows [n_train, m]; every column has a known value
    cost: np.ndarray

    def __call__(self, x: np.ndarray, data: RoutingData) -> tuple[np.ndarray, np.ndarray]:
        idx = self.index.kneighbors(x, n_neighbors=self.k, return_distance=False)
        q, c = self.quality, self.cost
        return (
            _neighbour_mean(q, idx, np.nanmean(q, axis=0)),
            _neighbour_mean(c, idx, np.nanmean(c, axis=0)),
        )


@register("knn")
@dataclass(frozen=True, kw_only=True)
class KNNRouter:
    """P̂ = unweighted mean quality of the k nearest training prompts (brute force, NaN ignored)."""

    k: int = 10
    metric: str = "cosine"
    cost_model: str = "expected"
    feature_dim: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        check(
            isinstance(self.k, int) and self.k >= 1,
            "knn",
            f"k must be an integer >= 1 (got {self.k!r})",
        )
        check(
            self.metric in ("cosine", "euclidean"),
            "knn",
            f"metric must be 'cosine' or 'euclidean' (got {self.metric!r})",
        )
        _check_common("knn", self.cost_model, self.feature_dim, self.seed)

    @one_blas_thread()
    def fit(self, train: RoutingData) -> FittedPredictive:
        from sklearn.neighbors import NearestNeighbors

        check(
            self.k <= train.n_prompts,
            "knn",
            f"k={self.k} exceeds the {train.n_prompts} training rows",
        )
        x, featurizer, price = _prepare("knn", train, self.cost_model, self.feature_dim, self.seed)
        index = NearestNeighbors(metric=self.metric, algorithm="brute").fit(x)
        predict = _Neighbours(index, self.k, train.quality, train.cost)
        return FittedPredictive(train.models, featurizer, x.shape[1], predict, price)


# ------------------------------------------------------------------------------------ MLP


@register("mlp")
@dataclass(frozen=True, kw_only=True)
class MLPRouter:
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

    def __post_init__(self) -> None:
        hidden = self.hidden
        ok = isinstance(hidden, (tuple, list)) and len(hidden) > 0
        ok = ok and all(isinstance(h, int) and h >= 1 for h in hidden)
        check(ok, "mlp", f"hidden must be a non-empty list of integers >= 1 (got {hidden!r})")
        object.__setattr__(self, "hidden", tuple(hidden))
        check(self.alpha >= 0, "mlp", f"alpha must be >= 0 (got {self.alpha!r})")
        check(
            self.learning_rate > 0,
            "mlp",
            f"learning_rate must be > 0 (got {self.learning_rate!r})",
        )
        check(
            isinstance(self.max_iter, int) and self.max_iter >= 1,
            "mlp",
            f"max_iter must be an integer >= 1 (got {self.max_iter!r})",
        )
        _check_common("mlp", self.cost_model, self.feature_dim, self.seed)

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

        x, featurizer, price = _prepare("mlp", train, self.cost_model, self.feature_dim, self.seed)
        ests = _fit_regressors("mlp", make, x, train, self.per_model)
        predict = _Regression(ests, _LengthCost.fit(train))
        return FittedPredictive(train.models, featurizer, x.shape[1], predict, price)


# --------------------------------------------------------------------------------- linear


@register("linear")
@dataclass(frozen=True, kw_only=True)
class LinearRouter:
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

    def __post_init__(self) -> None:
        check(self.C > 0, "linear", f"C must be > 0 (got {self.C!r})")
        _check_common("linear", self.cost_model, self.feature_dim, self.seed)

    @one_blas_thread()
    def fit(self, train: RoutingData) -> FittedPredictive:
        from sklearn.linear_model import Ridge
        from sklearn.svm import LinearSVR

        def make() -> Any:
            if self.per_model:
                return LinearSVR(C=self.C, random_state=self.seed)
            return Ridge(alpha=1.0 / self.C)

        x, featurizer, price = _prepare(
            "linear", train, self.cost_model, self.feature_dim, self.seed
        )
        ests = _fit_regressors("linear", make, x, train, self.per_model)
        predict = _Regression(ests, _LengthCost.fit(train))
        return FittedPredictive(train.models, featurizer, x.shape[1], predict, price)
