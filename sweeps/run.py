"""A run from Python: :func:`run` (a spec, start to finish, into a run folder; what
``routerbench run`` and the nightly job call) and the notebook entry point :func:`evaluate`.

A run folder ``<out>/<run id>/`` holds the tables, ``spec.toml``, ``plots/`` and, written last,
``manifest.json`` (:mod:`~routerbench.sweeps.runs`); while a run is going its finished cells are
stored under ``cells/`` so that running it again resumes it (:mod:`~routerbench.sweeps.resume`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import tomllib
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import numpy as np
import pandas as pd

from routerbench.engine import storage
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError, UsageError
from routerbench.engine.parallel import workers as workers_block
from routerbench.engine.progress import progress as progress_bar
from routerbench.engine.splits import upstream_split
from routerbench.routers.base import Router, name_of
from routerbench.sweeps import runs
from routerbench.sweeps.cells import Cell, evaluate_cell
from routerbench.sweeps.execute import (
    Data,
    Executor,
    Plan,
    check_memory,
    load_data,
    local_executor,
    open_data,
    plan,
    run_grid,
)
from routerbench.sweeps.plot import write_plots
from routerbench.sweeps.resume import (
    CellStore,
    code_versions,
    default_run_id,
    inputs_key,
    is_complete,
    run_lock,
)
from routerbench.sweeps.spec import Spec, load, parse
from routerbench.sweeps.split import masked_split, select_families
from routerbench.sweeps.summary import Results, single_model_ranges, summarize

Say = Callable[[str], Any]


# --------------------------------------------------------------------------------- a whole run
def load_spec(path: str | None) -> Spec:
    """The spec file at ``path``, or without one the quick job shipped as sweeps/quick.toml."""
    if path is None:
        text = files("routerbench.sweeps").joinpath("quick.toml").read_text()
        return parse(tomllib.loads(text), source="sweeps/quick.toml", text=text)
    return load(path)


def load_plan(
    spec: Spec,
    data: str | None = None,
    features: str | None = None,
    storage_options: dict[str, Any] | None = None,
    *,
    force: bool = False,
    rows: bool = False,
) -> Plan:
    """Check what can be checked without data (search space, memory), load the data (the spec's
    or ``data``, with the prompt vectors at ``features``) and plan the spec on it, which checks
    the routers against the data's facts. ``rows``: the executor's workers read their own rows
    of a Parquet file (:func:`~routerbench.sweeps.execute.open_data`; grid searches only)."""
    if data is not None and not data.strip():
        raise UsageError(
            "data (--data) is empty: expected a file or URL (leave it out for the spec's)"
        )
    if spec.search["kind"] == "optuna":
        from routerbench.sweeps.search_space import check_space

        check_space(spec)  # before the data is read; plan() checks it against the data too
    check_memory(spec, data, force=force)
    if features is not None and not features.strip():
        raise UsageError("features (--features) is empty: expected a file or URL (or leave it out)")
    load = open_data if rows and spec.search["kind"] == "grid" else load_data
    return plan(spec, load(spec, data, storage_options, features=features))


def check_run_id(run_id: str | None) -> None:
    """A run id names one folder: letters, digits and ``._-``, not ``.`` or ``..``."""
    if run_id is None:
        return
    if (
        run_id in (".", "..")
        or not run_id
        or any(not (c.isascii() and (c.isalnum() or c in "._-")) for c in run_id)
    ):
        raise UsageError(
            f"run_id (--run-id) {run_id!r}: expected a folder name of letters, digits, '.', '_' "
            "and '-'"
        )


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run` did: the run folder's URL, its manifest and its results; ``evaluated``
    is False when the run was already complete (nothing was evaluated or written)."""

    url: str
    manifest: dict[str, Any]
    results: Results
    evaluated: bool = True

    def failure(self) -> str | None:
        """One line on the failed result rows of an evaluated run (or on its having no rows);
        None when every row is ok."""
        points = self.results.points
        failed = int(self.manifest["failed_rows"])
        if not failed and not (self.evaluated and points.empty):
            return None
        first = points.loc[points["status"] == "failed", "error"].head(1).tolist()
        why = f"; first error: {first[0]}" if first else ""
        return (
            f"{failed} of {len(points)} result rows failed (see the 'error' column of "
            f"{storage.join(self.url, 'points.parquet')}){why}"
        )

    def summary(self) -> str:
        """One line: where the results are and the run's seconds per phase (or that it was
        already complete)."""
        if not self.evaluated:
            return f"results: {self.url} (already complete: nothing evaluated)"
        times = ", ".join(f"{k} {v:.1f} s" for k, v in self.manifest["phases"].items())
        return f"results: {self.url}  ({self.manifest['seconds']:.1f} s: {times})"


