"""Optuna search over router hyperparameters (``[search] kind = "optuna"``).

:func:`run_optuna` is a search strategy: it only chooses cells; every cell is evaluated by the
executor (:func:`routerbench.sweeps.runner.evaluate_cell`, here or on Ray).

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
- **Resumable.** With ``journal``, the study lives in an Optuna journal file (one driver at a
  time), named from the spec hash and the data fingerprint. A rerun counts the trials already
  finished (complete, or failed by their own evaluation) and asks only the rest. Trials left
  running by a killed process are marked failed without an ``error`` attribute ("interrupted")
  and their parameters are enqueued, so the same configuration is evaluated again. The sampler is
  seeded from (``search.seed``, trials already in the study), so a rerun is deterministic too.
  A lock file left by a killed process is broken after ``LOCK_GRACE`` seconds; a torn last line
  (a write cut short) is dropped.
- **Result.** The best trial (or every Pareto trial) is evaluated on every split of the plan (fit
  on the full train rows, tested on the test rows, with bootstrap intervals): the points and
  curves tables; and a trials table (``TRIAL_COLUMNS``).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, Trial, TrialState

from routerbench.engine.data import RoutingData
from routerbench.engine.rng import stable_keys
from routerbench.routers.base import RouterError, create
from routerbench.sweeps.execute import Executor, Plan, local_executor
from routerbench.sweeps.runner import (
    Cell,
    CellResult,
    Results,
    Split,
    single_model_ranges,
    summarize,
)
from routerbench.sweeps.spec import Spec, SpecError

LOCK_GRACE = 5  # seconds before a journal lock left by a killed process is broken

# The trials table: one row per Optuna trial, in trial order.
TRIAL_COLUMNS = [
    "trial",  # Optuna trial number
    "router",  # registry name of the trial's router
    "params",  # canonical JSON of every hyperparameter of the router
    # then one column per objective: "validation_aiq" and/or "validation_max_quality"
    "state",  # COMPLETE, FAIL (evaluation error or interrupted), RUNNING or WAITING
    "duration",  # wall seconds from ask to tell (the trials of a batch overlap); NaN if unfinished
    "is_best",  # the best trial, or on the Pareto front when there are two objectives
    "error",  # why a trial failed; "interrupted" when its process stopped (its params re-asked)
]


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


# -------------------------------------------------------------------------------------- space
@dataclass(frozen=True)
class _Searched:
    """One searched router: fixed params, distributions, and keys whose choices are JSON."""

    name: str
    params: dict[str, Any]
    dists: dict[str, BaseDistribution]
    json_keys: frozenset[str]
    knobs: tuple[float, ...] | None


def _primitive(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def _distribution(at: str, raw: Any) -> tuple[BaseDistribution, bool]:
    """A spec's ``{low, high[, log, step]}`` or ``{choices}`` as an Optuna distribution, and
    whether its choices are JSON-encoded lists."""
    if "choices" in raw:
        choices = raw["choices"]
        encoded = not all(_primitive(c) for c in choices)
        if encoded:
            choices = [json.dumps(list(c) if isinstance(c, tuple) else c) for c in choices]
        return CategoricalDistribution(choices), encoded
    low, high, step = raw["low"], raw["high"], raw.get("step")
    bounds = [low, high] + ([step] if step is not None else [])
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in bounds):
        raise SpecError(f"{at}: low, high and step must be numbers (got {raw!r})")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise SpecError(f"{at}: log must be true or false (got {log!r})")
    try:
        if all(isinstance(x, int) for x in bounds):
            return IntDistribution(low, high, log=log, step=step or 1), False
        return FloatDistribution(float(low), float(high), log=log, step=step), False
    except ValueError as e:
        raise SpecError(f"{at}: {e} (got {raw!r})") from None


def _decode(value: Any, encoded: bool) -> Any:
    """A categorical value as the router takes it (JSON lists become tuples)."""
    if not encoded:
        return value
    v = json.loads(value)
    return tuple(v) if isinstance(v, list) else v


def _candidates(dist: BaseDistribution, encoded: bool) -> list[Any]:
    """The values a router is checked with: every choice, or both bounds."""
    if isinstance(dist, CategoricalDistribution):
        return [_decode(c, encoded) for c in dist.choices]
    assert isinstance(dist, IntDistribution | FloatDistribution)
    return [dist.low, dist.high]


def _check_values(at: str, name: str, params: dict[str, Any], values: dict[str, list[Any]]) -> None:
    """Each candidate value must construct the router together with some candidates of the other
    keys (hyperparameters may constrain each other); else a SpecError naming the key."""
    for key, own in values.items():
        others = [k for k in values if k != key]
        for v in own:
            errors = []
            for combo in itertools.product(*(values[k] for k in others)):
                try:
                    create(name, **{**params, **dict(zip(others, combo, strict=True)), key: v})
                    break
                except RouterError as e:
                    errors.append(e)
            else:
                raise SpecError(f"{at}.{key}': value {v!r} is refused: {errors[0]}")


def _search_space(spec: Spec) -> list[_Searched]:
    """The routers with a space, checked against the router before any trial runs."""
    out: list[_Searched] = []
    for i, r in enumerate(spec.routers):
        if not r.space:
            continue
        if any(s.name == r.name for s in out):
            raise SpecError(
                f"{spec.source}: two routers named {r.name!r} have a space; give each router "
                "name at most one space"
            )
        at = f"{spec.source}: 'routers[{i}].space"
        raw = {**{k: {"choices": list(v)} for k, v in r.grid.items()}, **r.space}
        dists: dict[str, BaseDistribution] = {}
        json_keys: set[str] = set()
        for key, entry in raw.items():
            dists[key], encoded = _distribution(f"{at}.{key}'", entry)
            if encoded:
                json_keys.add(key)
        values = {k: _candidates(d, k in json_keys) for k, d in dists.items()}
        _check_values(at, r.name, dict(r.params), values)
        out.append(_Searched(r.name, dict(r.params), dists, frozenset(json_keys), r.knobs))
    return out


def _suggest(trial: Trial, space: list[_Searched]) -> tuple[_Searched, dict[str, Any]]:
    """The trial's router and its full parameters (fixed ones included)."""
    names = [s.name for s in space]
    chosen = trial.suggest_categorical("router", names) if len(names) > 1 else names[0]
    s = space[names.index(str(chosen))]
    params = dict(s.params)
    for key, dist in s.dists.items():
        name = f"{s.name}.{key}" if len(names) > 1 else key
        if isinstance(dist, IntDistribution):
            v: Any = trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        elif isinstance(dist, FloatDistribution):
            v = trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            assert isinstance(dist, CategoricalDistribution)
            v = trial.suggest_categorical(name, dist.choices)  # type: ignore[arg-type]
        params[key] = _decode(v, key in s.json_keys)
    return s, params


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


