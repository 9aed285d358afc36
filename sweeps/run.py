"""A run from Python: the notebook entry point :func:`evaluate`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from routerbench.engine.data import RoutingData
from routerbench.engine.splits import upstream_split
from routerbench.routers.base import Router, name_of
from routerbench.sweeps.cells import Cell, evaluate_cell
from routerbench.sweeps.split import masked_split, select_families
from routerbench.sweeps.summary import Results, single_model_ranges, summarize


def evaluate(
    data: RoutingData,
    routers: Sequence[Router],
    *,
    train_mask: np.ndarray | None = None,
    families: Sequence[str] | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    progress: Callable[[str], Any] | None = None,
) -> Results:
    """Evaluate router objects on one in-distribution split (default: upstream's), per family.

    The notebook entry point: ``evaluate(data, [create("oracle"), create("knn", k=10)])``.
    """
    fams = select_families(data, families)
    mask = upstream_split(data.families) if train_mask is None else np.asarray(train_mask)
    rows = {f: np.flatnonzero(data.families == f) for f in fams}
    split = masked_split("upstream" if train_mask is None else "custom", seed, rows, mask)
    results = []
    for i, router in enumerate(routers):
        if progress:
            progress(name_of(router))
        cell = Cell(i, name_of(router), _params(router), split.name)
        results.append(evaluate_cell(data, cell, split, bootstrap=bootstrap, seed=seed))
    return summarize(results, single_model_ranges(data, [split]))


def _params(router: Router) -> dict[str, Any]:
    return dataclasses.asdict(router)  # type: ignore[call-overload, no-any-return]
