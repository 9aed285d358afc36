"""Fits on several processes (engine.parallel): same results, in order, whatever the workers."""

from __future__ import annotations

import numpy as np
import pytest

from routerbench.engine.data import RoutingData
from routerbench.engine.parallel import current_workers, map_fits, workers
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
