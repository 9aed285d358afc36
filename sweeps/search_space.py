"""The search space of ``[search] kind = "optuna"``: a spec's ``space`` and ``grid`` entries as
Optuna distributions, checked against the data before any trial runs (see :mod:`.search`)."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import Trial

from routerbench.engine.errors import RouterError, SpecError
from routerbench.routers.base import check_data, create
from routerbench.sweeps.spec import Spec


@dataclass(frozen=True)
class Searched:
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
    if not all(
        isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in bounds
    ):
        raise SpecError(f"{at}: low, high and step must be finite numbers (got {raw!r})")
    if step is not None and step <= 0:
        raise SpecError(f"{at}: step must be > 0 (got {raw!r})")
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


# The data's facts a space is checked against: model names, family -> fewest training prompts.
Facts = tuple[tuple[str, ...], dict[str, int]]


def _check_values(
    at: str, name: str, params: dict[str, Any], values: dict[str, list[Any]], facts: Facts | None
) -> None:
    """Each candidate value must construct the router together with some candidates of the other
    keys (hyperparameters may constrain each other), and fit the data where its facts are
    known; else a SpecError naming the key."""
    for key, own in values.items():
        others = [k for k in values if k != key]
        for v in own:
            errors = []
            for combo in itertools.product(*(values[k] for k in others)):
                try:
                    router = create(
                        name, **{**params, **dict(zip(others, combo, strict=True)), key: v}
                    )
                    if facts is not None:  # model names only: a k too large for some
                        check_data(router, facts[0], {})  # families fails those trials alone
                    break
                except RouterError as e:
                    errors.append(e)
            else:
                raise SpecError(f"{at}.{key}': value {v!r} is refused: {errors[0]}")


def _check_some_fit(
    at: str, name: str, params: dict[str, Any], values: dict[str, list[Any]], facts: Facts
) -> None:
    """Some combination of candidate values must fit the data (``k`` at most some family's
    training prompts): else no trial could complete. A value too large for some families only
    fails those trials, recorded in the trials table."""
    keys = list(values)
    first = None
    for combo in itertools.product(*(values[k] for k in keys)):
        try:
            check_data(create(name, **{**params, **dict(zip(keys, combo, strict=True))}), *facts)
            return
        except RouterError as e:
            first = first or e
    raise SpecError(f"{at}': no value of the space fits the data: {first}")


def search_space(spec: Spec, facts: Facts | None = None) -> list[Searched]:
    """The routers with a space, checked against the router (and the data's facts, when given)
    before any trial runs."""
    out: list[Searched] = []
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
        _check_values(at, r.name, dict(r.params), values, facts)
        if facts is not None:
            _check_some_fit(at, r.name, dict(r.params), values, facts)
        out.append(Searched(r.name, dict(r.params), dists, frozenset(json_keys), r.knobs))
    return out


def check_space(spec: Spec, facts: Facts | None = None) -> None:
    """Refuse (one-line SpecError) a search space its routers cannot take, before any trial:
    without ``facts`` before the data is read, with them against the data's models and
    training-set sizes."""
    search_space(spec, facts)


def suggest(trial: Trial, space: list[Searched]) -> tuple[Searched, dict[str, Any]]:
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