def run(
    spec: Spec | str | None = None,
    *,
    out: str | None = None,
    data: str | None = None,
    features: str | None = None,
    run_id: str | None = None,
    executor: Executor = local_executor,
    workers: int | None = None,
    fail_fast: bool = False,
    force: bool = False,
    plots: bool = True,
    storage_options: dict[str, Any] | None = None,
    progress: Say | None = None,
) -> RunOutcome:
    """Run a spec (a :class:`Spec`, a spec file, or None for the quick job) into
    ``<out>/<run id>/`` (``out`` default: the spec's ``output.url``; ``run_id`` default: a hash
    of spec, data and code versions) and return what was done.

    The output location is checked before anything is computed. A run found complete is read
    back (its inputs must be these) and nothing is evaluated; one left incomplete resumes from
    its stored cells; one complete but with failed cells is evaluated again. ``data`` and
    ``features`` replace the spec's; ``workers``: the in-process executor's processes (default: as
    the surrounding :func:`~routerbench.engine.parallel.workers` block); ``force`` accepts a plan
    larger than this machine; ``progress`` receives progress lines (None: silent, no progress
    bar either). Failed cells are rows of the results (:meth:`RunOutcome.failure`), not errors.
    """
    t0 = time.perf_counter()
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    so, say = storage_options, progress or (lambda msg: None)
    base = storage.output_url(out if out is not None else spec.output["url"])
    storage.check_writable(base, so)  # before any computation: nothing is computed in vain
    check_run_id(run_id)
    p = load_plan(
        spec, data, features, so, force=force, rows=getattr(executor, "reads_rows", False)
    )
    say(f"data: {p.data!r}")
    say(f"plan: {len(p.cells)} cells x {len(p.families)} families")
    url = storage.join(base, run_id or default_run_id(spec.hash, p.data.fingerprint()))
    with run_lock(url):  # one process per run folder; completeness is decided under the lock
        if is_complete(url, so):
            done = runs.read_run(url, so)  # checked against its manifest, or refused
            _same_inputs(done.manifest, spec, p.data, url)
            if not done.manifest["failed_rows"]:  # nothing to evaluate or write
                return RunOutcome(
                    url, done.manifest, Results(done.points, done.curves), evaluated=False
                )
            say(f"{url}: complete but with failed cells: evaluating them again")
        phases = {"load": time.perf_counter() - t0}
        with nullcontext() if workers is None else workers_block(workers):
            res, trials, cell_hashes = _evaluate(spec, p, url, so, executor, fail_fast, progress)
        phases["evaluate"] = time.perf_counter() - t0 - phases["load"]
        manifest = _manifest(spec, p, url, data, features)
        _write_run(manifest, spec.text, url, so, res, trials, plots)
        _finish_manifest(manifest, res, cell_hashes, t0, phases)
        storage.write_json(storage.join(url, runs.MANIFEST), manifest, so)  # last: complete
    return RunOutcome(url, manifest, res)


def _same_inputs(manifest: dict[str, Any], spec: Spec, data: Data, out: str) -> None:
    """A complete run found under ``out`` (an explicit run id) must come from these inputs."""
    now = {
        "spec_hash": spec.hash,
        "data_fingerprint": data.fingerprint(),
        "code_versions": code_versions(),
    }
    for key, value in now.items():
        if manifest.get(key) != value:
            raise DataError(
                f"{out}: a complete run made from other inputs ({key} differs); choose another "
                "run_id (--run-id) or out (--out), or delete the folder"
            )


