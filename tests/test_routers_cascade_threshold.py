"""Cascade and threshold routers: construction checks, upstream order, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from routerbench.engine import synth
from routerbench.engine.errors import RouterError, SpecError
from routerbench.routers.base import create
from routerbench.routers.threshold import threshold_for_share
from routerbench.sweeps.spec import parse

UPSTREAM_ORDER = [
    "mistralai/mistral-7b-chat", "WizardLM/WizardLM-13B-V1.2", "mistralai/mixtral-8x7b-chat",
    "meta/code-llama-instruct-34b-chat", "zero-one-ai/Yi-34B-Chat", "meta/llama-2-70b-chat",
    "gpt-3.5-turbo-1106", "claude-instant-v1", "claude-v1", "claude-v2", "gpt-4-1106-preview",
]  # fmt: skip


@pytest.fixture(scope="module")
def mmlu():
    data = synth.generate(3000, seed=2)
    rows = np.flatnonzero(data.families == "mmlu")
    return data.take(rows[:600]), data.take(rows[600:])


class TestCascade:
    @pytest.mark.parametrize(
        ("params", "needle"),
        [
            ({"eps": 1.5}, "eps must be in [0, 1]"),
            ({"eps": -0.1}, "eps must be in [0, 1]"),
            ({"quantile": 2.0}, "quantile"),
            ({"order": "random"}, "order must be"),
            ({"judge": "human"}, "judge must be"),
        ],
    )
    def test_refused_at_construction(self, params: dict, needle: str) -> None:
        """Bad hyperparameters give a one-line RouterError naming the parameter."""
        with pytest.raises(RouterError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            create("cascade", **params)

    def test_negative_budget_refused_in_spec(self) -> None:
        """A non-positive budget in a spec is refused before anything runs."""
        with pytest.raises(SpecError, match=r"routers\[0\].knobs': budgets must be > 0"):
            parse({"routers": [{"name": "cascade", "knobs": [0.1, -1.0]}]})

    def test_upstream_order(self, mmlu) -> None:
        """order='price' calls models by ascending per-token price, as the original."""
        fitted = create("cascade").fit(mmlu[0])
        assert [mmlu[0].models[j] for j in fitted.order] == UPSTREAM_ORDER

    def test_perfect_judge_reaches_oracle_quality(self, mmlu) -> None:
        """With eps = 0 and an unlimited budget, every prompt reaches a best answer if one
        exists at theta = 1 (binary task), so quality equals the oracle's."""
        train, test = mmlu
        fitted = create("cascade", eps=0.0).fit(train)
        assert fitted.theta == 1.0
        _, quality = fitted.outcomes(fitted.score(test), test, np.array([np.inf]))
        assert (quality[0] == test.quality.max(axis=1)).all()

    def test_learned_judge(self, mmlu) -> None:
        """A learned judge (KNN) gives valid outcomes that differ from the simulated judge."""
        train, test = mmlu
        learned = create("cascade", judge="learned", k=5).fit(train)
        sim = create("cascade").fit(train)
        a = learned.outcomes(learned.score(test), test, np.array([1.0]))
        b = sim.outcomes(sim.score(test), test, np.array([1.0]))
        assert a[0].shape == b[0].shape and (a[0] != b[0]).any()


class TestThreshold:
    def test_share_calibration(self, mmlu) -> None:
        """A threshold calibrated to a share sends that share of training prompts to strong."""
        train, _ = mmlu
        fitted = create("threshold", k=5).fit(train)
        s = fitted.train_scores
        for share in (0.0, 0.25, 0.5, 1.0):
            t = fitted.calibrate(share)
            assert abs((s >= t).mean() - share) <= 1 / len(s) + (s == t).mean()

    def test_threshold_for_share_bounds(self) -> None:
        """Share 0 is an infinite threshold; share 1 the lowest score; shares outside refused."""
        s = np.array([0.3, 0.1, 0.2])
        assert threshold_for_share(s, 0.0) == np.inf and threshold_for_share(s, 1.0) == 0.1
        with pytest.raises(ValueError, match="share"):
            threshold_for_share(s, 1.5)

    def test_only_strong_and_weak(self, mmlu) -> None:
        """Decisions are only ever the strong or the weak model."""
        train, test = mmlu
        fitted = create("threshold", strong="claude-v2", weak="claude-instant-v1", k=5).fit(train)
        d = fitted.decide(fitted.score(test), fitted.default_knobs())
        allowed = {test.models.index("claude-v2"), test.models.index("claude-instant-v1")}
        assert set(np.unique(d)) <= allowed and len(set(np.unique(d))) == 2

    def test_unknown_predictor_refused(self) -> None:
        """A predictor that is no predictive router is refused, naming the three there are."""
        with pytest.raises(RouterError) as info:
            create("threshold", predictor="svm")
        assert str(info.value) == (
            "router 'threshold': predictor must be one of ['knn', 'mlp', 'linear'] (got 'svm')"
        )

    def test_same_models_refused(self) -> None:
        """Strong and weak must differ."""
        with pytest.raises(RouterError, match="must be different"):
            create("threshold", strong="claude-v2", weak="claude-v2")
