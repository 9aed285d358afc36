"""Exact sums: per-group totals and per-group step functions, rounded once.

Values are split error-free into float parts whose sums are exact (Rump-Ogita-Oishi extraction,
:func:`_split`), so a total is the correctly rounded exact sum: it does not depend on the
summation order, the prompt order or the sharding.  :func:`exact_group_sums` sums per group;
:class:`StepSums` keeps per-group step functions of a key (the exact paths of
:mod:`routerbench.engine.paths` and :mod:`routerbench.engine.cascade`).  Also here: the input
checks those kernels share (:func:`check_table`, :func:`check_group`, :func:`check_knobs`) and
the routers' knob check (:func:`knob_problem`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "StepSums",
    "check_group",
    "check_knobs",
    "check_table",
    "exact_group_sums",
    "fsum0",
    "group_parts",
    "knob_problem",
]


def _split(x: np.ndarray, count: int) -> np.ndarray:
    """Error-free split of ``x`` into parts ``[L, *x.shape]`` with ``x == parts.sum(0)`` exactly.

    Level l holds multiples of one power of two and is small enough that any sum of at most
    ``count`` of its parts (in any order) is exact in float64 (Rump-Ogita-Oishi extraction).
    """
    shift = int(count).bit_length() + 1
    parts = []
    r = np.asarray(x, dtype=np.float64)
    while r.size and (mu := float(np.abs(r).max())) > 0.0:
        sigma = math.ldexp(1.0, math.frexp(mu)[1] + shift)
        q = (sigma + r) - sigma
        parts.append(q)
        r = r - q
    return np.stack(parts) if parts else np.zeros((1, *r.shape))


def fsum0(parts: np.ndarray) -> np.ndarray:
    """Correctly rounded sums over axis 0 of exact float parts."""
    cols = parts.reshape(parts.shape[0], -1).T.tolist()
    return np.array([math.fsum(c) for c in cols], dtype=np.float64).reshape(parts.shape[1:])


def group_parts(values: np.ndarray, bins: np.ndarray, n_bins: int) -> np.ndarray:
    """Exact per-bin sums of ``values`` as parts ``[L, n_bins]`` (bincount per level, exact)."""
    return np.stack([np.bincount(bins, lv, n_bins) for lv in _split(values, values.size)])


def exact_group_sums(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-group sums over the last axis, computed exactly and rounded once (like ``math.fsum``).

    ``values[..., n]``, ``group[n]`` in ``[0, n_groups)``; returns ``[..., n_groups]``.  The result
    does not depend on the order of the prompts.

    >>> v = np.array([1e16, 1.0, -1e16, 0.5])
    >>> exact_group_sums(v, np.array([0, 0, 0, 1]), 2).tolist()
    [1.0, 0.5]
    """
    v = np.asarray(values, dtype=np.float64)
    g = check_group(group, v.shape[-1], n_groups)
    rows = v.reshape(-1, v.shape[-1])
    out = [fsum0(group_parts(row, g, n_groups)) for row in rows]
    return np.array(out).reshape(*v.shape[:-1], n_groups)


