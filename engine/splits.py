"""Train/test splits of prompts, per family.

- :func:`upstream_split` reproduces the original RouterBench split exactly: per family, the unique
  sample ids in order of appearance are shuffled by NumPy's legacy RNG seeded with 42, and the first
  ``int(0.7 * n)`` are train.
- :func:`seeded_split` is the general version: any seed and fraction, NumPy's modern Generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

Families = np.ndarray | tuple[Sequence[str], np.ndarray]  # a name per row, or (names, codes)


def family_rows(families: Families) -> dict[str, np.ndarray]:
    """Each family's rows (ascending), families in order of first appearance. ``families``: a
    name per row, or ``(names, codes)`` with ``names[codes[i]]`` row i's family and the names in
    order of first appearance (compact for a large table: no string per row).

    >>> family_rows(np.array(["b", "a", "b"]))
    {'b': array([0, 2]), 'a': array([1])}
    """
    if isinstance(families, tuple):
        names, codes = list(families[0]), np.asarray(families[1])
    else:
        codes, uniques = pd.factorize(np.asarray(families, dtype=object), sort=False)
        names = [str(u) for u in uniques]
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(np.bincount(codes, minlength=len(names)))
    return {
        name: order[end - count : end]
        for name, count, end in zip(names, np.diff(ends, prepend=0), ends, strict=True)
    }


def upstream_split(families: Families) -> np.ndarray:
    """Boolean train mask (test is its complement), as the original code splits.

    Sample ids are unique in RouterBench, so shuffling the rows of a family shuffles its unique ids.

    >>> upstream_split(np.array(["a"] * 10)).sum()
    np.int64(7)
    """
    return upstream_train(family_rows(families), _count(families))


def upstream_train(rows: dict[str, np.ndarray], n: int) -> np.ndarray:
    """:func:`upstream_split` of ``n`` prompts from their families' rows (:func:`family_rows`)."""
    train = np.zeros(n, dtype=bool)
    for r in rows.values():
        perm = np.arange(len(r))
        np.random.RandomState(42).shuffle(perm)  # same swaps as upstream's seeded np.random.shuffle
        train[r[perm[: int(0.7 * len(r))]]] = True
    return train


def seeded_split(families: Families, seed: int, train_fraction: float = 0.7) -> np.ndarray:
    """Boolean train mask: per family, a seeded random ``train_fraction`` of the prompts.

    >>> m = seeded_split(np.array(["a"] * 10 + ["b"] * 4), seed=1)
    >>> int(m[:10].sum()), int(m[10:].sum())
    (7, 2)
    """
    return seeded_train(family_rows(families), _count(families), seed, train_fraction)


def seeded_train(
    rows: dict[str, np.ndarray], n: int, seed: int, train_fraction: float = 0.7
) -> np.ndarray:
    """:func:`seeded_split` of ``n`` prompts from their families' rows (:func:`family_rows`)."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1) (got {train_fraction})")
    train = np.zeros(n, dtype=bool)
    for j, r in enumerate(rows.values()):
        perm = np.random.default_rng([seed, j]).permutation(len(r))
        train[r[perm[: int(train_fraction * len(r))]]] = True
    return train


def _count(families: Families) -> int:
    return len(families[1]) if isinstance(families, tuple) else len(families)
