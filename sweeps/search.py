"""Optuna search over router hyperparameters (``[search] kind = "optuna"``).

:func:`run_optuna` is a search strategy: it only chooses cells; every cell is evaluated by the
executor (:func:`routerbench.sweeps.cells.evaluate_cell`, here or on Ray).

- **Validation, never test.** Trials are scored on a validation split carved from the training
  split of the plan's first split: per family, a seeded ``split.validation_fraction`` of its train
  rows (:func:`validation_split`). A trial is a cell trained on the other train rows and tested on
  the validation rows; its objective is the mean over families of the cell's AIQ (over the
  single-model cost range of the validation rows) and/or max quality, without bootstrap.
- **Ask/tell on the driver.** ``search.parallel`` trials are asked at once and evaluated together
  by one executor call (Ray evaluates them concurrently); each is told as its result arrives.
  TPE (seeded) by default or random sampling; two objectives make a multi-objective study (TPE
  handles it; its result is the Pareto front, ``study.best_trials``).
- **Space.** Each router with a ``space`` is searched: its ``space`` entries become distributions
  (``{low, high[, log, step]}``: integer when low, high and step are integers, else float;
  ``{choices}``: categorical, list values stored as JSON strings), its ``grid`` entries become
  categorical choices, and its ``params`` stay fixed. Several searched routers make one
  conditional space: a categorical ``router`` parameter, then the chosen router's parameters,
  named ``<router>.<key>`` (TPE learns which router is better instead of splitting trials
  evenly). Routers without a space are not searched: they are evaluated as they are, beside the
  best configurations, as baselines.
- **Resumable, with the numbers of an uninterrupted run.** Trials fill slots 0 … ``trials`` - 1,
  ``parallel`` slots per batch. A slot's parameters are drawn by a sampler seeded from
  (``search.seed``, slot) in a new in-memory study holding only the finished trials of earlier
  batches, in slot order: a draw depends on nothing a stopped process leaves behind. With
  ``journal`` (a local path, or any fsspec URL: the journal is then a local copy stored back as
  one whole object after each told trial), the study is named from the spec hash and the data
  fingerprint; a rerun marks trials left running as failed without an ``error`` ("interrupted"),
  and evaluates the slots not finished (complete, or failed by their own evaluation) batch by
  batch: each gets the draw, the evaluation and so the value it gets in an uninterrupted run.
  Hence a resumed search's points and curves equal an uninterrupted one's, and so does its trials
  table without the "interrupted" rows and the ``duration`` column. One driver at a time; a lock
  left by a killed process is broken after ``LOCK_GRACE`` seconds; a torn last line is dropped.
- **Result.** The best trial (or every Pareto trial) is evaluated on every split of the plan (fit
  on the full train rows, tested on the test rows, with bootstrap intervals): the points and
  curves tables; and a trials table (:data:`~routerbench.sweeps.schema.TRIALS`, one row per trial).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import fsspec
import numpy as np
import optuna
import pandas as pd
from fsspec.implementations.local import LocalFileSystem
from optuna.trial import FrozenTrial, Trial, TrialState

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError
from routerbench.engine.rng import stable_keys
from routerbench.engine.storage import RETRY, write_bytes
from routerbench.sweeps import schema
from routerbench.sweeps.cells import Cell, CellResult
from routerbench.sweeps.execute import Executor, Plan, evaluate_cells, in_memory, local_executor
from routerbench.sweeps.runs import JOURNAL
from routerbench.sweeps.search_space import Searched, search_space, suggest
from routerbench.sweeps.spec import Spec
from routerbench.sweeps.split import Split
from routerbench.sweeps.summary import Results, single_model_ranges, summarize

LOCK_GRACE = 5  # seconds before a journal lock left by a killed process is broken


def validation_split(split: Split, fraction: float, seed: int) -> Split:
    """Per family, a seeded ``fraction`` of ``split``'s train rows as test, the rest as train.

    The test rows of ``split`` are not used. Each family's draw depends only on ``seed`` and the
    family name; at least one row goes to each side when the family has two or more train rows.

    >>> import numpy as np
    >>> sp = Split("s", 0, train={"a": np.arange(10)}, test={"a": np.arange(10, 15)})
    >>> v = validation_split(sp, 0.2, seed=0)
    >>> v.name, len(v.train["a"]), len(v.test["a"]), set(v.test["a"]) <= set(range(10))
    ('s-validation', 8, 2, True)
    """
    train, test = {}, {}
    for fam, rows in split.train.items():
        n = len(rows)
        n_val = min(max(round(fraction * n), 1), n - 1) if n >= 2 else 0
        perm = np.random.default_rng([seed, int(stable_keys([fam])[0])]).permutation(n)
        train[fam] = np.sort(rows[perm[n_val:]])
        test[fam] = np.sort(rows[perm[:n_val]])
    return Split(f"{split.name}-validation", split.seed, train=train, test=test)


# -------------------------------------------------------------------------------------- study
def _prepare_journal(path: str) -> None:
    """Make the journal's folder, or drop a torn last line of an existing journal (a write cut
    short), which would make it unreadable once the next record is appended after it."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return
    with open(path, "rb+") as f:
        text = f.read()
        if text and not text.endswith(b"\n"):
            f.truncate(text.rfind(b"\n") + 1)


