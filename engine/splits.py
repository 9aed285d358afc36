"""Train/test splits of prompts, per family.

- :func:`upstream_split` reproduces the original RouterBench split exactly: per family, the unique
  sample ids in order of appearance are shuffled by NumPy's legacy RNG seeded with 42, and the first
  ``int(0.7 * n)`` are train.
- :func:`seeded_split` is the general version: any seed and fraction, NumPy's modern Generator.
"""

from __future__ import annotations

import numpy as np


def upstream_split(families: np.ndarray) -> np.ndarray:
    """Boolean train mask (test is its complement), as the original code splits.

    Sample ids are unique in RouterBench, so shuffling the rows of a family shuffles its unique ids.

    >>> upstream_split(np.array(["a"] * 10)).sum()
    np.int64(7)
    """
    fams = np.asarray(families).astype(str)
    train = np.zeros(len(fams), dtype=bool)
    for f in _in_order(fams):
        rows = np.flatnonzero(fams == f)
        perm = np.arange(len(rows))
        np.random.RandomState(42).shuffle(perm)  # same swaps as upstream's seeded np.random.shuffle
        train[rows[perm[: int(0.7 * len(rows))]]] = True
    return train


def seeded_split(families: np.ndarray, seed: int, train_fraction: float = 0.7) -> np.ndarray:
    """Boolean train mask: per family, a seeded random ``train_fraction`` of the prompts.

    >>> m = seeded_split(np.array(["a"] * 10 + ["b"] * 4), seed=1)
    >>> int(m[:10].sum()), int(m[10:].sum())
    (7, 2)
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1) (got {train_fraction})")
    fams = np.asarray(families).astype(str)
    train = np.zeros(len(fams), dtype=bool)
    for j, f in enumerate(_in_order(fams)):
        rows = np.flatnonzero(fams == f)
        perm = np.random.default_rng([seed, j]).permutation(len(rows))
        train[rows[perm[: int(train_fraction * len(rows))]]] = True
    return train


def _in_order(values: np.ndarray) -> list[str]:
    _, first = np.unique(values, return_index=True)
    return [str(values[i]) for i in np.sort(first)]
