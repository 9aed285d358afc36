"""Edge knob values (0, negatives, ±inf, NaN, exactly at a breakpoint): one rule per value, the
same for grid evaluation and for the exact path, for every router with a knob."""

from __future__ import annotations

import numpy as np
import pytest

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError, SpecError
from routerbench.engine.paths import ZERO_PLUS, lambda_path
from routerbench.routers.cascade import CascadeScores, FittedCascade
from routerbench.routers.predictors import FittedPredictive, PredictiveScores
from routerbench.routers.reference import _FittedZero
from routerbench.routers.threshold import FittedThreshold
from routerbench.sweeps.spec import parse


def table(quality: list[list[float]], cost: list[list[float]]) -> RoutingData:
    q = np.array(quality, dtype=float)
    return RoutingData(
        quality=q,
        cost=np.array(cost, dtype=float),
        models=[f"m{j}" for j in range(q.shape[1])],
        prompt_ids=[f"p{i}" for i in range(q.shape[0])],
        eval_names=["mmlu-x"] * q.shape[0],
    )


def lookup(path: tuple, knobs: list[float]) -> tuple[list[float], list[float]]:
    """A router's exact path (knots, cost sums, quality sums, n) read at ``knobs``: each knot's
    value holds up to the next knot, the first knot's below it too."""
    knots, cost, quality, _ = path
    idx = np.maximum(np.searchsorted(knots, knobs, side="right") - 1, 0)
    return cost[idx].tolist(), quality[idx].tolist()


def grid(fitted, scores, data: RoutingData, knobs: list[float]) -> tuple[list, list]:
    cost, quality = fitted.outcomes(scores, data, np.array(knobs))
    return cost.sum(axis=1).tolist(), quality.sum(axis=1).tolist()


class TestLambdaAtZero:
    P, C = np.array([[0.2, 0.9]]), np.array([[1.0, 2.0]])
    DATA = table([[0.25, 0.75]], [[3.0, 5.0]])  # realised outcomes of models 0 and 1

    def fitted(self) -> FittedPredictive:
        return FittedPredictive(("m0", "m1"), None, 1, lambda x, d: (self.P, self.C), None)

    def test_zero_ignores_cost_in_grid_and_path(self) -> None:
        """P = [[.2, .9]], C = [[1, 2]]: at λ = 0 the grid, the engine path and the router's
        exact path all pick model 1 (argmax P); just above 0, model 0 (the cheaper)."""
        f, s = self.fitted(), PredictiveScores(self.P, self.C)
        knobs = [0.0, ZERO_PLUS]
        assert f.decide(s, np.array(knobs)).tolist() == [[1], [0]]
        path = lambda_path(self.P, self.C, self.DATA.quality, self.DATA.cost, np.zeros(1, int), 1)
        assert path.choices(np.array(knobs)).tolist() == [[1], [0]]
        assert path.at(np.array(knobs))[0].tolist() == [[5.0, 3.0]]
        assert lookup(f.exact_path(s, self.DATA), knobs) == ([5.0, 3.0], [0.75, 0.25])
        assert grid(f, s, self.DATA, knobs) == ([5.0, 3.0], [0.75, 0.25])

    def test_negatives_and_infinities(self) -> None:
        """λ < 0 and -inf ignore cost like 0 (model 1); +inf takes the best P (model 1); past
        the crossing at 1/0.7 model 1 too; grid and exact path agree at each."""
        f, s = self.fitted(), PredictiveScores(self.P, self.C)
        knobs = [-np.inf, -1e300, -1.0, -0.0, 1.0, 1.5, np.inf]
        want = [5.0, 5.0, 5.0, 5.0, 3.0, 5.0, 5.0]
        assert grid(f, s, self.DATA, knobs)[0] == want
        assert lookup(f.exact_path(s, self.DATA), knobs)[0] == want

    def test_nan_refused(self) -> None:
        """A NaN λ is refused in one line naming the knob."""
        f, s = self.fitted(), PredictiveScores(self.P, self.C)
        with pytest.raises(RouterError, match=r"^knob 'lambda' must be a number, not NaN"):
            f.decide(s, np.array([0.0, np.nan]))


