"""Seeded bootstrap over prompts, vectorised over replicates, independent of sharding.

Each replicate reweights prompts by Poisson(1) counts (the Poisson bootstrap): a prompt's weight in
replicate b is a counter-based draw keyed by (seed, b, prompt id), so it is the same whatever other
prompts are in the batch, in which order, on which worker. Callers take weighted sums within the
same fixed prompt blocks as every other sum (see :mod:`routerbench.engine.evaluate`).
"""

from __future__ import annotations

import math

import numpy as np

from routerbench.engine.rng import GOLDEN, keyed_bits, mix64_inplace

# P(Poisson(1) <= j) for j = 0..19; beyond that the mass is below 1e-18.
_POISSON1_CDF = np.cumsum([math.exp(-1.0) / math.factorial(j) for j in range(20)])
# The same thresholds on the 53-bit integers behind keyed_uniforms' u = x / 2**53: cdf <= u exactly
# when ceil(cdf * 2**53) <= x (scaling by a power of two is exact), so counting thresholds <= x
# is searchsorted(_POISSON1_CDF, u, side="right") without converting to floats.
_THRESHOLDS = np.array([math.ceil(float(c) * 2.0**53) for c in _POISSON1_CDF], dtype=np.uint64)
_CHUNK = 1 << 15  # uint64 values per chunk of replicates (256 KiB)
_COMMON = 4  # weights 0..3 by comparisons; the rare larger ones (P = 0.019) by searchsorted


def poisson_weights(seed: int, prompt_keys: np.ndarray, replicates: int) -> np.ndarray:
    """Poisson(1) weights ``[replicates, n]`` (float64) keyed by (seed, replicate, prompt).

    The draw is ``searchsorted(cdf, keyed_uniforms(seed, replicate, prompt), "right")``, computed
    on the uniforms' integers in place (the tests check it against that expression).

    >>> w = poisson_weights(0, np.arange(20000, dtype=np.uint64), 3)
    >>> w.shape, bool(abs(w.mean() - 1) < 0.02)
    ((3, 20000), True)
    """
    keys = np.asarray(prompt_keys, dtype=np.uint64).reshape(-1) + GOLDEN
    rows = keyed_bits(seed, np.arange(replicates, dtype=np.uint64))  # [B]: one hash per replicate
    counts = np.empty((replicates, len(keys)), dtype=np.uint8)
    # Replicates in chunks of about _CHUNK values, so the scratch arrays stay in cache.
    step = max(1, _CHUNK // max(1, len(keys)))
    x = np.empty((min(step, replicates), len(keys)), dtype=np.uint64)
    hit = np.empty(x.shape, dtype=bool)
    for lo in range(0, replicates, step):
        hi = min(lo + step, replicates)
        xs, hs, cs = x[: hi - lo], hit[: hi - lo], counts[lo:hi]
        np.bitwise_xor(keys[None, :], rows[lo:hi, None], out=xs)
        mix64_inplace(xs)
        xs >>= np.uint64(11)
        np.greater_equal(xs, _THRESHOLDS[0], out=hs)
        np.copyto(cs, hs, casting="unsafe")
        for t in _THRESHOLDS[1:_COMMON]:
            np.greater_equal(xs, t, out=hs)
            cs += hs.view(np.uint8)
        tail = np.flatnonzero(hs)  # at or above the last threshold counted: _COMMON or more
        if len(tail):
            cs.reshape(-1)[tail] = np.searchsorted(_THRESHOLDS, xs.reshape(-1)[tail], "right")
    return counts.astype(np.float64)


def interval(
    samples: np.ndarray,
    confidence: float = 0.95,
    axis: int = 0,
    *,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> np.ndarray:
    """Percentile interval ``[2, ...]`` (low, high) of bootstrap samples along ``axis``.

    Why percentile (not basic or BCa): its ends are replicate values (or between two of them), so
    when every replicate lies in the metric's range (a mean quality in [0, 1], a mean cost >= 0,
    an AIQ in [0, 1]) the interval does too, by construction, and it follows any monotone
    transformation of the metric. The basic interval ``2 * estimate - quantiles`` reflects the
    replicates about the estimate and leaves the range near its ends (a quality near 1 gets an
    upper end above 1). BCa is percentile at adjusted levels, so it would stay in range too, but
    its acceleration needs a jackknife over prompts: per-prompt outcomes at every knob, which the
    block sums (one pass, any sharding) do not keep, and on the small families where intervals
    matter most, n leave-one-out values estimate it poorly.
    ``bounds`` (the metric's range) only absorbs the rounding of the quantile's interpolation,
    a few ulps.

    >>> interval(np.arange(101.0), 0.5).tolist()
    [25.0, 75.0]
    """
    a = (1.0 - confidence) / 2.0
    return np.clip(np.quantile(samples, [a, 1.0 - a], axis=axis), *bounds)


def recentre(
    values: np.ndarray, old: float, new: float, bounds: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """Move interval ends ``values`` around estimate ``old`` to ones around ``new``, within
    ``bounds``: the increasing piecewise-linear map of ``[low, high]`` onto itself that sends
    ``low`` to ``low``, ``old`` to ``new`` and ``high`` to ``high``.

    Used where the estimate comes from an exact path but the replicates from the grid points on
    it. Unlike adding ``new - old`` (which gave AIQ intervals ending at 1.0021), the result stays
    in ``bounds``, and an interval that contains ``old`` contains ``new``. The identity when
    ``new == old``; estimates are taken into ``bounds`` first.

    >>> recentre(np.array([0.25, 0.5, 0.75]), 0.5, 0.75).tolist()
    [0.375, 0.75, 0.875]
    """
    v = np.asarray(values, dtype=np.float64)
    low, high = bounds
    old, new = (min(max(x, low), high) for x in (old, new))  # an AIQ can round to 1 + 1 ulp
    if old == new:
        return np.clip(v, low, high)
    left = new if old == low else np.minimum(low + (v - low) * ((new - low) / (old - low)), new)
    right = new if old == high else np.maximum(new + (v - old) * ((high - new) / (high - old)), new)
    return np.clip(np.where(v < old, left, np.where(v > old, right, new)), low, high)
