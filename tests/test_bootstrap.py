"""Poisson bootstrap weights: the fast kernel against its definition, and its properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.engine import bootstrap
from routerbench.engine.bootstrap import interval, poisson_weights
from routerbench.engine.rng import keyed_uniforms, mix64, stable_keys


def reference(seed: int, keys: np.ndarray, replicates: int) -> np.ndarray:
    """The definition: Poisson(1) inverse CDF of the keyed uniform of (seed, replicate, prompt)."""
    b = np.arange(replicates, dtype=np.uint64)[:, None]
    u = keyed_uniforms(seed, b, np.asarray(keys, dtype=np.uint64)[None, :])
    return np.searchsorted(bootstrap._POISSON1_CDF, u, side="right").astype(np.float64)


class TestPoissonWeights:
    @settings(max_examples=60, deadline=None)
    @given(
        seed=st.integers(0, 2**64 - 1),
        keys=st.lists(st.integers(0, 2**64 - 1), min_size=0, max_size=300),
        replicates=st.integers(0, 40),
    )
    def test_equals_definition(self, seed: int, keys: list[int], replicates: int) -> None:
        """Bit for bit the searchsorted-of-uniforms expression, for any seed, keys and count."""
        k = np.array(keys, dtype=np.uint64)
        got = poisson_weights(seed, k, replicates)
        assert got.dtype == np.float64 and got.shape == (replicates, len(k))
        np.testing.assert_array_equal(got, reference(seed, k, replicates))

    @pytest.mark.parametrize("n", [1, 4095, 1 << 15, (1 << 15) + 3, 70_000])
    def test_chunk_boundaries(self, n: int) -> None:
        """Sizes around the chunking of replicates (one replicate per chunk beyond 2**15 keys)."""
        k = mix64(np.arange(n, dtype=np.uint64))
        np.testing.assert_array_equal(poisson_weights(3, k, 7), reference(3, k, 7))

    def test_large_weights_counted(self) -> None:
        """The rare weights of 4 and more (found by searchsorted) occur and match."""
        k = mix64(np.arange(50_000, dtype=np.uint64))
        w = poisson_weights(11, k, 40)
        assert w.max() >= 7  # P(w >= 7) = 8.3e-5 per draw, 2e6 draws
        np.testing.assert_array_equal(w, reference(11, k, 40))

    def test_poisson_one(self) -> None:
        """Mean and variance 1, and P(0) = 1/e, within sampling error over 2e6 draws."""
        w = poisson_weights(0, mix64(np.arange(20_000, dtype=np.uint64)), 100)
        assert abs(w.mean() - 1) < 0.005 and abs(w.var() - 1) < 0.01
        assert abs((w == 0).mean() - np.exp(-1)) < 0.002

    def test_independent_of_batch(self) -> None:
        """A prompt's weights do not depend on the other prompts or their order."""
        k = stable_keys([f"p{i}" for i in range(500)])
        whole = poisson_weights(5, k, 30)
        perm = np.random.default_rng(0).permutation(500)[:123]
        np.testing.assert_array_equal(poisson_weights(5, k[perm], 30), whole[:, perm])

    def test_seed_changes_weights(self) -> None:
        k = stable_keys([f"p{i}" for i in range(500)])
        assert not np.array_equal(poisson_weights(0, k, 5), poisson_weights(1, k, 5))


def test_interval_percentiles() -> None:
    """The percentile interval of 0..100 at 90% is (5, 95)."""
    np.testing.assert_allclose(interval(np.arange(101.0), 0.9), [5.0, 95.0])


def test_interval_bounds() -> None:
    """bounds clip the ends to the metric's range (rounding past 1 comes back to 1)."""
    got = interval(np.array([0.25, 1.0 + 2.0**-52]), 1.0, bounds=(0.0, 1.0))
    assert got.tolist() == [0.25, 1.0]
