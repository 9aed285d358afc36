"""What the predictive routers share: predicted quality and a cost term, traded by the λ rule.

A fitted predictive router (:class:`FittedPredictive`) scores a prompt set once:
``P[i, m]``, the predicted quality of model m on prompt i, and ``C[i, m]``, the cost term. The
decision at willingness to pay ``λ > 0`` is ``argmax_m λ·P[i, m] − C[i, m]`` (ties: the lowest
model column, i.e. response order); ``λ <= 0`` ignores cost (``argmax_m P[i, m]``), as in the
original (:func:`decide_lambda`; its exact path: :func:`lambda_exact_path`).

Cost terms (``cost_model``):

- ``"expected"`` (default): the prompt's predicted cost for each model.  KNN: the neighbours' mean
  cost.  MLP and linear: a per-model least-squares line in the prompt's length in characters,
  clipped at 0 (the training mean cost per model when prompts are absent; :class:`LengthCost`).
- ``"upstream"``: the original's constant per-model term, output / 1e7 + input / 1e7 with the
  prices in USD per 1M tokens (a per-token price 10x too small): 4e-6 for gpt-4-1106-preview
  (:func:`upstream_price`).

Features (:func:`prepare`): ``data.features`` when the training data has them; otherwise a
TF-IDF + SVD :class:`~routerbench.engine.features.TextFeaturizer` fitted on the training prompts
only and stored in the fitted router, which transforms the prompts it scores.
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
from routerbench.engine.parallel import map_fits
from routerbench.engine.paths import UPSTREAM_LAMBDAS, lambda_choices, lambda_path
from routerbench.engine.stepsums import knob_problem
from routerbench.routers.base import ExactPath, Fitted, check

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
    from routerbench.engine.synth_tables import PRICES

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
class FittedPredictive(Fitted):
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

    def exact_path(self, scores: PredictiveScores, data: RoutingData) -> ExactPath:
        """Every operating point, as a step function of λ: breakpoints (knot 0: every λ <= 0, cost
        ignored; knot ZERO_PLUS: the cheapest choices just above 0, where they differ), the exact
        cost and quality sums from each breakpoint on, and the prompt count."""
        return lambda_exact_path(scores, data)


def lambda_exact_path(scores: PredictiveScores, data: RoutingData) -> ExactPath:
    """The exact λ path of ``scores`` on ``data`` (one group): breakpoints, the cost and quality
    sums from each breakpoint on, and the prompt count."""
    path = lambda_path(
        scores.P, scores.C, data.quality, data.cost, np.zeros(data.n_prompts, np.intp), 1
    )
    lams, cost, quality = path.breakpoints(0)
    return lams, cost, quality, data.n_prompts


# ----------------------------------------------------------------------------- shared fitting


def prepare(
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
class LengthCost:
    """Expected cost per model as a least-squares line in the prompt length, clipped at 0."""

    intercept: np.ndarray  # [m] USD
    slope: np.ndarray  # [m] USD per character (0 when the training data has no prompts)
    mean_length: np.ndarray  # [m] used when the scored data has no prompts

    @classmethod
    def fit(cls, train: RoutingData) -> LengthCost:
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
class Regression:
    """Quality from fitted regressors (one per model, or one multi-output); cost by length."""

    estimators: Sequence[Any]
    cost: LengthCost

    def __call__(self, x: np.ndarray, data: RoutingData) -> tuple[np.ndarray, np.ndarray]:
        P = np.column_stack([e.predict(x).reshape(len(x), -1) for e in self.estimators])
        return P.astype(np.float64), self.cost(data)


def _fit_column(make: Callable[[], Any], x: np.ndarray, q: np.ndarray, j: int) -> Any:
    """Model ``j``'s regressor, on the rows where its quality is known."""
    from sklearn.exceptions import ConvergenceWarning

    known = ~np.isnan(q[:, j])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make().fit(x[known], q[known, j])


def fit_regressors(
    name: str, make: Callable[[], Any], x: np.ndarray, train: RoutingData, per_model: bool
) -> Sequence[Any]:
    """Per model on its rows with known quality (independent fits: on worker processes inside
    :func:`routerbench.engine.parallel.workers`), or one
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
