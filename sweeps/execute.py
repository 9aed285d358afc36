"""Run a spec: load its data, make its splits and cells, evaluate them, summarise.

Search strategies only decide which cells to evaluate; every cell goes through
:func:`routerbench.sweeps.runner.evaluate_cell`. Where cells are evaluated is the executor's
business: in this process by default, or on Ray (``routerbench.cluster``), with identical numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from routerbench.engine.data import RoutingData
from routerbench.sweeps.runner import (
    Cell,
    CellResult,
    Results,
    Split,
    evaluate_cell,
    make_splits,
    plan_cells,
    select_families,
    single_model_ranges,
    summarize,
)
from routerbench.sweeps.spec import Spec

# Evaluates cells (in any order, anywhere) and yields their results.
Executor = Callable[
    [RoutingData, Sequence[Cell], dict[str, Split], dict[str, Any]], Iterable[CellResult]
]


def load_data(spec: Spec, url: str | None = None) -> RoutingData:
    """The spec's data (``url`` overrides it): a URL, or the embedded synthetic set."""
    from routerbench.engine import io, synth

    url = url if url is not None else spec.data["url"]
    if url:
        return io.load(url).complete()
    return synth.generate(spec.data["synthetic_n"], spec.data["synthetic_seed"])


@dataclass(frozen=True)
class Plan:
    data: RoutingData
    families: list[str]
    splits: list[Split]
    cells: list[Cell]


def plan(spec: Spec, data: RoutingData) -> Plan:
    """Families, splits and cells of a spec on its data; nothing is evaluated."""
    fams = select_families(data, spec.data["families"])
    sp = spec.split
    splits = make_splits(data, fams, sp["kind"], sp["seeds"], sp["train_fraction"], sp["folds"])
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
    return Plan(data, fams, splits, plan_cells(routers, splits))


def local_executor(
    data: RoutingData, cells: Sequence[Cell], splits: dict[str, Split], opts: dict[str, Any]
) -> Iterable[CellResult]:
    """Evaluate cells one after another in this process."""
    for cell in cells:
        yield evaluate_cell(data, cell, splits[cell.split], **opts)


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
    opts = {
        "bootstrap": spec.metrics["bootstrap"],
        "seed": spec.search["seed"],
        "fail_fast": fail_fast,
    }
    done: list[CellResult] = []
    todo = []
    for cell in p.cells:
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
    return summarize(
        done,
        single_model_ranges(p.data, p.splits),
        aiq_range=spec.metrics["aiq_range"],
        confidence=spec.metrics["confidence"],
    )
