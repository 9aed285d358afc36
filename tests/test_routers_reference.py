"""Reference routers and the registry."""

from __future__ import annotations

import numpy as np
import pytest

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError
from routerbench.engine.evaluate import NO_CALL, realised
from routerbench.engine.metrics import ndch
from routerbench.routers.base import create, params_json
from routerbench.routers.reference import oracle_choice


def small(n: int = 400, m: int = 4, seed: int = 0) -> RoutingData:
    rng = np.random.default_rng(seed)
    skill = np.linspace(0.3, 0.9, m)
    q = (rng.random((n, m)) < skill).astype(float)
    c = np.exp(np.linspace(-9, -5, m))[None, :] * rng.uniform(0.5, 1.5, (n, m))
    return RoutingData(
        quality=q,
        cost=c,
        models=[f"m{j}" for j in range(m)],
        prompt_ids=[f"p{i}" for i in range(n)],
        eval_names=["mmlu-x"] * n,
    )


class TestRegistry:
    def test_unknown_name_suggests(self) -> None:
        """An unknown router name lists the known ones and suggests the closest."""
        with pytest.raises(RouterError, match=r"unknown router 'oracel'.*did you mean 'oracle'"):
            create("oracel")

    def test_unknown_parameter(self) -> None:
        """An unknown hyperparameter is named with the allowed ones."""
        with pytest.raises(RouterError, match=r"unknown parameter 'modle'.*did you mean 'model'"):
            create("single", modle="x")

    def test_params_json_canonical(self) -> None:
        """Parameters serialise as sorted compact JSON."""
        assert params_json(create("single", model="m1")) == '{"model":"m1"}'


class TestOracle:
    def brute(self, q: np.ndarray, c: np.ndarray, upstream: bool) -> np.ndarray:
        out = []
        for qi, ci in zip(q, c, strict=True):
            if upstream and qi.max() <= 0:
                out.append(NO_CALL)
                continue
            best = [j for j in range(len(qi)) if qi[j] == qi.max()]
            out.append(min(best, key=lambda j: (ci[j], j)))
        return np.array(out)

    @pytest.mark.parametrize("mode", ["cheapest", "upstream"])
    def test_matches_rule(self, mode: str) -> None:
        """Best score, then cheapest, then first; no call where all are 0 in upstream mode."""
        rng = np.random.default_rng(1)
        q = rng.integers(0, 3, (300, 5)) / 2
        c = rng.integers(1, 4, (300, 5)).astype(float)
        assert (oracle_choice(q, c, mode) == self.brute(q, c, mode == "upstream")).all()

    def test_bad_mode(self) -> None:
        """An unknown no_model_correct value is refused at construction."""
        with pytest.raises(RouterError, match="no_model_correct"):
            create("oracle", no_model_correct="never")


class TestZeroRouter:
    def test_realises_hull(self) -> None:
        """Mixtures land near the hull of the single models, at the asked cost."""
        data = small(n=20000)
        fitted = create("zero", seed=3).fit(data)
        knobs = fitted.default_knobs()
        choice = fitted.decide(fitted.score(data), knobs)
        cm = realised(data.cost, choice).mean(axis=1)
        qm = realised(data.quality, choice).mean(axis=1)
        hc, hq = ndch(data.cost.mean(0), data.quality.mean(0))
        np.testing.assert_allclose(np.interp(cm, hc, hq), qm, atol=0.02)
        np.testing.assert_allclose(cm, np.clip(knobs, hc[0], hc[-1]), rtol=0.05)

    def test_draws_do_not_depend_on_batch(self) -> None:
        """A prompt's decision is the same in any subset of prompts."""
        data = small()
        fitted = create("zero", seed=5).fit(data)
        knobs = fitted.default_knobs()
        whole = fitted.decide(fitted.score(data), knobs)
        idx = np.arange(data.n_prompts)[::-3]
        part = fitted.decide(fitted.score(data.take(idx)), knobs)
        assert (whole[:, idx] == part).all()

    def test_upstream_mode_is_the_test_sets_single_models(self) -> None:
        """mode='upstream': one point per model, each the model's own point on the scored data
        (nothing learned from the training data), so its hull is that of the single models."""
        train, test = small(seed=1), small(n=300, seed=2)
        fitted = create("zero", mode="upstream").fit(train)
        knobs = fitted.default_knobs()
        assert knobs.tolist() == [0.0, 1.0, 2.0, 3.0]
        choice = fitted.decide(fitted.score(test), knobs)
        np.testing.assert_array_equal(choice, np.repeat(np.arange(4)[:, None], 300, axis=1))
        np.testing.assert_allclose(realised(test.cost, choice).sum(1), test.cost.sum(0), rtol=1e-12)

    @pytest.mark.parametrize("knob", [4.0, -1.0, 0.5])
    def test_upstream_mode_refuses_a_knob_that_is_no_model(self, knob: float) -> None:
        """A knob that is not a model column is refused in one line naming the range."""
        fitted = create("zero", mode="upstream").fit(small())
        with pytest.raises(RouterError, match=r"knob 'model' .* \[0, 4\)"):
            fitted.decide(fitted.score(small()), np.array([0.0, knob]))

    def test_unknown_mode(self) -> None:
        """An unknown mode names the allowed ones."""
        with pytest.raises(RouterError, match="mode must be 'fitted' or 'upstream'"):
            create("zero", mode="test")


class TestRandomRouter:
    def test_uniform_and_seeded(self) -> None:
        """Choices are roughly uniform and change with the seed."""
        data = small(n=8000)
        a = create("random", seed=1).fit(data)
        b = create("random", seed=2).fit(data)
        ca = a.decide(a.score(data), a.default_knobs())[0]
        cb = b.decide(b.score(data), b.default_knobs())[0]
        counts = np.bincount(ca, minlength=4) / len(ca)
        assert np.abs(counts - 0.25).max() < 0.03
        assert (ca != cb).any()
