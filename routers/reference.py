"""Reference routers: single models, the oracle, the zero router and a random router."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError
from routerbench.engine.evaluate import NO_CALL
from routerbench.engine.rng import keyed_uniforms
from routerbench.engine.stepsums import knob_problem
from routerbench.routers.base import Fitted, Router, register
from routerbench.routers.params import SEED, Constraint, Model

_NO_KNOB = np.array([np.nan])


class _KnobFree(Fitted):
    """One operating point: each prompt's model is the same at every knob value (NaN too)."""

    knob_name = ""

    def decide(self, scores: Any, knobs: np.ndarray) -> np.ndarray:
        choice = self.choose(scores)
        return np.broadcast_to(choice, (len(knobs), len(choice))).copy()

    def default_knobs(self) -> np.ndarray:
        return _NO_KNOB

    @abstractmethod
    def choose(self, scores: Any) -> np.ndarray:
        """Each prompt's model column (int64)."""


@dataclass(frozen=True)
class _Constant(_KnobFree):
    """One model for every prompt."""

    column: int

    def score(self, data: RoutingData) -> int:
        return data.n_prompts

    def choose(self, scores: int) -> np.ndarray:
        return np.full(scores, self.column, dtype=np.int64)


@register("single")
@dataclass(frozen=True, kw_only=True)
class SingleModel(Router):
    """Always the same model."""

    model: str
    knob = ""
    constraints: ClassVar[dict[str, Constraint]] = {"model": Model()}
    example: ClassVar[dict[str, Any]] = {"model": "claude-v1"}

    def fit(self, train: RoutingData) -> _Constant:
        return _Constant(train.model_index(self.model))


def oracle_choice(
    quality: np.ndarray, cost: np.ndarray, no_model_correct: str = "cheapest"
) -> np.ndarray:
    """Per prompt: among the models with the highest score, the cheapest (first on ties).

    Where every score is 0, ``"cheapest"`` calls the cheapest model (quality 0, its cost is paid)
    and ``"upstream"`` calls none (cost 0 and quality 0, the original's ``no_model_correct``).

    >>> q, c = np.array([[1.0, 1.0], [0.0, 0.0]]), np.array([[2.0, 1.0], [2.0, 1.0]])
    >>> oracle_choice(q, c, "upstream")
    array([ 1, -1])
    """
    best = quality == quality.max(axis=1, keepdims=True)
    masked = np.where(best, cost, np.inf)
    choice = masked.argmin(axis=1)  # argmin returns the first minimum: response-order tie-break
    if no_model_correct == "upstream":
        choice = np.where(quality.max(axis=1) <= 0.0, NO_CALL, choice)
    return choice.astype(np.int64)


@dataclass(frozen=True)
class _FittedOracle(_KnobFree):
    no_model_correct: str

    def score(self, data: RoutingData) -> np.ndarray:
        return oracle_choice(data.quality, data.cost, self.no_model_correct)

    def choose(self, scores: np.ndarray) -> np.ndarray:
        return scores


@register("oracle")
@dataclass(frozen=True, kw_only=True)
class Oracle(Router):
    """Sees the outcomes: the best model for each prompt, the cheapest among equals.

    ``no_model_correct="upstream"`` follows the original (no call where every model scores 0).
    """

    no_model_correct: Literal["cheapest", "upstream"] = "cheapest"
    knob = ""

    def fit(self, train: RoutingData) -> _FittedOracle:
        return _FittedOracle(self.no_model_correct)


def _prompt_uniforms(seed: int, data: RoutingData) -> np.ndarray:
    return keyed_uniforms(seed, data.keys())


@dataclass(frozen=True)
class _FittedRandom(_KnobFree):
    seed: int
    n_models: int

    def score(self, data: RoutingData) -> np.ndarray:
        return _prompt_uniforms(self.seed, data)

    def choose(self, scores: np.ndarray) -> np.ndarray:
        return np.minimum((scores * self.n_models).astype(np.int64), self.n_models - 1)


@register("random")
@dataclass(frozen=True, kw_only=True)
class RandomRouter(Router):
    """Each prompt to a uniformly random model (a seeded draw keyed by the prompt id)."""

    seed: int = 0
    knob = ""
    constraints: ClassVar[dict[str, Constraint]] = {"seed": SEED}

    def fit(self, train: RoutingData) -> _FittedRandom:
        return _FittedRandom(self.seed, train.n_models)