def _study(spec: Spec, data: RoutingData, journal: str | None) -> optuna.Study:
    """The spec's study (in memory, or loaded from / created in the journal file)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    storage = None
    if journal is not None:
        _prepare_journal(journal)
        # A killed process can leave the lock file behind (it is held while appending, which
        # happens several times per trial); it is broken after LOCK_GRACE seconds, not 30.
        lock = JournalFileSymlinkLock(journal, grace_period=LOCK_GRACE)
        storage = JournalStorage(JournalFileBackend(journal, lock_obj=lock))
    name = f"routerbench-{spec.hash}-{data.fingerprint()[:12]}"
    n_obj = len(spec.search["objective"])
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=["maximize"] * n_obj,
        load_if_exists=True,
    )
    seed = int(
        np.random.SeedSequence([spec.search["seed"], len(study.trials)]).generate_state(1)[0]
    )
    if spec.search["sampler"] == "random":
        study.sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        study.sampler = optuna.samplers.TPESampler(seed=seed)
    return study


def _recover(study: optuna.Study) -> None:
    """Trials left running by a stopped process: mark them failed and ask their params again."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})


def _finished(study: optuna.Study) -> int:
    """Trials that count towards the budget: complete, or failed by their own evaluation."""
    return sum(
        t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and "error" in t.user_attrs)
        for t in study.get_trials(deepcopy=False)
    )


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


def _ask(study: optuna.Study, space: list[_Searched], split: Split) -> tuple[Trial, Cell | None]:
    """Ask a trial and make its cell (None if its parameters cannot build the router)."""
    trial = study.ask()
    router, params = _suggest(trial, space)
    trial.set_user_attr("router", router.name)
    cell = Cell(trial.number, router.name, params, split.name, router.knobs)
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
    space: list[_Searched],
    spec: Spec,
    p: Plan,
    executor: Executor,
    quiet: bool,
) -> None:
    """Ask and tell until ``search.trials`` trials have finished, ``parallel`` at a time."""
    from tqdm import tqdm

    search = spec.search
    objectives = list(search["objective"])
    val = validation_split(p.splits[0], spec.split["validation_fraction"], search["seed"])
    ranges = single_model_ranges(p.data, [val])
    opts = {"bootstrap": 0, "seed": search["seed"], "fail_fast": False}
    _recover(study)
    done = _finished(study)
    bar = tqdm(total=search["trials"], initial=done, disable=quiet, unit="trial", file=sys.stderr)
    while done < search["trials"]:
        asked = [
            _ask(study, space, val) for _ in range(min(search["parallel"], search["trials"] - done))
        ]
        trials = {t.number: t for t, cell in asked if cell is not None}
        cells = [cell for _, cell in asked if cell is not None]
        bar.update(len(asked) - len(cells))
        for res in executor(p.data, cells, {val.name: val}, opts):
            trial = trials[res.cell.index]
            outcome = _objective(res, ranges, objectives)
            if isinstance(outcome, str):
                trial.set_user_attr("error", outcome)
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, outcome)
            bar.update(1)
        done += len(asked)
    bar.close()


