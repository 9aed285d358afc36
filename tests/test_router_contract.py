"""The contract every registered router passes (as every Optuna sampler passes one suite)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from routerbench.engine import synth
from routerbench.engine.errors import RouterError
from routerbench.engine.evaluate import NO_CALL
from routerbench.engine.paths import ZERO_PLUS, lambda_path
from routerbench.routers.base import REGISTRY, create, load_all
from routerbench.routers.predictive import PredictiveScores
from routerbench.sweeps.cells import merge_paths, outcomes

load_all()
# Small but valid hyperparameters per router (defaults where they work on small data).
PARAMS: dict[str, dict] = {
    "single": {"model": "claude-v1"},
    "knn": {"k": 5},
    "mlp": {"hidden": (16,), "max_iter": 60},
    "cascade": {"eps": 0.2},
    "threshold": {"k": 5},
}
ROUTERS = sorted(REGISTRY)


@pytest.fixture(scope="module")
def split():
    data = synth.generate(2500, seed=11)
    rows = np.flatnonzero(data.families == "mmlu")
    cut = len(rows) * 7 // 10
    return data.take(rows[:cut]), data.take(rows[cut:])


def fitted(name, split):
    return create(name, **PARAMS.get(name, {})).fit(split[0])


@pytest.mark.parametrize("name", ROUTERS)
class TestRouterContract:
    def test_outcomes_in_range(self, name, split) -> None:
        """Per-prompt outcomes have the knob x prompt shape; decisions are valid model columns."""
        f, test = fitted(name, split), split[1]
        knobs = f.default_knobs()
        scores = f.score(test)
        cost, quality = outcomes(f, scores, test, knobs)
        assert cost.shape == quality.shape == (len(knobs), test.n_prompts)
        assert (cost >= 0).all() and ((quality >= 0) & (quality <= 1)).all()
        assert (cost <= test.cost.sum(axis=1) * (1 + 1e-12)).all()  # never above calling all
        if hasattr(f, "decide"):
            d = f.decide(scores, knobs)
            assert ((d == NO_CALL) | ((d >= 0) & (d < test.n_models))).all()

    def test_picklable_and_deterministic(self, name, split) -> None:
        """A fitted router survives pickling, and refitting gives the same outcomes."""
        a, test = fitted(name, split), split[1]
        knobs = a.default_knobs()
        oa = outcomes(a, a.score(test), test, knobs)
        for other in (pickle.loads(pickle.dumps(a)), fitted(name, split)):
            ob = outcomes(other, other.score(test), test, knobs)
            assert (oa[0] == ob[0]).all() and (oa[1] == ob[1]).all()

    def test_batch_independent(self, name, split) -> None:
        """A prompt's outcome does not depend on which other prompts are scored with it."""
        f, test = fitted(name, split), split[1]
        knobs = f.default_knobs()
        whole = outcomes(f, f.score(test), test, knobs)
        idx = np.arange(test.n_prompts)[1::3]
        part = test.take(idx)
        sub = outcomes(f, f.score(part), part, knobs)
        assert (whole[0][:, idx] == sub[0]).all() and (whole[1][:, idx] == sub[1]).all()

    def test_exact_path_at_edge_knobs(self, name, split) -> None:
        """At 0, negatives, ±inf, between and past breakpoints: path (and two merged halves) ==
        grid sums, bit for bit; a knob the router refuses, the grid refuses in one line."""
        f, test = fitted(name, split), split[1]
        if not hasattr(f, "exact_path"):
            pytest.skip(f"{name} has a finite knob set, no path")
        scores = f.score(test)
        knots, pc, pq, n = f.exact_path(scores, test)
        assert n == test.n_prompts and np.all(np.diff(knots) > 0) and knots[0] in (0, -np.inf)
        mids = (knots[1:-1] + knots[2:]) / 2
        beyond = knots[-1] + 1 + abs(knots[-1])
        probe = np.concatenate([EDGES, mids[:: max(1, len(mids) // 40)], [beyond]])
        refused = [x for x in probe if knob_problem(name, [x])]
        for x in refused:
            with pytest.raises(RouterError, match=f.knob_name) as info:
                outcomes(f, scores, test, np.array([x]))
            assert "\n" not in str(info.value)
        probe = np.array([x for x in probe if x not in refused])
        if refused:  # refused from the first knot down: the first knot stands for its limit
            assert max(refused) <= knots[0] and knob_problem(name, [ZERO_PLUS]) is None
            probe = np.append(probe, ZERO_PLUS)
        assert_path_equals_grid(knots, pc, pq, *grid_sums(f, scores, test, probe), probe)
        h = test.n_prompts // 2
        halves = [test.take(np.arange(h)), test.take(np.arange(h, test.n_prompts))]
        blocks = [f.exact_path(f.score(t), t)[:3] for t in halves]
        assert all(b[0][0] == knots[0] for b in blocks)  # merge_paths: one common first knot
        mk, mc, mq = merge_paths(blocks)
        sums = [grid_sums(f, f.score(t), t, probe) for t in halves]
        want = [0.0 + sums[0][i] + sums[1][i] for i in range(2)]  # merge_paths adds in order
        assert_path_equals_grid(mk, mc, mq, *want, probe)

    def test_exact_path_at_every_breakpoint(self, name, split) -> None:
        """At every breakpoint and one float either side: path lookup == grid, bit for bit
        (predictive: the engine path's at() and choices(), which follow the float argmax)."""
        f, test = fitted(name, split), split[1]
        if not hasattr(f, "exact_path"):
            pytest.skip(f"{name} has a finite knob set, no path")
        scores = f.score(test)
        knots, pc, pq, _ = f.exact_path(scores, test)
        fin = knots[np.isfinite(knots)]
        probe = np.concatenate([fin, np.nextafter(fin, -np.inf), np.nextafter(fin, np.inf)])
        probe = np.array([x for x in np.unique(probe) if not knob_problem(name, [x])])
        cost, quality = grid_sums(f, scores, test, probe)
        if isinstance(scores, PredictiveScores):
            g = np.zeros(test.n_prompts, np.intp)
            path = lambda_path(scores.P, scores.C, test.quality, test.cost, g, 1)
            got = path.at(probe)
            assert got[0][0].tolist() == cost.tolist() and got[1][0].tolist() == quality.tolist()
            assert np.array_equal(path.choices(probe), f.decide(scores, probe))
        else:
            assert_path_equals_grid(knots, pc, pq, cost, quality, probe)

    def test_nan_knob_refused(self, name, split) -> None:
        """A NaN knob is refused in one line naming the knob (knob-less routers ignore it)."""
        f, test = fitted(name, split), split[1]
        if not f.knob_name:
            cost, _ = outcomes(f, f.score(test), test, np.array([np.nan]))
            assert cost.shape == (1, test.n_prompts)
            return
        with pytest.raises(RouterError, match=f"^knob '{f.knob_name}'") as info:
            outcomes(f, f.score(test), test, np.array([1.0, np.nan]))
        assert "\n" not in str(info.value)


EDGES = np.array([0.0, -0.0, -1e-300, -1.0, -1e300, -np.inf, np.inf])


def knob_problem(name: str, knobs: list[float]) -> str | None:
    """The router's spec-time check of knob values (None: every value accepted)."""
    check = getattr(REGISTRY[name], "check_knobs", None)
    return check(np.array(knobs)) if check else None


def grid_sums(f, scores, data, knobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correctly rounded sums (math.fsum) of the grid's per-prompt cost and quality per knob."""
    cost, quality = outcomes(f, scores, data, knobs)
    return tuple(np.array([math.fsum(row) for row in v]) for v in (cost, quality))


def assert_path_equals_grid(knots, pc, pq, cost, quality, probe) -> None:
    """A path's steps (each knot's value holds up to the next knot, the first knot's below it
    too) looked up at ``probe`` equal the grid's sums there, bit for bit."""
    idx = np.maximum(np.searchsorted(knots, probe, side="right") - 1, 0)
    bad = np.flatnonzero((pc[idx] != cost) | (pq[idx] != quality))
    assert bad.size == 0, f"path != grid at knob values {probe[bad][:5].tolist()}"
