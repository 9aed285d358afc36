"""The router protocol and the one registry of router names.

A router is a frozen dataclass of hyperparameters (picklable, no I/O in its constructor). ``fit``
learns from training data and returns a fitted router that:

- ``score(data)``: does the expensive part once (predictions; no knob in it);
- ``decide(scores, knobs)``: turns scores into decisions for every knob value at once, as an int
  matrix ``[len(knobs), n]`` of model columns, ``NO_CALL`` (-1) for "call no model";
- ``knob_name`` and ``default_knobs()``: the operating points swept by default.

Score once, sweep the knob: RouteLLM's split between win rate and threshold.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import types
import typing
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError
from routerbench.engine.evaluate import NO_CALL

__all__ = [
    "NO_CALL",
    "REGISTRY",
    "Fitted",
    "Router",
    "RouterError",
    "create",
    "params_json",
    "register",
]


@runtime_checkable
class Fitted(Protocol):
    @property
    def knob_name(self) -> str: ...

    def score(self, data: RoutingData) -> Any: ...

    def decide(self, scores: Any, knobs: np.ndarray) -> np.ndarray: ...

    def default_knobs(self) -> np.ndarray: ...


class Router(Protocol):
    def fit(self, train: RoutingData) -> Fitted: ...


REGISTRY: dict[str, type] = {}
R = TypeVar("R", bound=type)


def register(name: str) -> Callable[[R], R]:
    """Class decorator: make a router available under ``name`` (its ``name`` attribute too)."""

    def deco(cls: R) -> R:
        if name in REGISTRY:
            raise RuntimeError(f"router name {name!r} registered twice")
        REGISTRY[name] = cls
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def create(name: str, **params: Any) -> Router:
    """Instantiate a registered router; unknown names or parameters give a one-line RouterError."""
    load_all()
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RouterError(f"unknown router {name!r}: expected one of {sorted(REGISTRY)}{hint}")
    cls = REGISTRY[name]
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in params:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RouterError(
                f"router {name!r}: unknown parameter {key!r}, allowed: {allowed}{hint}"
            )
    hints = typing.get_type_hints(cls)
    for key, value in params.items():
        problem = _type_problem(value, hints.get(key, Any))
        if problem is None and key == "seed" and not 0 <= value < 2**32:
            problem = "an integer in [0, 2**32)"
        if problem:
            raise RouterError(f"router {name!r}: {key} must be {problem} (got {value!r})")
    try:
        return cls(**params)  # type: ignore[no-any-return]
    except TypeError as e:
        raise RouterError(f"router {name!r}: {e}") from None


def _type_problem(value: Any, hint: Any) -> str | None:
    """What ``value`` must be to match the type hint ``hint``, or None if it does: strictly (a
    bool is not an int; a float is finite; an int fits in 64 bits)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        problems = [_type_problem(value, a) for a in args]
        return None if None in problems else " or ".join(p for p in problems if p)
    if hint is type(None):
        return None if value is None else "None"
    if origin is typing.Literal:
        return None if value in args else f"one of {list(args)}"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    boolean = isinstance(value, bool | np.bool_)
    if hint is int:
        ok = isinstance(value, numbers.Integral) and not boolean and abs(int(value)) < 2**63
        return None if ok else "an integer (64-bit)"
    if hint is float:
        ok = isinstance(value, numbers.Real) and not boolean
        return None if ok and math.isfinite(float(value)) else "a finite number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, tuple | list) or not value:
            return f"a non-empty list of {args[0].__name__}"
        inner = [_type_problem(v, args[0]) for v in value]
        return next((f"a list of {p}" for p in inner if p), None)
    return None


def params_json(router: Any) -> str:
    """Canonical JSON of a router's hyperparameters (sorted keys, compact)."""
    return json.dumps(dataclasses.asdict(router), sort_keys=True, separators=(",", ":"))


def name_of(router: Any) -> str:
    return str(type(router).registry_name)


def check(cond: bool, router: str, msg: str) -> None:
    """Validate a hyperparameter at construction: ``router 'knn': k must be >= 1 (got 0)``."""
    if not cond:
        raise RouterError(f"router {router!r}: {msg}")


def load_all() -> None:
    # Importing the router modules registers them; kept lazy so `base` has no import cycle.
    from routerbench.routers import (  # noqa: F401
        cascade,
        frontier,
        predictive,
        reference,
        threshold,
    )


# Parameters that name the data's facts, checked when the data is known (``check_data``).
MODEL_PARAMS = ("model", "strong", "weak")
NEIGHBOUR_PARAMS = ("k",)


def check_data(router: Any, models: tuple[str, ...], train_rows: dict[str, int]) -> None:
    """Check a router's hyperparameters against the data it will be fitted on, before any
    computation: model names must be the data's, and ``k`` at most the training prompts of some
    family (``train_rows``: family -> its fewest training prompts over the splits; empty: not
    checked). A family smaller than ``k`` fails alone, as a failed row, like any fit error."""
    name = name_of(router)
    for key in MODEL_PARAMS:
        value = getattr(router, key, None)
        if isinstance(value, str) and value not in models:
            close = difflib.get_close_matches(value, models, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RouterError(
                f"router {name!r}: {key} {value!r} is not a model of the data, expected one of "
                f"{list(models)}{hint}"
            )
    for key in NEIGHBOUR_PARAMS:
        value = getattr(router, key, None)
        if isinstance(value, int) and train_rows:
            fam, rows = max(train_rows.items(), key=lambda kv: kv[1])
            if value > rows:  # no family could be fitted: every cell would fail
                raise RouterError(
                    f"router {name!r}: {key} = {value} is more than the training prompts of "
                    f"every family (the most: {rows}, in {fam!r})"
                )
