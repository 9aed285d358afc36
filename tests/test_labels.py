"""Short labels and the reference/router kinds."""

from __future__ import annotations

import json

from routerbench.sweeps.labels import REFERENCES, kind, label, short_labels


def p(**kw: object) -> str:
    return json.dumps(kw, sort_keys=True, separators=(",", ":"))


class TestShortLabels:
    def test_varying_parameters_only_to_three_digits(self) -> None:
        """Only the parameter that varies is shown, to 3 significant digits."""
        rows = [
            ("mlp", p(alpha=0.07029897993777041, seed=0, cost_model="expected")),
            ("mlp", p(alpha=0.000123456, seed=0, cost_model="expected")),
        ]
        got = short_labels([r for r, _ in rows], [q for _, q in rows])
        assert got == ["mlp(alpha=0.0703)", "mlp(alpha=0.000123)"]

    def test_optuna_trials_by_number(self) -> None:
        """An Optuna trial is labelled by its slot, a grid cell (-1) by its parameters."""
        got = short_labels(["mlp", "knn"], [p(alpha=0.3), p(k=40)], [17, -1])
        assert got == ["mlp#17", "knn(k=40)"]

    def test_singles_by_model(self) -> None:
        """A single model is labelled by its model name."""
        assert label("single", p(model="openai/gpt-4")) == "single:openai/gpt-4"

    def test_unique_when_rounding_collides(self) -> None:
        """Two configurations equal to 3 digits get their parameters in full."""
        got = short_labels(["knn", "knn"], [p(k=5, eps=0.12341), p(k=5, eps=0.12342)])
        assert len(set(got)) == 2 and "0.12341" in got[0]

    def test_defaults_hidden(self) -> None:
        """A parameter at its default and the same everywhere is not shown."""
        assert short_labels(["knn", "knn"], [p(k=10, seed=0), p(k=40, seed=0)]) == [
            "knn(k=10)",
            "knn(k=40)",
        ]


class TestKind:
    def test_references(self) -> None:
        """single, oracle, zero and frontier are references; learned routers are routers."""
        assert [kind(r) for r in REFERENCES] == ["reference"] * 4
        assert kind("knn") == kind("cascade") == kind("random") == "router"
