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
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from routerbench.engine.data import RoutingData
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


class RouterError(ValueError):
    """Bad router name or hyperparameter; one line, shown without a traceback."""


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
    try:
        return cls(**params)  # type: ignore[no-any-return]
    except TypeError as e:
        raise RouterError(f"router {name!r}: {e}") from None


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
    from routerbench.routers import cascade, predictive, reference, threshold  # noqa: F401


def as_choice(n: int, col: int, k: int = 1) -> np.ndarray:
    return np.full((k, n), col, dtype=np.int64)