def _best(study: optuna.Study) -> list[FrozenTrial]:
    """The best trial, or the Pareto front (in trial order) when there are several objectives."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        errors = [t.user_attrs.get("error", "") for t in study.trials if t.state == TrialState.FAIL]
        first = next((e for e in errors if e), "none recorded")
        raise RouterError(
            f"optuna search: none of the {len(study.trials)} trials completed "
            f"(first error: {first})"
        )
    if len(study.directions) > 1:
        return sorted(study.best_trials, key=lambda t: t.number)
    return [study.best_trial]


def trials_table(study: optuna.Study, objectives: Sequence[str]) -> pd.DataFrame:
    """One row per trial (``TRIAL_COLUMNS``, objective values as ``validation_<objective>``)."""
    best = {t.number for t in _best(study)}
    value_cols = [f"validation_{o}" for o in objectives]
    rows = []
    for t in study.get_trials(deepcopy=False):
        values = t.values if t.values is not None else [float("nan")] * len(objectives)
        interrupted = t.state == TrialState.FAIL and "error" not in t.user_attrs
        seconds = t.duration.total_seconds() if t.duration is not None else float("nan")
        rows.append(
            {
                "trial": t.number,
                "router": t.user_attrs.get("router", ""),
                "params": t.user_attrs.get("params", ""),
                **dict(zip(value_cols, values, strict=True)),
                "state": t.state.name,
                "duration": seconds,
                "is_best": t.number in best,
                "error": "interrupted" if interrupted else t.user_attrs.get("error", ""),
            }
        )
    cols = TRIAL_COLUMNS[:3] + value_cols + TRIAL_COLUMNS[3:]
    return pd.DataFrame(rows, columns=cols)


def _final_cells(spec: Spec, p: Plan, best: Sequence[FrozenTrial]) -> list[Cell]:
    """The best configurations on every split of the plan, then the plan's cells of the routers
    without a space (baselines), numbered anew."""
    searched = {r.name: r for r in spec.routers if r.space}
    configs: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for t in best:
        router = t.user_attrs["router"]
        params = json.loads(t.user_attrs["params"])
        configs.setdefault((router, t.user_attrs["params"]), (router, params))
    cells = [
        (router, params, sp.name, searched[router].knobs)
        for router, params in configs.values()
        for sp in p.splits
    ]
    cells += [(c.router, c.params, c.split, c.knobs) for c in p.cells if c.router not in searched]
    return [Cell(i, *c) for i, c in enumerate(cells)]


def run_optuna(
    spec: Spec,
    p: Plan,
    *,
    executor: Executor = local_executor,
    quiet: bool = False,
    journal: str | None = None,
) -> tuple[Results, pd.DataFrame]:
    """Search the spec's router spaces with Optuna, then evaluate the best configuration(s).

    Returns the points and curves of the best configuration(s) (and of the routers without a
    space) on the plan's splits, and the trials table. ``journal``: the Optuna journal file that
    makes the search resumable (None: an in-memory study).
    """
    space = _search_space(spec)  # a bad space fails here, before the journal is touched
    with _optuna_quiet():
        study = _study(spec, p.data, journal)
        _search(study, space, spec, p, executor, quiet)
        table = trials_table(study, spec.search["objective"])
        final = _final_cells(spec, p, _best(study))
    opts = {
        "bootstrap": spec.metrics["bootstrap"],
        "seed": spec.search["seed"],
        "fail_fast": False,
    }
    splits = {s.name: s for s in p.splits}
    results = sorted(executor(p.data, final, splits, opts), key=lambda r: r.cell.index)
    res = summarize(
        results,
        single_model_ranges(p.data, p.splits),
        aiq_range=spec.metrics["aiq_range"],
        confidence=spec.metrics["confidence"],
    )
    return res, table