@contextmanager
def journal_file(
    url: str | None, storage_options: Mapping[str, Any] | None = None
) -> Iterator[tuple[str | None, Callable[[], None]]]:
    """The journal at ``url`` as a local file, and a function that stores it back.

    A local path (or ``file://`` URL) is used in place (storing is a no-op); None stays None. On
    any other fsspec URL (``s3://…``, ``memory://…``) the journal is downloaded, if it exists, to
    a temporary file, and storing writes that whole file back as one object (one PUT), with the
    one retry policy of :mod:`routerbench.engine.storage`.
    """
    if url is None:
        yield None, lambda: None
        return
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        _prepare_journal(path)
        yield path, lambda: None
        return
    with tempfile.TemporaryDirectory(prefix="routerbench-journal-") as tmp:
        local = os.path.join(tmp, JOURNAL)
        try:
            data = RETRY.call(lambda: fs.cat_file(path))
        except FileNotFoundError:
            data = b""
        with open(local, "wb") as f:
            f.write(data)
        _prepare_journal(local)

        def store() -> None:  # one whole object, retried on transient errors like every write
            with open(local, "rb") as f:
                write_bytes(url, f.read(), dict(storage_options or {}))

        yield local, store


class _Given(optuna.samplers.BaseSampler):
    """The stored study's sampler: it returns the parameters already drawn for the trial."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return {}

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        return self.params[name]


def _study(spec: Spec, data: RoutingData, journal: str | None) -> optuna.Study:
    """The spec's study (in memory, or loaded from / created in the local journal file)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    storage = None
    if journal is not None:
        # A killed process can leave the lock file behind (it is held while appending, which
        # happens several times per trial); it is broken after LOCK_GRACE seconds, not 30.
        lock = JournalFileSymlinkLock(journal, grace_period=LOCK_GRACE)
        storage = JournalStorage(JournalFileBackend(journal, lock_obj=lock))
    return optuna.create_study(
        storage=storage,
        study_name=f"routerbench-slots-{spec.hash}-{data.fingerprint()[:12]}",
        directions=["maximize"] * len(spec.search["objective"]),
        sampler=_Given({}),
        load_if_exists=True,
    )


def _slot(t: FrozenTrial) -> int | None:
    """The trial's position in the search (None: stopped before it was recorded)."""
    slot = t.user_attrs.get("slot")
    return None if slot is None else int(slot)


def _finished(study: optuna.Study) -> dict[int, FrozenTrial]:
    """The trials that count, by slot: complete, or failed by their own evaluation."""
    return {
        slot: t
        for t in study.get_trials(deepcopy=False)
        if (slot := _slot(t)) is not None
        and (
            t.state == TrialState.COMPLETE
            or (t.state == TrialState.FAIL and "error" in t.user_attrs)
        )
    }


@contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Optuna logs every told trial at INFO; the progress bar says it instead."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


# ------------------------------------------------------------------------------------- search
def _objective(
    res: CellResult, ranges: dict[tuple[str, str], tuple[float, float]], objectives: Sequence[str]
) -> list[float] | str:
    """A trial's values (mean over families), or why it has none."""
    failed = [row["error"] for row in res.rows if row["status"] != "ok"]
    if failed:
        return str(failed[0])
    curves = summarize([res], ranges).curves
    if curves.empty:
        return "no family had validation rows to evaluate"
    values = [float(curves[o].mean()) for o in objectives]
    return values if np.isfinite(values).all() else f"non-finite objective {values}"


def _draw(
    spec: Spec, space: list[Searched], history: list[FrozenTrial], slot: int
) -> tuple[FrozenTrial, Searched, dict[str, Any]]:
    """The parameters of the trial in ``slot``: drawn by a sampler seeded from (``search.seed``,
    slot) in a new in-memory study that holds only ``history`` (in slot order), so the draw is
    the same whatever a stopped process left in the stored study."""
    seed = int(np.random.SeedSequence([spec.search["seed"], slot]).generate_state(1)[0])
    sampler: optuna.samplers.BaseSampler
    if spec.search["sampler"] == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    scratch = optuna.create_study(directions=["maximize"] * len(spec.search["objective"]))
    scratch.sampler = sampler
    scratch.add_trials(history)
    trial = scratch.ask()
    router, params = suggest(trial, space)
    return scratch.trials[-1], router, params


def _ask(
    study: optuna.Study,
    drawn: tuple[FrozenTrial, Searched, dict[str, Any]],
    slot: int,
    split: Split,
) -> tuple[Trial, Cell | None]:
    """Record the drawn trial in the study and make its cell (None if its parameters cannot
    build the router)."""
    frozen, router, params = drawn
    study.sampler = _Given(frozen.params)
    trial = study.ask(fixed_distributions=frozen.distributions)
    trial.set_user_attr("slot", slot)
    trial.set_user_attr("router", router.name)
    cell = Cell(slot, router.name, params, split.name, router.knobs)
    try:
        trial.set_user_attr("params", cell.params_json)
    except RouterError as e:
        trial.set_user_attr("params", json.dumps(params, sort_keys=True, default=list))
        trial.set_user_attr("error", str(e))
        study.tell(trial, state=TrialState.FAIL)
        return trial, None
    return trial, cell


def _search(
    study: optuna.Study,
    space: list[Searched],
    spec: Spec,
    p: Plan,
    executor: Executor,
    quiet: bool,
    store: Callable[[], None],
) -> None:
    """Ask and tell, ``parallel`` slots at a time, until slots 0 … ``search.trials`` - 1 have
    finished; slots a stopped process left unfinished are drawn and evaluated again."""
    from routerbench.engine.progress import progress

    search = spec.search
    size, n = search["parallel"], search["trials"]
    objectives = list(search["objective"])
    val = validation_split(p.splits[0], spec.split["validation_fraction"], search["seed"])
    ranges = single_model_ranges(in_memory(p.data), [val])
    opts = {"bootstrap": 0, "seed": search["seed"], "fail_fast": False}
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)  # left running by a stopped process
    done = _finished(study)
    bar = progress(n, "trial", initial=len(done), quiet=quiet)
    for start in range(0, n, size):
        todo = [s for s in range(start, min(start + size, n)) if s not in done]
        if not todo:
            continue
        history = [done[s] for s in sorted(done) if s < start]
        asked = [_ask(study, _draw(spec, space, history, s), s, val) for s in todo]
        trials = {cell.index: t for t, cell in asked if cell is not None}
        cells = [cell for _, cell in asked if cell is not None]
        bar.update(len(asked) - len(cells))
        if len(cells) < len(asked):
            store()
        for res in executor(p.data, cells, {val.name: val}, opts):
            trial = trials[res.cell.index]
            outcome = _objective(res, ranges, objectives)
            if isinstance(outcome, str):
                trial.set_user_attr("error", outcome)
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, outcome)
            store()
            bar.update(1)
        done = _finished(study)
    bar.close()