@dataclass(frozen=True)
class _FittedZero(Fitted):
    seed: int
    vertex_models: np.ndarray  # model columns on the hull, by ascending cost
    vertex_costs: np.ndarray  # their mean cost per query on the training data
    knob_name: str = "target_cost"

    def score(self, data: RoutingData) -> np.ndarray:
        return _prompt_uniforms(self.seed, data)

    def decide(self, scores: np.ndarray, knobs: np.ndarray) -> np.ndarray:
        """Target mean costs outside the hull's range (±inf too) get its end models; a target at a
        vertex's cost gets that vertex's model for every prompt; NaN is refused."""
        if problem := knob_problem(knobs, self.knob_name):
            raise RouterError(problem)
        vc = self.vertex_costs
        t = np.clip(np.asarray(knobs, dtype=np.float64).reshape(-1), vc[0], vc[-1])
        seg = np.clip(np.searchsorted(vc, t, side="right") - 1, 0, max(len(vc) - 2, 0))
        if len(vc) == 1:
            return np.full((len(t), len(scores)), self.vertex_models[0], dtype=np.int64)
        lo, hi = vc[seg], vc[seg + 1]
        p = (t - lo) / (hi - lo)  # probability of the dearer vertex model
        upper = scores[None, :] < p[:, None]
        return np.where(
            upper, self.vertex_models[seg + 1][:, None], self.vertex_models[seg][:, None]
        )

    def default_knobs(self) -> np.ndarray:
        vc = self.vertex_costs
        if len(vc) == 1:
            return vc.copy()
        mids = np.linspace(0.0, 1.0, 5)[:-1]
        pts = (vc[:-1, None] + mids[None, :] * np.diff(vc)[:, None]).ravel()
        return np.append(pts, vc[-1])


@dataclass(frozen=True)
class _EveryModel(Fitted):
    """The original's zero router: knob ``j`` sends every prompt to model column ``j``."""

    n_models: int
    knob_name: str = "model"

    def score(self, data: RoutingData) -> int:
        return data.n_prompts

    def decide(self, scores: int, knobs: np.ndarray) -> np.ndarray:
        k = np.asarray(knobs, dtype=np.float64).reshape(-1)
        bad = ~np.isin(k, np.arange(self.n_models))
        if bad.any():
            raise RouterError(
                f"knob 'model' must be a model column, an integer in [0, {self.n_models}) "
                f"(got {k[bad][0]!r})"
            )
        return np.repeat(k.astype(np.int64)[:, None], scores, axis=1)

    def default_knobs(self) -> np.ndarray:
        return np.arange(self.n_models, dtype=np.float64)


@register("zero")
@dataclass(frozen=True, kw_only=True)
class ZeroRouter(Router):
    """The zero router: random per-prompt mixtures of single models, with no learning.

    Its curve is the non-decreasing convex hull of the single models' points.

    - ``mode="fitted"`` (default): ``fit`` finds the hull on the training data; ``decide``
      realises a target mean cost per query by mixing the two hull models around it with seeded
      per-prompt draws, so the test points are real routings of test prompts.
    - ``mode="upstream"``: the original's zero router, the hull of the *test* set's single-model
      points: one operating point per model (knob ``model``: its column), nothing fitted.
    """

    seed: int = 0
    mode: Literal["fitted", "upstream"] = "fitted"
    knob = "target_cost | model"
    constraints: ClassVar[dict[str, Constraint]] = {"seed": SEED}

    def fit(self, train: RoutingData) -> _FittedZero | _EveryModel:
        from routerbench.engine.metrics import ndch

        if self.mode == "upstream":
            return _EveryModel(train.n_models)

        mc = np.nanmean(train.cost, axis=0)
        mq = np.nanmean(train.quality, axis=0)
        hc, hq = ndch(mc, mq)
        cols = []
        for c, q in zip(hc, hq, strict=True):
            match = np.flatnonzero((mc == c) & (mq == q))
            cols.append(int(match[0]))
        return _FittedZero(self.seed, np.array(cols, dtype=np.int64), np.asarray(hc, dtype=float))