def _evaluate(
    spec: Spec,
    p: Plan,
    out: str,
    so: dict[str, Any] | None,
    executor: Executor,
    fail_fast: bool,
    say: Say | None,
) -> tuple[Results, pd.DataFrame | None, dict[str, str]]:
    """Evaluate a plan into the run folder ``out``: a grid (each finished cell stored, stored
    cells reused) or an Optuna search (its journal beside the run). Returns the results, the
    trials table (None for a grid) and the sha256 of each stored cell object."""
    if spec.search["kind"] == "optuna":
        from routerbench.sweeps.search import run_optuna

        # The study's journal lives beside the run (any fsspec URL): an interrupted search resumes.
        journal = storage.join(out, runs.JOURNAL)
        res, trials = run_optuna(
            spec, p, executor=executor, quiet=say is None, journal=journal, storage_options=so
        )
        return res, trials, {}
    cells = CellStore(out, so, inputs=inputs_key(spec.hash, p.data.fingerprint()))
    stored = set(cells.stored())
    reused = sum(c.cell_id in stored for c in p.cells)
    if reused and say is not None:
        say(f"reused {reused} stored cells")
    with progress_bar(len(p.cells), "cell", initial=reused, quiet=say is None) as bar:

        def tick(r: Any) -> None:
            cells.save(r)
            bar.update(1)

        res = run_grid(
            spec, p, executor=executor, fail_fast=fail_fast, skip=cells.load, on_result=tick
        )
    return res, None, dict(sorted(cells.hashes.items()))


def _manifest(
    spec: Spec, p: Plan, out: str, data: str | None, features: str | None
) -> dict[str, Any]:
    """A run's provenance: what the manifest records before the results are written."""
    return {
        "run_id": out.rstrip("/").rsplit("/", 1)[-1],
        "spec": spec.source,
        "spec_hash": spec.hash,
        "data_source": data or spec.data["url"] or p.data.source,
        "data_fingerprint": p.data.fingerprint(),
        "features_source": features or spec.data["features"] or "",
        "features": p.data.features_source,
        "synthetic": p.data.synthetic,
        "confidence": spec.metrics["confidence"],  # of every interval in the tables
        "routerbench_version": runs.routerbench_version(),
        "code_versions": code_versions(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _write_run(
    manifest: dict[str, Any],
    spec_text: str,
    out: str,
    so: dict[str, Any] | None,
    res: Results,
    trials: pd.DataFrame | None,
    plots: bool,
) -> None:
    """Write a run's tables (their sha256 into ``manifest["tables"]``), spec and plots."""
    tables = {"points": res.points, "curves": res.curves}
    if trials is not None:
        tables["trials"] = trials
    manifest["tables"] = runs.write_tables(out, tables, manifest, so)
    storage.write_bytes(storage.join(out, "spec.toml"), spec_text.encode(), so)
    if plots:
        folder = storage.join(out, "plots")
        write_plots(folder, res.points, res.curves, bool(manifest["synthetic"]), so)


def _finish_manifest(
    manifest: dict[str, Any],
    res: Results,
    cell_hashes: dict[str, str],
    t0: float,
    phases: dict[str, float],
) -> None:
    """Complete a manifest once everything else is written: the seconds since ``t0``, those
    of each phase (load and plan, evaluate and summarise, write; ``fits``: the cells' fitting
    seconds added up), the failed rows and the sha256 of each stored cell."""
    manifest["seconds"] = round(time.perf_counter() - t0, 3)
    phases = {**phases, "write": manifest["seconds"] - sum(phases.values())}
    phases["fits"] = float(res.points.drop_duplicates(["cell_id", "family"])["seconds"].sum())
    manifest["phases"] = {k: round(v, 3) for k, v in phases.items()}
    manifest["failed_rows"] = int((res.points["status"] == "failed").sum())
    manifest["cells"] = cell_hashes


# ------------------------------------------------------------------------------------- plots
# ------------------------------------------------------------------------------ notebook API
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