class TestThresholdKnobs:
    SCORES = np.array([0.1, 0.2, 0.2, -0.3])
    DATA = table([[1.0, 0.0]] * 4, [[8.0, 1.0], [4.0, 1.0], [2.0, 1.0], [16.0, 1.0]])

    def fitted(self) -> FittedThreshold:
        return FittedThreshold(strong=0, weak=1, predictor=None, train_scores=self.SCORES)

    def test_at_a_score_and_around_it(self) -> None:
        """A threshold equal to a score sends that prompt strong (score >= threshold); one float
        above, weak; the exact path agrees at, below and above every score."""
        f = self.fitted()
        knobs = [0.2, np.nextafter(0.2, 1), np.nextafter(0.2, 0), 0.1, -0.3, 0.15]
        # strong prompts: {1, 2}, {}, {1, 2}, {0, 1, 2}, all, {1, 2}
        want = [4 + 2 + 1 + 1, 4.0, 8.0, 8 + 4 + 2 + 1, 30.0, 8.0]
        assert grid(f, self.SCORES, self.DATA, knobs)[0] == want
        assert lookup(f.exact_path(self.SCORES, self.DATA), knobs)[0] == want

    def test_infinities_and_nan(self) -> None:
        """-inf: every prompt strong; +inf: every prompt weak; NaN: refused in one line."""
        f = self.fitted()
        knobs = [-np.inf, np.inf]
        want = ([30.0, 4.0], [4.0, 0.0])
        assert grid(f, self.SCORES, self.DATA, knobs) == want
        assert lookup(f.exact_path(self.SCORES, self.DATA), knobs) == want
        with pytest.raises(RouterError, match=r"^knob 'threshold' must be a number, not NaN"):
            f.decide(self.SCORES, np.array([np.nan]))


class TestCascadeBudgets:
    # One prompt, models in order 0, 1, 2 costing 1, 2, 4; the judge accepts only model 2.
    DATA = table([[0.0, 0.5, 1.0]], [[1.0, 2.0, 4.0]])
    SCORES = CascadeScores(np.array([[False, False, True]]))

    def fitted(self) -> FittedCascade:
        return FittedCascade(order=np.arange(3), theta=1.0, eps=0.0, seed=0)

    def test_budget_equal_to_costs(self) -> None:
        """Stop when the next cost >= the remaining budget: B = 1 (model 0's cost) and B = 3
        (= 1 + 2) call model 0 only; one float above 3, model 1 too; B = 7 (= 1 + 2 + 4) stops
        before model 2; one float above 7 and +inf call all three.  The path agrees."""
        f = self.fitted()
        knobs = [1.0, 2.0, 3.0, np.nextafter(3.0, 4), 7.0, np.nextafter(7.0, 8), np.inf]
        want = ([1.0, 1.0, 1.0, 3.0, 3.0, 7.0, 7.0], [0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0])
        assert grid(f, self.SCORES, self.DATA, knobs) == want
        assert lookup(f.exact_path(self.SCORES, self.DATA), knobs) == want

    @pytest.mark.parametrize("bad", [0.0, -0.0, -1.0, -np.inf, np.nan])
    def test_non_positive_budgets_refused(self, bad: float) -> None:
        """0, negatives, -inf and NaN are refused in one line naming the knob; the path's first
        knot (0) is the limit B -> 0+ (model 0 only), what the grid gives at the least float."""
        f = self.fitted()
        with pytest.raises(RouterError, match=r"^knob 'budget': budgets must be > 0"):
            f.outcomes(self.SCORES, self.DATA, np.array([1.0, bad]))
        path = f.exact_path(self.SCORES, self.DATA)
        assert path[0][0] == 0.0
        assert lookup(path, [0.0]) == grid(f, self.SCORES, self.DATA, [ZERO_PLUS]) == ([1.0], [0])


class TestZeroRouterKnobs:
    U = np.array([0.05, 0.3, 0.55, 0.8])  # per-prompt uniforms

    def fitted(self) -> _FittedZero:
        return _FittedZero(0, np.array([2, 0, 1]), np.array([1.0, 2.0, 4.0]))

    def test_at_vertices_and_beyond(self) -> None:
        """A target at a vertex's cost gives that vertex's model for every prompt; below the
        first (negatives, -inf) the first model, above the last (+inf) the last; between two
        vertices a prompt takes the dearer one when its uniform < the interpolation weight."""
        got = self.fitted().decide(self.U, np.array([1.0, 2.0, 4.0, -np.inf, -1.0, np.inf, 3.0]))
        assert got.tolist() == [[2] * 4, [0] * 4, [1] * 4, [2] * 4, [2] * 4, [1] * 4, [1, 1, 0, 0]]

    def test_nan_refused(self) -> None:
        """A NaN target cost is refused in one line naming the knob."""
        with pytest.raises(RouterError, match=r"^knob 'target_cost' must be a number, not NaN"):
            self.fitted().decide(self.U, np.array([np.nan]))


class TestSpecKnobs:
    @pytest.mark.parametrize("router", ["knn", "threshold", "zero", "cascade"])
    def test_nan_refused_before_running(self, router: str) -> None:
        """A NaN knob in a spec is refused at parse time, naming the key."""
        with pytest.raises(SpecError, match=r"routers\[0\]\.knobs.*NaN"):
            parse({"routers": [{"name": router, "knobs": [1.0, float("nan")]}]})

    @pytest.mark.parametrize("router", ["knn", "mlp", "linear", "threshold", "zero"])
    def test_zero_negative_and_infinite_accepted(self, router: str) -> None:
        """0, negatives and ±inf are valid knob values for every router but the cascade."""
        knobs = [0.0, -1.0, float("-inf"), float("inf")]
        plan = parse({"routers": [{"name": router, "knobs": knobs}]})
        assert list(plan.routers[0].knobs) == knobs
