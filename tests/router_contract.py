"""The contract every router passes, as every Optuna sampler passes one suite: reusable.

A test module subclasses :class:`RouterContract` (a ``Test...`` class) and gives a ``name``
fixture: a registered router's name. The router is built from its class's ``example``
hyperparameters and fitted on 70% of one family of a small synthetic data set; the suite checks
its declarations (knob, constraints), its outcomes, pickling, batch independence, the exact path
against the grid at edge knob values, and a whole cell evaluation.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from routerbench.engine import synth
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError
from routerbench.engine.evaluate import NO_CALL, realised
from routerbench.engine.paths import ZERO_PLUS, lambda_path
from routerbench.routers.base import REGISTRY, Fitted, create
from routerbench.routers.params import Interval, Options
from routerbench.routers.predictors import PredictiveScores
from routerbench.sweeps.cells import Cell, evaluate_cell, merge_paths
from routerbench.sweeps.split import Split

EDGES = np.array([0.0, -0.0, -1e-300, -1.0, -1e300, -np.inf, np.inf])


def with_path(
    name: str, split: tuple[RoutingData, RoutingData]
) -> tuple[Fitted, RoutingData, object, tuple]:
    """The fitted router, the test prompts, their scores and the exact path (else skip)."""
    f, test = fitted(name, split), split[1]
    scores = f.score(test)
    path = f.exact_path(scores, test)
    if path is None:
        pytest.skip(f"{name} has no exact path")
    return f, test, scores, path


class RouterContract:
    """The contract; subclasses give the ``name`` fixture."""

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> RoutingData:
        return synth.generate(2500, seed=11)

    @pytest.fixture(scope="class")
    @classmethod
    def rows(cls, data: RoutingData) -> tuple[np.ndarray, np.ndarray]:
        """One family's rows: the first 70% train, the rest test."""
        rows = np.flatnonzero(data.families == "mmlu")
        cut = len(rows) * 7 // 10
        return rows[:cut], rows[cut:]

    @pytest.fixture(scope="class")
    @classmethod
    def split(cls, data: RoutingData, rows) -> tuple[RoutingData, RoutingData]:
        return data.take(rows[0]), data.take(rows[1])

    def test_declared_knob(self, name: str, split) -> None:
        """The class's knob is the fitted router's knob_name (one of them, or none)."""
        f = fitted(name, split)
        assert isinstance(f, Fitted)
        assert f.knob_name in REGISTRY[name].knob.split(" | ")

    def test_router_pickles(self, name: str) -> None:
        """The router (its hyperparameters) survives pickling: executors ship it."""
        router = create(name, **REGISTRY[name].example)
        assert pickle.loads(pickle.dumps(router)) == router

    def test_constraints_refuse(self, name: str) -> None:
        """A value outside each declared interval or option set is refused in one line naming
        the hyperparameter and what its constraint describes."""
        cls = REGISTRY[name]
        for key, rule in cls.constraints.items():
            bad = outside(rule)
            if bad is None:
                continue
            with pytest.raises(RouterError) as info:
                create(name, **{**cls.example, key: bad})
            msg = str(info.value)
            assert f"{key} must be {rule.describe()} (got {bad!r})" in msg and "\n" not in msg

    def test_outcomes_in_range(self, name: str, split) -> None:
        """Per-prompt outcomes have the knob x prompt shape; decisions, where the router gives
        them, are valid model columns whose realised outcomes are the outcomes."""
        f, test = fitted(name, split), split[1]
        knobs = f.default_knobs()
        scores = f.score(test)
        cost, quality = f.outcomes(scores, test, knobs)
        assert cost.shape == quality.shape == (len(knobs), test.n_prompts)
        assert (cost >= 0).all() and ((quality >= 0) & (quality <= 1)).all()
        assert (cost <= test.cost.sum(axis=1) * (1 + 1e-12)).all()  # never above calling all
        if type(f).decide is not Fitted.decide:
            d = f.decide(scores, knobs)
            assert ((d == NO_CALL) | ((d >= 0) & (d < test.n_models))).all()
            assert (realised(test.cost, d) == cost).all()

    def test_picklable_and_deterministic(self, name: str, split) -> None:
        """A fitted router survives pickling, and refitting gives the same outcomes."""
        a, test = fitted(name, split), split[1]
        knobs = a.default_knobs()
        oa = a.outcomes(a.score(test), test, knobs)
        for other in (pickle.loads(pickle.dumps(a)), fitted(name, split)):
            ob = other.outcomes(other.score(test), test, knobs)
            assert (oa[0] == ob[0]).all() and (oa[1] == ob[1]).all()

    def test_batch_independent(self, name: str, split) -> None:
        """A prompt's outcome does not depend on which other prompts are scored with it."""
        f, test = fitted(name, split), split[1]
        knobs = f.default_knobs()
        whole = f.outcomes(f.score(test), test, knobs)
        idx = np.arange(test.n_prompts)[1::3]
        part = test.take(idx)
        sub = f.outcomes(f.score(part), part, knobs)
        assert (whole[0][:, idx] == sub[0]).all() and (whole[1][:, idx] == sub[1]).all()

    def test_exact_path_at_edge_knobs(self, name: str, split) -> None:
        """At 0, negatives, ±inf, between and past breakpoints: path (and two merged halves) ==
        grid sums, bit for bit; a knob the router refuses, the grid refuses in one line."""
        f, test, scores, (knots, pc, pq, n) = with_path(name, split)
        assert n == test.n_prompts and np.all(np.diff(knots) > 0) and knots[0] in (0, -np.inf)
        mids = (knots[1:-1] + knots[2:]) / 2
        beyond = knots[-1] + 1 + abs(knots[-1])
        probe = np.concatenate([EDGES, mids[:: max(1, len(mids) // 40)], [beyond]])
        refused = [x for x in probe if knob_problem(name, [x])]
        for x in refused:
            with pytest.raises(RouterError, match=f.knob_name) as info:
                f.outcomes(scores, test, np.array([x]))
            assert "\n" not in str(info.value)
        probe = np.array([x for x in probe if x not in refused])
        if refused:  # refused from the first knot down: the first knot stands for its limit
            assert max(refused) <= knots[0] and knob_problem(name, [ZERO_PLUS]) is None
            probe = np.append(probe, ZERO_PLUS)
        assert_path_equals_grid(knots, pc, pq, *grid_sums(f, scores, test, probe), probe)
        h = test.n_prompts // 2
        halves = [test.take(np.arange(h)), test.take(np.arange(h, test.n_prompts))]
        blocks = [exact(f, t)[:3] for t in halves]
        assert all(b[0][0] == knots[0] for b in blocks)  # merge_paths: one common first knot
        mk, mc, mq = merge_paths(blocks)
        sums = [grid_sums(f, f.score(t), t, probe) for t in halves]
        want = [0.0 + sums[0][i] + sums[1][i] for i in range(2)]  # merge_paths adds in order
        assert_path_equals_grid(mk, mc, mq, *want, probe)

    def test_exact_path_at_every_breakpoint(self, name: str, split) -> None:
        """At every breakpoint and one float either side: path lookup == grid, bit for bit
        (predictive: the engine path's at() and choices(), which follow the float argmax)."""
        f, test, scores, (knots, pc, pq, _) = with_path(name, split)
        fin = knots[np.isfinite(knots)]
        probe = np.concatenate([fin, np.nextafter(fin, -np.inf), np.nextafter(fin, np.inf)])
        probe = np.array([x for x in np.unique(probe) if not knob_problem(name, [x])])
        cost, quality = grid_sums(f, scores, test, probe)
        if isinstance(scores, PredictiveScores):
            g = np.zeros(test.n_prompts, np.intp)
            lp = lambda_path(scores.P, scores.C, test.quality, test.cost, g, 1)
            got = lp.at(probe)
            assert got[0][0].tolist() == cost.tolist() and got[1][0].tolist() == quality.tolist()
            assert np.array_equal(lp.choices(probe), f.decide(scores, probe))
        else:
            assert_path_equals_grid(knots, pc, pq, cost, quality, probe)

    def test_nan_knob_refused(self, name: str, split) -> None:
        """A NaN knob is refused in one line naming the knob (knob-less routers ignore it)."""
        f, test = fitted(name, split), split[1]
        if not f.knob_name:
            cost, _ = f.outcomes(f.score(test), test, np.array([np.nan]))
            assert cost.shape == (1, test.n_prompts)
            return
        with pytest.raises(RouterError, match=f"^knob '{f.knob_name}'") as info:
            f.outcomes(f.score(test), test, np.array([1.0, np.nan]))
        assert "\n" not in str(info.value)

    def test_evaluate_cell(self, name: str, data: RoutingData, rows, split) -> None:
        """A cell of the router evaluates with the bootstrap: one ok row per default knob with
        the test prompts' mean outcomes, and an exact path where the router has one."""
        train, test = rows
        cell = Cell(0, name, dict(REGISTRY[name].example), "contract")
        split_ = Split("contract", 0, {"f": train}, {"f": test})
        res = evaluate_cell(data, cell, split_, bootstrap=5, fail_fast=True)
        f = fitted(name, split)
        knobs = f.default_knobs()
        cost, quality = f.outcomes(f.score(split[1]), split[1], knobs)
        assert [r["status"] for r in res.rows] == ["ok"] * len(knobs)
        np.testing.assert_allclose([r["cost_mean"] for r in res.rows], cost.mean(1), rtol=1e-12)
        np.testing.assert_allclose([r["quality_mean"] for r in res.rows], quality.mean(1))
        assert res.boot["f"][0].shape == (5, len(knobs))
        assert ("f" in res.exact) == (f.exact_path(f.score(split[1]), split[1]) is not None)


def fitted(name: str, split: tuple[RoutingData, RoutingData]) -> Fitted:
    """The router built from its class's example hyperparameters, fitted on the train part."""
    return create(name, **REGISTRY[name].example).fit(split[0])


def exact(f: Fitted, data: RoutingData) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    path = f.exact_path(f.score(data), data)
    assert path is not None
    return path


def outside(rule: object) -> object:
    """A value of the right type that ``rule`` refuses (None: no such value is known)."""
    if isinstance(rule, Options):
        return "not-" + "-".join(map(str, rule.values))
    if not isinstance(rule, Interval):
        return None
    if rule.low is not None:
        step = 1 if rule.kind is int else 0.5
        return rule.kind(rule.low - step) if rule.closed in ("both", "left") else rule.low
    assert rule.high is not None
    return rule.kind(rule.high + 1) if rule.closed in ("both", "right") else rule.high


def knob_problem(name: str, knobs: list[float]) -> str | None:
    """The router's spec-time check of knob values (None: every value accepted)."""
    return REGISTRY[name].check_knobs(np.array(knobs))


def grid_sums(f: Fitted, scores, data: RoutingData, knobs: np.ndarray):
    """Correctly rounded sums (math.fsum) of the grid's per-prompt cost and quality per knob."""
    cost, quality = f.outcomes(scores, data, knobs)
    return tuple(np.array([math.fsum(row) for row in v]) for v in (cost, quality))


def assert_path_equals_grid(knots, pc, pq, cost, quality, probe) -> None:
    """A path's steps (each knot's value holds up to the next knot, the first knot's below it
    too) looked up at ``probe`` equal the grid's sums there, bit for bit."""
    idx = np.maximum(np.searchsorted(knots, probe, side="right") - 1, 0)
    bad = np.flatnonzero((pc[idx] != cost) | (pq[idx] != quality))
    assert bad.size == 0, f"path != grid at knob values {probe[bad][:5].tolist()}"
