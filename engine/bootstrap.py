"""Seeded bootstrap over prompts, vectorised over replicates, independent of sharding.

Each replicate reweights prompts by Poisson(1) counts (the Poisson bootstrap): a prompt's weight in
replicate b is a counter-based draw keyed by (seed, b, prompt id), so it is the same whatever other
prompts are in the batch, in which order, on which worker. Callers take weighted sums within the
same fixed prompt blocks as every other sum (see :mod:`routerbench.engine.evaluate`).
"""

from __future__ import annotations

import math

import numpy as np

from routerbench.engine.rng import keyed_uniforms

# P(Poisson(1) <= j) for j = 0..19; beyond that the mass is below 1e-18.
_POISSON1_CDF = np.cumsum([math.exp(-1.0) / math.factorial(j) for j in range(20)])


def poisson_weights(seed: int, prompt_keys: np.ndarray, replicates: int) -> np.ndarray:
    """Poisson(1) weights ``[replicates, n]`` (float64) keyed by (seed, replicate, prompt).

    >>> w = poisson_weights(0, np.arange(20000, dtype=np.uint64), 3)
    >>> w.shape, bool(abs(w.mean() - 1) < 0.02)
    ((3, 20000), True)
    """
    b = np.arange(replicates, dtype=np.uint64)[:, None]
    u = keyed_uniforms(seed, b, np.asarray(prompt_keys, dtype=np.uint64)[None, :])
    return np.searchsorted(_POISSON1_CDF, u, side="right").astype(np.float64)


def interval(samples: np.ndarray, confidence: float = 0.95, axis: int = 0) -> np.ndarray:
    """Percentile interval ``[2, ...]`` (low, high) of bootstrap samples along ``axis``.

    >>> interval(np.arange(101.0), 0.5).tolist()
    [25.0, 75.0]
    """
    a = (1.0 - confidence) / 2.0
    return np.quantile(samples, [a, 1.0 - a], axis=axis)
