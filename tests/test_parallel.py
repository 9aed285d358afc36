"""Fits on several processes (engine.parallel): same results, in order, whatever the workers."""

from __future__ import annotations

import time

import numpy as np
import pytest

from routerbench.engine.data import RoutingData
from routerbench.engine.parallel import (
    Deferred,
    current_workers,
    deferring,
    map_fits,
    resolved,
    workers,
)
from routerbench.routers.base import create


def _data(n: int = 300, m: int = 3, d: int = 8, seed: int = 0) -> RoutingData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    q = (x[:, :m] + rng.normal(scale=0.5, size=(n, m)) > 0).astype(float)
    q[rng.random((n, m)) < 0.1] = np.nan  # per-model fits use each model's own known rows
    q[:, 0] = np.where(np.isnan(q[:, 0]), 1.0, q[:, 0])
    return RoutingData(
        quality=q,
        cost=np.exp(np.linspace(-8, -5, m))[None, :] * np.ones((n, m)),
        models=[f"m{j}" for j in range(m)],
        prompt_ids=[f"p{i}" for i in range(n)],
        eval_names=["mmlu-x"] * n,
        features=x,
    )


def _neg(x: int) -> int:
    return -x


def _inverse(x: int) -> float:
    return 1 / x


def _slow_inverse(x: int) -> float:
    time.sleep(0.2)
    return 1 / x


class TestWorkers:
    def test_default_is_one_and_block_restores(self) -> None:
        """Library calls use one process; the block's setting ends with it."""
        assert current_workers() == 1
        with workers(3):
            assert current_workers() == 3
        assert current_workers() == 1

    @pytest.mark.parametrize("bad", [0, -1, 1.5, True])
    def test_refuses_bad_counts(self, bad: object) -> None:
        """A count that is not an integer >= 1 is refused."""
        with pytest.raises(ValueError, match="workers must be an integer >= 1"):
            with workers(bad):  # type: ignore[arg-type]
                pass


class TestMapFits:
    def test_order_kept_on_two_processes(self) -> None:
        """Results come back in the items' order, from worker processes."""
        with workers(2):
            assert map_fits(_neg, list(range(7))) == [-i for i in range(7)]

    @pytest.mark.parametrize("name", ["mlp", "linear"])
    def test_per_model_fits_identical_on_two_processes(self, name: str) -> None:
        """One regressor per model fitted on 2 processes predicts bit-identically to 1."""
        data = _data()
        router = create(name, per_model=True, **({"max_iter": 30} if name == "mlp" else {}))
        one = router.fit(data).score(data)
        with workers(2):
            two = router.fit(data).score(data)
        np.testing.assert_array_equal(one.P, two.P)


class TestDeferring:
    def test_returns_at_once_and_collects(self) -> None:
        """Inside deferring, fits on 2 workers come back as a Deferred in the list; their
        results are in order and their seconds add up."""
        with workers(2), deferring() as pending:
            got = map_fits(_neg, [1, 2, 3])
            assert isinstance(got, Deferred) and pending == [got]
        assert got.result() == [-1, -2, -3] and got.wait() >= 0.0

    def test_one_worker_does_not_defer(self) -> None:
        """With one worker the fits run here, at once."""
        with deferring() as pending:
            assert map_fits(_neg, [1, 2]) == [-1, -2] and pending == []

    def test_error_raised_at_wait(self) -> None:
        """A fit's error in a worker is raised when the results are waited for."""
        with workers(2), deferring():
            got = map_fits(_inverse, [1, 0])
        with pytest.raises(ZeroDivisionError):
            got.wait()

    def test_failed_family_fit_is_a_failed_row(self) -> None:
        """A fit failing in a worker fails its own family's rows; the other family's fit, queued
        with it, succeeds, and its seconds include the workers' time."""
        from dataclasses import dataclass

        from routerbench.routers.base import REGISTRY, Fitted, Router, register
        from routerbench.sweeps.cells import Cell, evaluate_cell
        from routerbench.sweeps.split import masked_split

        @dataclass(frozen=True)
        class _Fitted(Fitted):
            values: object
            knob_name: str = ""

            def score(self, data: RoutingData) -> int:
                return data.n_prompts if resolved(self.values) else 0

            def decide(self, n: int, knobs: np.ndarray) -> np.ndarray:
                return np.zeros((len(knobs), n), dtype=np.int64)

            def default_knobs(self) -> np.ndarray:
                return np.array([np.nan])

        @register("test-deferred")
        @dataclass(frozen=True, kw_only=True)
        class _Router(Router):
            knob = ""

            def fit(self, train: RoutingData) -> _Fitted:
                bad = 0 if train.families[0] == "hellaswag" else 1
                return _Fitted(map_fits(_slow_inverse, [1, 2, bad]))

        try:
            data = _data(n=400)
            data = RoutingData(
                quality=data.quality,
                cost=data.cost,
                models=data.models,
                prompt_ids=data.prompt_ids,
                eval_names=["mmlu-x"] * 200 + ["hellaswag"] * 200,
            )
            rows = {f: np.flatnonzero(data.families == f) for f in ("mmlu", "hellaswag")}
            split = masked_split("custom", 0, rows, np.arange(400) % 2 == 0)
            with workers(2):
                res = evaluate_cell(data, Cell(0, "test-deferred", {}, "custom"), split)
        finally:
            del REGISTRY["test-deferred"]
        status = {r["family"]: (r["status"], r["error"]) for r in res.rows}
        assert status["mmlu"] == ("ok", "")
        assert min(r["seconds"] for r in res.rows if r["family"] == "mmlu") >= 0.6
        assert status["hellaswag"][0] == "failed" and "ZeroDivisionError" in status["hellaswag"][1]