def _best(study: optuna.Study) -> list[FrozenTrial]:
    """The best trial (the first in slot order among equals), or the Pareto front (in slot
    order) when there are several objectives."""
    complete = sorted(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
        key=lambda t: (_slot(t), t.number),
    )
    if not complete:
        errors = [t.user_attrs.get("error", "") for t in study.trials if t.state == TrialState.FAIL]
        first = next((e for e in errors if e), "none recorded")
        raise RouterError(
            f"optuna search: none of the {len(study.trials)} trials completed "
            f"(first error: {first})"
        )
    if len(study.directions) > 1:
        front = {t.number for t in study.best_trials}
        return [t for t in complete if t.number in front]
    return [max(complete, key=lambda t: t.values[0])]


def trials_table(study: optuna.Study, objectives: Sequence[str]) -> pd.DataFrame:
    """One row per trial (the columns of ``schema.TRIALS``, objective values as
    ``validation_<objective>``, in that order; a retried slot's interrupted row first)."""
    best = {t.number for t in _best(study)}
    value_cols = [f"validation_{o}" for o in objectives]
    rows = []
    recorded = [t for t in study.get_trials(deepcopy=False) if _slot(t) is not None]
    for t in sorted(recorded, key=lambda t: (_slot(t), t.number)):
        values = t.values if t.values is not None else [float("nan")] * len(objectives)
        interrupted = t.state == TrialState.FAIL and "error" not in t.user_attrs
        seconds = t.duration.total_seconds() if t.duration is not None else float("nan")
        rows.append(
            {
                "trial": _slot(t),
                "router": t.user_attrs.get("router", ""),
                "params": t.user_attrs.get("params", ""),
                **dict(zip(value_cols, values, strict=True)),
                "state": t.state.name,
                "duration": seconds,
                "is_best": t.number in best,
                "error": "interrupted" if interrupted else t.user_attrs.get("error", ""),
            }
        )
    cols = [c for c in schema.TRIALS if not c.startswith("validation_") or c in value_cols]
    return pd.DataFrame(rows, columns=cols)


def _final_cells(spec: Spec, p: Plan, best: Sequence[FrozenTrial]) -> list[Cell]:
    """The best configurations on every split of the plan, then the plan's cells of the routers
    without a space (baselines), numbered anew."""
    searched = {r.name: r for r in spec.routers if r.space}
    configs: dict[tuple[str, str], tuple[str, dict[str, Any], int]] = {}
    for t in best:
        router = t.user_attrs["router"]
        params = json.loads(t.user_attrs["params"])
        slot = _slot(t)
        trial = -1 if slot is None else slot
        configs.setdefault((router, t.user_attrs["params"]), (router, params, trial))
    cells = [
        (router, params, sp.name, searched[router].knobs, trial)
        for router, params, trial in configs.values()
        for sp in p.splits
    ]
    cells += [
        (c.router, c.params, c.split, c.knobs, -1) for c in p.cells if c.router not in searched
    ]
    return [Cell(i, *c) for i, c in enumerate(cells)]


def run_optuna(
    spec: Spec,
    p: Plan,
    *,
    executor: Executor = local_executor,
    quiet: bool = False,
    journal: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[Results, pd.DataFrame]:
    """Search the spec's router spaces with Optuna, then evaluate the best configuration(s).

    Returns the points and curves of the best configuration(s) (and of the routers without a
    space) on the plan's splits, and the trials table. ``journal``: the path or fsspec URL of the
    Optuna journal that makes the search resumable (None: an in-memory study), opened with
    ``storage_options``.
    """
    space = search_space(spec)  # a bad space fails here, before the journal is touched
    with _optuna_quiet(), journal_file(journal, storage_options) as (path, store):
        study = _study(spec, in_memory(p.data), path)
        _search(study, space, spec, p, executor, quiet, store)
        table = trials_table(study, spec.search["objective"])
        final = _final_cells(spec, p, _best(study))
    return evaluate_cells(spec, p, final, executor=executor), table
