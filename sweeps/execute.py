"""Run a spec: load its data, make its splits and cells, evaluate them, summarise.

Search strategies only decide which cells to evaluate; every cell goes through
:func:`routerbench.sweeps.cells.evaluate_cell`. Where cells are evaluated is the executor's
business: in this process by default, or on Ray (``routerbench.cluster``), with identical numbers.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError, RouterError, SpecError
from routerbench.engine.parallel import current_workers, pool, total_memory, workers
from routerbench.engine.rowgroups import ParquetRows
from routerbench.routers.base import check_data
from routerbench.sweeps.cells import (
    Cell,
    CellResult,
    evaluate_cell,
    evaluate_family,
    plan_cells,
    split_mean_costs,
)
from routerbench.sweeps.spec import Spec
from routerbench.sweeps.split import (
    Split,
    cap_train,
    make_splits,
    select_families,
)
from routerbench.sweeps.summary import GAP_REFERENCES, Results, cost_ranges, summarize

# A data set in this process, or a Parquet file whose rows the executor's workers read.
Data = RoutingData | ParquetRows
# Evaluates cells (in any order, anywhere) and yields their results.
Executor = Callable[[Data, Sequence[Cell], dict[str, Split], dict[str, Any]], Iterable[CellResult]]


def load_data(
    spec: Spec,
    url: str | None = None,
    storage_options: dict[str, Any] | None = None,
    *,
    features: str | None = None,
) -> RoutingData:
    """The spec's data (``url`` overrides it): a URL (fsspec ``storage_options`` for it), or
    the embedded synthetic set; with the prompt vectors at ``features`` (else the spec's
    ``data.features``) attached when one is given."""
    from routerbench.engine import io, synth
    from routerbench.engine.features import load_features

    url = url if url is not None else spec.data["url"]
    if url:
        data = io.load(url, storage_options=storage_options).complete()
    else:
        data = synth.generate(spec.data["synthetic_n"], spec.data["synthetic_seed"])
    features = features if features is not None else spec.data["features"]
    if features:
        data = load_features(features, data, storage_options)
    return data


def open_data(
    spec: Spec,
    url: str | None = None,
    storage_options: dict[str, Any] | None = None,
    *,
    features: str | None = None,
) -> Data:
    """The spec's data for an executor whose workers read their own rows (Ray's actors): a
    ``routing-data/1`` Parquet file without separate features is opened, not loaded
    (:class:`ParquetRows`: this process reads its footer, the workers their row groups); any
    other data is loaded (:func:`load_data`)."""
    from routerbench.engine import io

    url = url if url is not None else spec.data["url"]
    suffix = os.path.splitext(url.rstrip("/"))[1].lower()
    separate = features if features is not None else spec.data["features"]
    if url and not separate and io.SUFFIXES.get(suffix) == "parquet":
        try:
            return ParquetRows.open(url, storage_options)
        except DataError:
            pass  # not our layout (a long table, say): loaded here, with io's own errors
    return load_data(spec, url, storage_options, features=features)


def in_memory(data: Data) -> RoutingData:
    """``data`` itself, which work done in this process needs loaded (an Optuna search, say)."""
    if not isinstance(data, RoutingData):
        raise TypeError(f"{data.url}: needs the table loaded in this process, not opened")
    return data


BYTES_PER_OUTCOME = 48  # quality, cost and the working copies an evaluation makes (float64)
BYTES_PER_PROMPT = 400  # ids, names, text and per-prompt arrays, roughly


def check_memory(spec: Spec, url: str | None = None, *, force: bool = False) -> None:
    """Refuse, before generating it, an embedded data set larger than this machine's memory
    (``force``: for a machine or cluster that has the room). Loaded data is already in memory."""
    from routerbench.engine.synth_tables import PRICES

    if (url if url is not None else spec.data["url"]) or force:
        return
    n = spec.data["synthetic_n"]
    need = n * (len(PRICES) * BYTES_PER_OUTCOME + BYTES_PER_PROMPT)
    have = total_memory()
    if have is not None and need > have:
        raise SpecError(
            f"{spec.source}: data.synthetic_n = {n} needs about {need / 2**30:.1f} GiB of "
            f"memory, more than this machine's {have / 2**30:.1f} GiB (--force to run anyway)"
        )


@dataclass(frozen=True)
class Plan:
    data: Data
    families: list[str]
    splits: list[Split]
    cells: list[Cell]


def plan(spec: Spec, data: Data) -> Plan:
    """Families, splits and cells of a spec on its data; nothing is evaluated."""
    fams = select_families(data, spec.data["families"])
    sp = spec.split
    splits = make_splits(data, fams, sp["kind"], sp["seeds"], sp["train_fraction"], sp["folds"])
    if sp["kind"] == "kfold":
        fewest = min(len(splits[0].train[f]) + len(splits[0].test[f]) for f in fams)
        if sp["folds"] > fewest:
            raise SpecError(
                f"{spec.source}: split.folds = {sp['folds']} is more than the {fewest} prompts "
                "of the smallest selected family (every fold needs test prompts)"
            )
    splits = [cap_train(s, sp["max_train"]) for s in splits]
    routers = []
    for r in spec.routers:
        grid = r.cells()
        if r.name == "single":
            grid = [
                {**g, "model": m}
                for g in grid
                for m in ([g["model"]] if "model" in g else data.models)
            ]
        routers.append((r.name, grid, r.knobs))
    listed = {r.name for r in spec.routers}
    # The references every family's gap closed is measured with (see summary.summarize).
    routers += [(name, [{}], None) for name in GAP_REFERENCES if name not in listed]
    cells = plan_cells(routers, splits)
    train: dict[str, int] = {}  # family -> its fewest training prompts over the splits
    for split in splits:
        for fam, rows in split.train.items():
            if len(split.test.get(fam, ())):
                train[fam] = min(train.get(fam, len(rows)), len(rows))
    for cell in cells:  # the data's facts, checked before anything is computed
        try:
            check_data(cell.build(), data.models, train)
        except RouterError as e:
            raise SpecError(f"{spec.source}: {e}") from None
    if spec.search["kind"] == "optuna":
        from routerbench.sweeps.search_space import check_space  # optuna only when searching

        check_space(spec, (data.models, train))
    return Plan(data, fams, splits, cells)


def local_executor(
    data: Data, cells: Sequence[Cell], splits: dict[str, Split], opts: dict[str, Any]
) -> Iterable[CellResult]:
    """Evaluate cells in this process, one after another; inside
    :func:`~routerbench.engine.parallel.workers` (``n > 1``), as (cells, family) units
    (:func:`units`) on this process and ``n - 1`` worker processes that each hold the data, this
    one working on the next unit while the workers start and between collecting their answers.
    Each unit runs the same function (:func:`~routerbench.sweeps.cells.evaluate_family`) on one
    BLAS thread, so the numbers do not depend on the number of workers. Cells are yielded as
    their last family comes in."""
    data = in_memory(data)
    todo = deque(units(cells, splits))
    n = min(current_workers(), len(todo))
    if n <= 1:
        for cell in cells:
            yield evaluate_cell(data, cell, splits[cell.split], **opts)
        return
    parts: dict[int, dict[str, CellResult]] = {}
    ex = pool(n - 1, _hold, (data,))
    inflight: dict[Future[list[CellResult]], str] = {}
    try:
        while todo or inflight:
            while todo and len(inflight) < 2 * (n - 1):  # the workers' queue kept short
                group, fam, train, test = todo.popleft()
                inflight[ex.submit(_unit, group, fam, train, test, opts)] = fam
            if todo:
                group, fam, train, test = todo.popleft()
                with workers(1):  # no processes of its own
                    here = [evaluate_family(data, c, fam, train, test, **opts) for c in group]
                yield from _gather(parts, splits, fam, here)
                done = [f for f in inflight if f.done()]
            else:
                done = [next(as_completed(inflight))]
            for f in done:
                yield from _gather(parts, splits, inflight.pop(f), f.result())
    finally:  # done, failed (fail_fast) or abandoned: no worker outlives the call
        ex.shutdown(wait=False, kill_workers=True)


def _gather(
    parts: dict[int, dict[str, CellResult]],
    splits: dict[str, Split],
    family: str,
    results: list[CellResult],
) -> Iterator[CellResult]:
    """Take in the parts of one family; yield each cell whose families are all in."""
    for part in results:
        got = parts.setdefault(part.cell.index, {})
        got[family] = part
        split = splits[part.cell.split]
        if len(got) == len(split.evaluated()):
            res = CellResult(part.cell)
            for fam, _, _ in split.evaluated():  # families in the split's order
                res.add(got[fam])
            del parts[part.cell.index]
            yield res


def units(
    cells: Sequence[Cell], splits: dict[str, Split]
) -> list[tuple[list[Cell], str, np.ndarray, np.ndarray]]:
    """The work of ``cells`` as units: (cells, family, train rows, test rows), one per family of
    each group of cells on one split that share work (:meth:`Router.work_group`; else each cell
    alone); the largest first (cells x prompts), so that no large unit is left for last."""
    groups: dict[tuple[str, str | int], list[Cell]] = {}
    for cell in cells:
        key = cell.build().work_group()
        groups.setdefault((cell.split, key if key is not None else cell.index), []).append(cell)
    todo = [
        (group, fam, train, test)
        for (split, _), group in groups.items()
        for fam, train, test in splits[split].evaluated()
    ]
    return sorted(todo, key=lambda u: -len(u[0]) * (len(u[2]) + len(u[3])))


_DATA: list[RoutingData] = []  # in a pool worker: the data set it holds


def _hold(data: RoutingData) -> None:
    _DATA[:] = [data]


def _unit(
    cells: list[Cell], family: str, train: np.ndarray, test: np.ndarray, opts: dict[str, Any]
) -> list[CellResult]:
    return [evaluate_family(_DATA[0], cell, family, train, test, **opts) for cell in cells]


def run_grid(
    spec: Spec,
    p: Plan,
    *,
    executor: Executor = local_executor,
    fail_fast: bool = False,
    skip: Callable[[Cell], CellResult | None] | None = None,
    on_result: Callable[[CellResult], None] | None = None,
) -> Results:
    """Evaluate every cell of the plan (``skip`` may supply stored results) and summarise."""
    return evaluate_cells(
        spec, p, p.cells, executor=executor, fail_fast=fail_fast, skip=skip, on_result=on_result
    )


def evaluate_cells(
    spec: Spec,
    p: Plan,
    cells: Sequence[Cell],
    *,
    executor: Executor = local_executor,
    fail_fast: bool = False,
    skip: Callable[[Cell], CellResult | None] | None = None,
    on_result: Callable[[CellResult], None] | None = None,
) -> Results:
    """Evaluate ``cells`` on the plan's splits with the spec's bootstrap and summarise them.

    ``skip`` may supply a cell's stored result (it is then not evaluated); ``on_result`` sees each
    new result as it arrives. Results are summarised in cell order, whatever order they came in.
    """
    opts = {
        "bootstrap": spec.metrics["bootstrap"],
        "seed": spec.search["seed"],
        "fail_fast": fail_fast,
    }
    done: list[CellResult] = []
    todo = []
    for cell in cells:
        stored = skip(cell) if skip else None
        if stored is not None:
            done.append(stored)
        else:
            todo.append(cell)
    splits = {s.name: s for s in p.splits}
    for res in executor(p.data, todo, splits, opts):
        if on_result:
            on_result(res)
        done.append(res)
    done.sort(key=lambda r: r.cell.index)
    means = getattr(executor, "mean_costs", None)  # where the executor holds the rows
    costs = means(p.data, p.splits) if means else split_mean_costs(in_memory(p.data), p.splits)
    return summarize(
        done,
        cost_ranges(costs),
        aiq_range=spec.metrics["aiq_range"],
        confidence=spec.metrics["confidence"],
    )
