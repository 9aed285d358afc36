"""The contract every registered router passes (as every Optuna sampler passes one suite)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from routerbench.engine import synth
from routerbench.engine.evaluate import NO_CALL
from routerbench.routers.base import REGISTRY, create, load_all
from routerbench.sweeps.runner import merge_paths, outcomes

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

    def test_exact_path_matches_direct_evaluation(self, name, split) -> None:
        """Where a router has an exact path, its value at each knob equals direct evaluation,
        and merging the paths of two halves gives the same values."""
        f, test = fitted(name, split), split[1]
        if not hasattr(f, "exact_path"):
            pytest.skip(f"{name} has a finite knob set, no path")
        scores = f.score(test)
        knots, pc, pq, n = f.exact_path(scores, test)
        assert n == test.n_prompts and np.all(np.diff(knots) > 0)
        # Probe between breakpoints (at a breakpoint itself ties decide; the path's own tests
        # cover that), and beyond the last one.
        mids = (knots[1:-1] + knots[2:]) / 2
        probe = np.append(mids[:: max(1, len(mids) // 40)], knots[-1] + 1 + abs(knots[-1]))
        cost, quality = outcomes(f, scores, test, probe)
        idx = np.searchsorted(knots, probe, side="right") - 1
        np.testing.assert_allclose(pc[idx], cost.sum(axis=1), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(pq[idx], quality.sum(axis=1), rtol=1e-12, atol=1e-12)
        h = test.n_prompts // 2
        halves = [test.take(np.arange(h)), test.take(np.arange(h, test.n_prompts))]
        mk, mc, _ = merge_paths([f.exact_path(f.score(t), t)[:3] for t in halves])
        idx2 = np.searchsorted(mk, probe, side="right") - 1
        np.testing.assert_allclose(mc[idx2], cost.sum(axis=1), rtol=1e-12, atol=1e-15)
