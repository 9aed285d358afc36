"""Work on several processes (engine.parallel, the in-process executor's pool): same results,
in order, whatever the workers."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from routerbench.engine import synth
from routerbench.engine.data import RoutingData
from routerbench.engine.parallel import current_workers, map_fits, workers
from routerbench.routers.base import create
from routerbench.sweeps.execute import local_executor, plan, units
from routerbench.sweeps.spec import parse


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


class TestPoolExecutor:
    SPEC: ClassVar[dict[str, Any]] = {
        "data": {"synthetic_n": 3000, "families": ["mmlu", "mbpp", "hellaswag"]},
        "split": {"kind": "seeded", "seeds": [0, 1]},
        "routers": [
            {"name": "oracle"},
            {"name": "knn", "grid": {"k": [3, 7]}, "params": {"feature_dim": 8}},
            {"name": "mlp", "params": {"hidden": [8], "max_iter": 20, "feature_dim": 8}},
            {"name": "cascade", "grid": {"eps": [0.0, 0.2]}},
        ],
        "metrics": {"bootstrap": 10},
    }

    def _run(self, n: int) -> list:
        spec = parse(self.SPEC)
        p = plan(spec, synth.generate(3000, 0))
        splits = {s.name: s for s in p.splits}
        opts = {"bootstrap": 10, "seed": 3, "fail_fast": False}
        with workers(n):
            return sorted(local_executor(p.data, p.cells, splits, opts), key=lambda r: r.cell.index)

    def test_two_workers_identical_to_one(self) -> None:
        """(cells, family) units on 2 worker processes give bit-identical cells, with every
        family of each cell, in the split's order."""
        one, two = self._run(1), self._run(2)
        assert [r.cell for r in one] == [r.cell for r in two]
        for a, b in zip(one, two, strict=True):
            pd.testing.assert_frame_equal(
                pd.DataFrame(a.rows).drop(columns="seconds"),
                pd.DataFrame(b.rows).drop(columns="seconds"),
                check_exact=True,
            )
            for fam in a.boot:
                for x, y in zip(
                    a.boot[fam] + a.exact.get(fam, ()),
                    b.boot[fam] + b.exact.get(fam, ()),
                    strict=True,
                ):
                    np.testing.assert_array_equal(x, y)

    def test_units_group_shared_work(self) -> None:
        """The KNN cells that differ only in k are one unit per (split, family); others alone."""
        p = plan(parse(self.SPEC), synth.generate(3000, 0))
        got = units(p.cells, {s.name: s for s in p.splits})
        knn = [[c.params["k"] for c in g] for g, *_ in got if g[0].router == "knn"]
        assert knn == [[3, 7]] * 6  # 2 splits x 3 families
        assert all(len(g) == 1 for g, *_ in got if g[0].router != "knn")
        n_cells = len(p.cells)
        assert sum(len(g) for g, *_ in got) == n_cells * 3  # every cell on every family once


class TestFailures:
    def test_failed_family_fit_is_a_failed_row(self) -> None:
        """A per-model fit failing in a worker fails its own family's rows; the other family's
        fits, on the same workers, succeed."""
        from dataclasses import dataclass

        from routerbench.routers.base import REGISTRY, Fitted, Router, register
        from routerbench.sweeps.cells import Cell, evaluate_cell
        from routerbench.sweeps.split import masked_split

        @dataclass(frozen=True)
        class _Fitted(Fitted):
            values: object
            knob_name: str = ""

            def score(self, data: RoutingData) -> int:
                return data.n_prompts if self.values else 0

            def decide(self, n: int, knobs: np.ndarray) -> np.ndarray:
                return np.zeros((len(knobs), n), dtype=np.int64)

            def default_knobs(self) -> np.ndarray:
                return np.array([np.nan])

        @register("test-failing")
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
                res = evaluate_cell(data, Cell(0, "test-failing", {}, "custom"), split)
        finally:
            del REGISTRY["test-failing"]
        status = {r["family"]: (r["status"], r["error"]) for r in res.rows}
        assert status["mmlu"] == ("ok", "")
        assert status["hellaswag"][0] == "failed" and "ZeroDivisionError" in status["hellaswag"][1]
