"""Splits of a data set into train and test prompts per family: the kinds a spec can name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routerbench.engine.data import PAPER_FAMILIES, RoutingData
from routerbench.engine.errors import DataError
from routerbench.engine.rowgroups import ParquetRows
from routerbench.engine.splits import family_rows, seeded_train, upstream_train

SPLIT_KINDS = ("upstream", "seeded", "ood", "kfold")


@dataclass(frozen=True, eq=False)
class Split:
    """Train and test prompt rows per family. ``name`` identifies it in results."""

    name: str
    seed: int
    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]

    def evaluated(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``(family, train rows, test rows)`` of the families a cell is evaluated on, in order:
        those with both training and test prompts (the others have nothing to fit or score)."""
        return [
            (fam, self.train[fam], test)
            for fam, test in self.test.items()
            if len(test) and len(self.train[fam])
        ]


def select_families(
    data: RoutingData | ParquetRows, asked: Sequence[str] | None = None
) -> list[str]:
    """``None``/``["paper"]``: the paper's seven families present (else every family); ``["all"]``:
    every family; otherwise the named ones, which must exist."""
    names = data.family_names()
    unknown = [f for f in asked or () if f not in names and f not in ("paper", "all")]
    if unknown:
        raise DataError(
            f"family {unknown[0]!r} is not in the data: expected 'paper', 'all' or one of {names}"
        )
    if not asked or list(asked) == ["paper"]:
        return [f for f in names if f in PAPER_FAMILIES] or names
    if "all" in asked:
        return names
    return [f for f in names if f in asked or ("paper" in asked and f in PAPER_FAMILIES)]


def family_rows_of(data: RoutingData | ParquetRows) -> dict[str, np.ndarray]:
    """Each family's rows in ``data`` (:func:`routerbench.engine.splits.family_rows`): from the
    families of a loaded table, or from the footer of a Parquet file that actors read."""
    return family_rows(data.family_codes() if isinstance(data, ParquetRows) else data.families)


def make_splits(
    data: RoutingData | ParquetRows,
    families: Sequence[str],
    kind: str = "upstream",
    seeds: Sequence[int] = (0,),
    train_fraction: float = 0.7,
    folds: int = 5,
) -> list[Split]:
    """The splits of a spec: ``upstream`` (one), ``seeded`` (one per seed), ``kfold`` (seeds x
    folds) or ``ood`` (leave one family out: train on the other selected families)."""
    by_family = family_rows_of(data)
    rows = {f: by_family[f] for f in families}
    n = data.n_prompts
    if kind == "upstream":
        return [masked_split("upstream", 42, rows, upstream_train(by_family, n))]
    if kind == "seeded":
        return [
            masked_split(f"seeded-{s}", s, rows, seeded_train(by_family, n, s, train_fraction))
            for s in seeds
        ]
    if kind == "kfold":
        out = []
        for s in seeds:
            fold = {
                f: np.random.default_rng([s, j]).permutation(len(r)) % folds
                for j, (f, r) in enumerate(rows.items())
            }
            for k in range(folds):
                out.append(
                    Split(
                        f"kfold-{s}-{k}",
                        s,
                        train={f: r[fold[f] != k] for f, r in rows.items()},
                        test={f: r[fold[f] == k] for f, r in rows.items()},
                    )
                )
        return out
    if kind == "ood":
        every = np.sort(np.concatenate(list(rows.values())))
        return [
            Split(
                "ood",
                0,
                train={f: np.setdiff1d(every, r) for f, r in rows.items()},
                test=dict(rows),
            )
        ]
    raise ValueError(f"split kind must be one of {list(SPLIT_KINDS)} (got {kind!r})")


def cap_train(split: Split, most: int) -> Split:
    """``split`` with each family's training rows cut to a seeded sample of ``most`` (in row
    order) where it has more; ``most = 0``: unchanged. The sample depends on the split's seed and
    the family's position only, so every executor fits on the same rows.

    >>> s = Split("s", 0, train={"a": np.arange(10), "b": np.arange(3)}, test={"a": [], "b": []})
    >>> t = cap_train(s, 4)
    >>> len(t.train["a"]), t.train["b"].tolist()
    (4, [0, 1, 2])
    """
    if not most:
        return split
    train = {}
    for j, (fam, rows) in enumerate(split.train.items()):
        if len(rows) > most:
            pick = np.random.default_rng([split.seed, j, most]).choice(
                len(rows), most, replace=False
            )
            rows = rows[np.sort(pick)]
        train[fam] = rows
    return Split(split.name, split.seed, train=train, test=split.test)


def masked_split(name: str, seed: int, rows: dict[str, np.ndarray], train: np.ndarray) -> Split:
    """The split that puts each family's rows where ``train`` is true in train, the rest in test."""
    return Split(
        name,
        seed,
        train={f: r[train[r]] for f, r in rows.items()},
        test={f: r[~train[r]] for f, r in rows.items()},
    )
