"""The router base classes, each hyperparameter's allowed values, and the one registry of names.

A router is a frozen dataclass of hyperparameters that subclasses :class:`Router` (picklable, no
I/O in its constructor), made available under a name by :func:`register`. ``fit`` learns from
training data and returns a :class:`Fitted` router, which

- ``score(data)``: does the expensive part once (predictions; no knob in it);
- ``decide(scores, knobs)``: turns scores into decisions for every knob value at once, as an int
  matrix ``[len(knobs), n]`` of model columns, ``NO_CALL`` (-1) for "call no model"; or, where a
  prompt's outcome is not one model's (a cascade pays for every call), ``outcomes``;
- ``knob_name`` and ``default_knobs()``: the operating points swept by default;
- ``exact_path(scores, data)``: every operating point at once, where the router can give them.

Score once, sweep the knob: RouteLLM's split between win rate and threshold. Every optional hook
has a default here, as Optuna's ``BaseSampler`` declares its own; each router states its
hyperparameters' allowed values in one table (``constraints``, as scikit-learn's
``_parameter_constraints``), checked at construction here and against the data by
:func:`check_data`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import pkgutil
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError, did_you_mean
from routerbench.engine.evaluate import NO_CALL, realised
from routerbench.routers.params import Constraint, type_problem

__all__ = [
    "NO_CALL",
    "REGISTRY",
    "Fitted",
    "Router",
    "RouterError",
    "check_data",
    "create",
    "load_all",
    "params_json",
    "register",
]

ExactPath = tuple[np.ndarray, np.ndarray, np.ndarray, int]


class Fitted(ABC):
    """A fitted router. Subclasses give ``knob_name`` (a class attribute, a dataclass field with a
    default, or a property), ``score`` and ``default_knobs``, and ``decide`` or ``outcomes``."""

    key_domains: tuple[bytes, ...] = ()
    """The prompt-key domains ``score`` reads (``data.keys(domain)``): hashed once per data set
    before blocks are scored, not once per block."""

    @property
    @abstractmethod
    def knob_name(self) -> str:
        """The knob its operating points sweep (``""``: one operating point, no knob)."""

    @abstractmethod
    def score(self, data: RoutingData) -> Any:
        """The knob-free, expensive part for ``data``'s prompts (predictions, draws, ...)."""

    @abstractmethod
    def default_knobs(self) -> np.ndarray:
        """The knob values swept when a spec names none."""

    def decide(self, scores: Any, knobs: np.ndarray) -> np.ndarray:
        """Model columns ``[len(knobs), n]`` (``NO_CALL``: no model) at every knob value; a
        refused knob value is a one-line RouterError naming the knob."""
        raise NotImplementedError(f"{type(self).__name__} gives outcomes, not decisions")

    def outcomes(
        self, scores: Any, data: RoutingData, knobs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-prompt realised cost and quality ``[len(knobs), n]`` at every knob value: by
        default those of the models ``decide`` chooses (cost and quality 0 for ``NO_CALL``)."""
        choice = self.decide(scores, knobs)
        return realised(data.cost, choice), realised(data.quality, choice)

    def exact_path(self, scores: Any, data: RoutingData) -> ExactPath | None:
        """Every operating point as a step function of the knob, or None (the default: the
        router has none, and only its knob values are evaluated).

        The path is ``(breakpoints, cost sums, quality sums, n)``: strictly increasing knob
        values; the sums over ``data``'s ``n`` prompts of what ``outcomes`` gives at any knob value
        from a breakpoint up to the next (the first breakpoint's also below it), equal to
        ``math.fsum`` of those outcomes bit for bit. The first breakpoint must be the same for
        every set of prompts (the knob's lowest value: 0 for λ, -inf for a threshold), since
        :func:`routerbench.sweeps.cells.merge_paths` adds blocks' paths and refuses paths that
        start at different values.
        """
        return None


class Router(ABC):
    """A router's hyperparameters (a frozen dataclass subclassing this); ``fit`` learns.

    Class attributes: ``knob`` (the ``knob_name`` of what ``fit`` returns, ``""`` for none;
    several joined by ``" | "`` when it depends on a hyperparameter), ``example`` (hyperparameters
    that fit small samples of :func:`routerbench.engine.synth.generate`, for the contract suite)
    and ``constraints`` (hyperparameter -> its allowed values beyond its type hint).
    """

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]  # subclasses: dataclasses
    registry_name: ClassVar[str] = ""  # set by register
    knob: ClassVar[str]
    example: ClassVar[Mapping[str, Any]] = {}
    constraints: ClassVar[Mapping[str, Constraint]] = {}

    def __post_init__(self) -> None:
        """Check every hyperparameter, strictly, against its type hint (a list for a tuple is
        made a tuple), then its constraint (None passes where the hint allows it)."""
        cls = type(self)
        name = cls.registry_name or cls.__name__
        hints = _hints(cls)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            hint = hints.get(f.name, Any)
            if isinstance(value, list) and typing.get_origin(hint) is tuple:
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            problem = type_problem(value, hint)
            rule = cls.constraints.get(f.name)
            if problem is None and rule is not None and value is not None:
                problem = None if rule.accepts(value) else rule.describe()
            if problem:
                raise RouterError(f"router {name!r}: {f.name} must be {problem} (got {value!r})")

    def work_group(self) -> str | None:
        """Routers that return the same key share work across their fits (the KNN router's
        neighbour search, for every k): an executor evaluates them in one process. None: none."""
        return None

    @abstractmethod
    def fit(self, train: RoutingData) -> Fitted:
        """Learn from the training prompts; raise a one-line RouterError or DataError when they
        cannot be fitted."""

    @classmethod
    def check_knobs(cls, knobs: ArrayLike) -> str | None:
        """What is wrong with knob values a spec gives, checked before anything runs (None: all
        accepted, the default; NaN is refused for every router before this is asked)."""
        return None


REGISTRY: dict[str, type[Router]] = {}
R = TypeVar("R", bound=type[Router])


def register(name: str) -> Callable[[R], R]:
    """Class decorator: make a router available under ``name`` (set as its ``registry_name``).

    The class must be a dataclass subclassing :class:`Router`, with a ``knob``, and constraints
    only on its own fields; anything else is a TypeError when it is registered.
    """

    def deco(cls: R) -> R:
        if name in REGISTRY:
            raise RuntimeError(f"router name {name!r} registered twice")
        if not (isinstance(cls, type) and issubclass(cls, Router)):
            raise TypeError(f"router {name!r}: {cls!r} must subclass {Router.__module__}.Router")
        if not dataclasses.is_dataclass(cls) or not isinstance(getattr(cls, "knob", None), str):
            raise TypeError(f"router {name!r}: must be a dataclass with a class attribute knob")
        fields = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(cls.constraints) - fields):
            raise TypeError(f"router {name!r}: constraints on {unknown}, not fields")
        REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return deco


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A router class's resolved type hints (read once per class: construction is frequent)."""
    return typing.get_type_hints(cls)


def create(name: str, **params: Any) -> Router:
    """Instantiate a registered router; unknown names or bad parameters give a one-line
    RouterError."""
    if name not in REGISTRY:
        load_all()  # the built-in routers register when their module is imported
    if name not in REGISTRY:
        raise RouterError(
            f"unknown router {name!r}: expected one of {sorted(REGISTRY)}"
            + did_you_mean(name, REGISTRY)
        )
    cls = REGISTRY[name]
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in params:
        if key not in allowed:
            raise RouterError(
                f"router {name!r}: unknown parameter {key!r}, allowed: {allowed}"
                + did_you_mean(key, allowed)
            )
    try:
        return cls(**params)
    except TypeError as e:
        raise RouterError(f"router {name!r}: {e}") from None


def params_json(router: Router) -> str:
    """Canonical JSON of a router's hyperparameters (sorted keys, compact)."""
    return json.dumps(dataclasses.asdict(router), sort_keys=True, separators=(",", ":"))


def name_of(router: Router) -> str:
    """The name a router's class is registered under."""
    return type(router).registry_name


def check(cond: bool, router: str, msg: str) -> None:
    """Refuse what a router cannot work with: ``router 'knn': k=6 exceeds the 5 training rows``."""
    if not cond:
        raise RouterError(f"router {router!r}: {msg}")


def load_all() -> None:
    """Import every module of ``routerbench.routers`` (importing a module registers its
    routers): a new file there is found without being listed anywhere."""
    import routerbench.routers as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def check_data(router: Router, models: tuple[str, ...], train_rows: dict[str, int]) -> None:
    """Check a router's hyperparameters against the data it will be fitted on, before any
    computation, by their constraints: model names must be the data's, and a count of training
    prompts (``k``) at most the training prompts of some family (``train_rows``: family -> its
    fewest training prompts over the splits; empty: not checked). A family smaller than ``k``
    fails alone, as a failed row, like any fit error."""
    cls = type(router)
    for key, rule in cls.constraints.items():
        problem = rule.data_problem(key, getattr(router, key), models, train_rows)
        if problem:
            raise RouterError(f"router {cls.registry_name!r}: {problem}")