@dataclass(frozen=True, eq=False)
class StepSums:
    """Exact per-group step functions ``x -> sum over prompts of value_i(x)``, Q quantities.

    Each prompt starts at a base value and jumps at event keys (value_i(x) includes the events
    with key <= x).  ``keys`` are the event keys sorted within each group's block
    ``keys[starts[g]:starts[g + 1]]``; ``cum[q, l, starts[g] + g + j]`` is level l of the exact
    running total of quantity q in group g after its first j events (j = 0: the base).
    """

    keys: np.ndarray
    starts: np.ndarray
    cum: np.ndarray

    @classmethod
    def build(
        cls,
        base: np.ndarray,
        new: np.ndarray,
        old: np.ndarray,
        ev_prompt: np.ndarray,
        ev_key: np.ndarray,
        group: np.ndarray,
        n_groups: int,
    ) -> StepSums:
        """From ``base[Q, n]`` and events (prompt, key, value after ``new[Q, E]``, before
        ``old[Q, E]``).  Lookups read totals only after every event with key <= x, and sums are
        exact, so the order of events with equal keys does not matter (no stable sort)."""
        n, n_ev = base.shape[1], ev_key.size
        ev_group = group[ev_prompt]
        order = np.argsort(ev_key)
        small = np.uint16 if n_groups <= 1 << 16 else np.intp  # radix sort for small codes
        order = order[np.argsort(ev_group[order].astype(small), kind="stable")]
        sizes = np.bincount(ev_group, minlength=n_groups)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        pos_base = starts[:-1] + np.arange(n_groups)
        pos_ev = np.arange(n_ev) + ev_group[order] + 1
        levels = []
        for b, nw, od in zip(base, new, old, strict=True):
            parts = _split(np.concatenate([b, nw, -od]), n + 2 * n_ev)
            flat = np.zeros((parts.shape[0], n_ev + n_groups))
            for lv, p in zip(flat, parts, strict=True):
                lv[pos_base] = np.bincount(group, p[:n], n_groups)
                lv[pos_ev] = (p[n : n + n_ev] + p[n + n_ev :])[order]
            run = np.cumsum(flat, axis=1)  # every partial sum is a sum of parts: exact
            before = np.where(pos_base > 0, run[:, pos_base - 1], 0.0)
            levels.append(run - np.repeat(before, sizes + 1, axis=1))
        cum = np.zeros((len(levels), max(lv.shape[0] for lv in levels), n_ev + n_groups))
        for q, lv in enumerate(levels):
            cum[q, : lv.shape[0]] = lv
        return cls(keys=ev_key[order], starts=starts, cum=cum)

    @property
    def n_groups(self) -> int:
        return int(self.starts.size - 1)

    def _group(self, g: int, x: np.ndarray) -> np.ndarray:
        s, e = self.starts[g], self.starts[g + 1]
        return self.cum[:, :, np.searchsorted(self.keys[s:e], x, "right") + s + g]

    def parts(self, x: np.ndarray) -> np.ndarray:
        """Exact parts ``[Q, L, G, k]`` of every group's totals at keys ``x[k]``."""
        return np.stack([self._group(g, x) for g in range(self.n_groups)], axis=2)

    def totals(self, x: np.ndarray) -> np.ndarray:
        """Correctly rounded totals ``[Q, G, k]`` of every group at keys ``x[k]``."""
        return fsum0(np.moveaxis(self.parts(np.asarray(x, dtype=np.float64)), 1, 0))

    def points(self, g: int) -> tuple[np.ndarray, np.ndarray]:
        """Group g's steps: keys ``[0, distinct event keys > 0]`` and totals ``[Q, steps]``."""
        keys = self.keys[self.starts[g] : self.starts[g + 1]]
        x = np.unique(np.concatenate([[0.0], keys[keys > 0]]))
        return x, fsum0(np.moveaxis(self._group(g, x), 1, 0))


def check_table(x: np.ndarray, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or (shape is not None and a.shape != shape):
        want = "a 2-D (prompts x models) array" if shape is None else f"shape {shape}"
        raise ValueError(f"{name} must be {want}, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} needs at least one prompt and one model, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite (drop prompts with missing outcomes first)")
    return a


def check_group(group: np.ndarray, n: int, n_groups: int) -> np.ndarray:
    g = np.asarray(group)
    if g.shape != (n,) or (g.size and g.dtype.kind not in "iu"):
        raise ValueError(f"group must be {n} integers, got shape {g.shape} dtype {g.dtype}")
    if n_groups < 1 or (g.size and (g.min() < 0 or g.max() >= n_groups)):
        raise ValueError(f"group codes must lie in [0, n_groups={n_groups})")
    return g.astype(np.intp)


def check_knobs(x: np.ndarray, name: str, positive: bool) -> np.ndarray:
    """A 1-D float array without NaN (and > 0 where ``positive``), else a one-line ValueError."""
    a = np.atleast_1d(np.asarray(x, dtype=np.float64))
    if a.ndim != 1 or np.isnan(a).any() or (positive and (a <= 0).any()):
        raise ValueError(f"{name} must be a 1-D array of numbers{' > 0' if positive else ''}")
    return a


def knob_problem(knobs: np.ndarray, name: str) -> str | None:
    """What is wrong with a router's knob values, in one line naming the knob; None if nothing.

    Any number is a knob value (each router gives -inf, 0, inf a meaning); NaN is not.

    >>> knob_problem([0.0, float("nan")], "lambda")
    "knob 'lambda' must be a number, not NaN (got [0.0, nan])"
    """
    a = np.asarray(knobs, dtype=np.float64)
    if a.ndim > 1:
        return f"knob {name!r} must be a list of numbers (got shape {a.shape})"
    if np.isnan(a).any():
        return f"knob {name!r} must be a number, not NaN (got {np.atleast_1d(a).tolist()})"
    return None
