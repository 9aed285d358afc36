"""Cascades: call models from cheap to dear until a judge accepts an answer or the budget runs out.

The judge is either simulated (RouterBench: it accepts when the true score reaches θ, and errs with
probability ``eps``, by counter-based draws keyed by (seed, prompt, model, eps)) or learned: a KNN
predictor's predicted quality reaching θ (the realistic case the paper only simulates). The knob
is the budget per prompt; every budget is exact (see :mod:`routerbench.engine.cascade`).

Deliberate difference from the original: θ is the quantile of the family's *training* scores (the
original takes it from the test scores, which a router cannot see); for binary tasks both give 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike

from routerbench.engine.cascade import (
    PROMPT_DOMAIN,
    UPSTREAM_BUDGETS,
    cascade_outcomes,
    cascade_path,
    family_theta,
    judge_accepts,
    judge_uniforms,
    model_key,
)
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError
from routerbench.routers.base import ExactPath, Fitted, Router, register
from routerbench.routers.params import SEED, Constraint, Interval, PromptCount


@dataclass(frozen=True)
class CascadeScores:
    accept: np.ndarray  # [n, K] judge verdicts in cascade order


@dataclass(frozen=True, eq=False)
class FittedCascade(Fitted):
    order: np.ndarray  # model columns, cheapest first
    theta: float
    eps: float
    seed: int
    predictor: Any = None  # a fitted predictive router when the judge is learned
    knob_name: str = "budget"
    key_domains = (PROMPT_DOMAIN,)

    def score(self, data: RoutingData) -> CascadeScores:
        if self.predictor is not None:
            judged = self.predictor.score(data).P[:, self.order]
        else:
            judged = data.quality[:, self.order]
        u = judge_uniforms(
            self.seed,
            data.keys(PROMPT_DOMAIN),
            model_key([data.models[j] for j in self.order]),
            self.eps,
        )
        return CascadeScores(judge_accepts(judged, self.theta, self.eps, u))

    def outcomes(
        self, scores: CascadeScores, data: RoutingData, knobs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-prompt cost and quality ``[k, n]`` at each budget (> 0; +inf: no limit)."""
        if problem := CascadeRouter.check_knobs(knobs):
            raise RouterError(f"knob 'budget': {problem}")
        return cascade_outcomes(data.quality, data.cost, self.order, scores.accept, knobs)

    def exact_path(self, scores: CascadeScores, data: RoutingData) -> ExactPath:
        group = np.zeros(data.n_prompts, np.intp)
        path = cascade_path(data.quality, data.cost, self.order, scores.accept, group, 1)
        budgets, cost, quality = path.breakpoints(0)
        return budgets, cost, quality, data.n_prompts

    def default_knobs(self) -> np.ndarray:
        return UPSTREAM_BUDGETS.copy()


@register("cascade")
@dataclass(frozen=True, kw_only=True)
class CascadeRouter(Router):
    """Call models in ``order`` (``"price"``: ascending per-token price as upstream; ``"cost"``:
    ascending mean cost on the training prompts) until the judge accepts or the budget is spent.

    ``theta``: the acceptance threshold; None: the ``quantile`` of the family's training scores.
    ``judge``: ``"simulated"`` (true score, flipped with probability ``eps``) or ``"learned"``
    (a KNN predictor with ``k`` neighbours, also flipped with probability ``eps``).
    """

    eps: float = 0.0
    quantile: float = 0.95
    theta: float | None = None
    order: Literal["price", "cost"] = "price"
    judge: Literal["simulated", "learned"] = "simulated"
    k: int = 10
    seed: int = 0

    knob = "budget"
    constraints: ClassVar[dict[str, Constraint]] = {
        "eps": Interval(float, 0, 1),
        "quantile": Interval(float, 0, 1),
        "theta": Interval(float, 0, 1),
        "k": PromptCount(),
        "seed": SEED,
    }
    example: ClassVar[dict[str, Any]] = {"eps": 0.2}

    @classmethod
    def check_knobs(cls, knobs: ArrayLike) -> str | None:
        """Budgets must be > 0 (+inf: no limit; 0, negatives, -inf and NaN are refused, here and
        by the exact path, whose knot 0 stands for B -> 0+); the message says what is wrong, None
        when all is well."""
        bad = [float(b) for b in np.atleast_1d(knobs) if not b > 0]
        return f"budgets must be > 0 (got {bad[0]})" if bad else None

    def fit(self, train: RoutingData) -> FittedCascade:
        if self.order == "price":
            from routerbench.routers.predictors import upstream_price

            key = upstream_price(train.models)
        else:
            key = np.nanmean(train.cost, axis=0)
        order = np.argsort(key, kind="stable")
        theta = (
            self.theta
            if self.theta is not None
            else family_theta(train.complete().quality, self.quantile)
        )
        predictor = None
        if self.judge == "learned":
            from routerbench.routers.predictive import KNNRouter

            predictor = KNNRouter(k=self.k, seed=self.seed).fit(train)
        return FittedCascade(order, float(theta), self.eps, self.seed, predictor)
