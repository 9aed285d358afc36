"""What a router's hyperparameter may be: strictly its type hint, then its constraint.

A router's ``constraints`` table maps a hyperparameter to one :class:`Constraint`: an
:class:`Interval`, :class:`Options`, :class:`Each` (every item of a list), :class:`Model` (a model
name of the data) or :class:`PromptCount` (a count of training prompts). ``describe`` says what a
value must be, in the words of the error message and of ``routerbench routers``.
"""

from __future__ import annotations

import math
import numbers
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from routerbench.engine.errors import did_you_mean


class Constraint(ABC):
    """The values a hyperparameter accepts beyond its type hint (which is checked first)."""

    @abstractmethod
    def describe(self) -> str:
        """What a value must be: ``an integer >= 1``, ``in [0, 1]``, ``'a' or 'b'``."""

    @abstractmethod
    def accepts(self, value: Any) -> bool:
        """Whether ``value`` (of the hinted type) is allowed."""

    def data_problem(
        self, key: str, value: Any, models: Sequence[str], train_rows: dict[str, int]
    ) -> str | None:
        """What is wrong with ``value`` for the data (its model names; family -> fewest training
        prompts over the splits, empty when unknown); None when nothing is (the default)."""
        return None


def _num(x: float) -> str:
    """A bound as written: ``1``, ``0.5``, ``2**32`` (a large power of two)."""
    if isinstance(x, int) and x >= 2**16 and x & (x - 1) == 0:
        return f"2**{x.bit_length() - 1}"
    return str(x)


@dataclass(frozen=True)
class Interval(Constraint):
    """A number between ``low`` and ``high`` (None: unbounded); ``closed``: which ends are in;
    ``kind`` int also asks for an integer."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: Literal["both", "left", "right", "neither"] = "both"

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise ValueError("an Interval needs a low or a high bound")

    def _ends(self) -> tuple[bool, bool]:
        return self.closed in ("both", "left"), self.closed in ("both", "right")

    def bounds(self) -> str:
        """``>= 1``, ``< 2``, ``in [0, 2**32)``."""
        lo_in, hi_in = self._ends()
        if self.low is not None and self.high is not None:
            lo, hi = "[" if lo_in else "(", "]" if hi_in else ")"
            return f"in {lo}{_num(self.low)}, {_num(self.high)}{hi}"
        if self.low is not None:
            return f"{'>=' if lo_in else '>'} {_num(self.low)}"
        return f"{'<=' if hi_in else '<'} {_num(self.high)}"  # type: ignore[arg-type]  # one is set

    def describe(self) -> str:
        return f"an integer {self.bounds()}" if self.kind is int else self.bounds()

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        x = typing.cast(float, value)  # int or float: Python compares them exactly
        lo_in, hi_in = self._ends()
        above = self.low is None or (x >= self.low if lo_in else x > self.low)
        below = self.high is None or (x <= self.high if hi_in else x < self.high)
        return above and below


@dataclass(frozen=True)
class Options(Constraint):
    """One of a few values."""

    values: tuple[Any, ...]

    def describe(self) -> str:
        if len(self.values) == 2:
            return f"{self.values[0]!r} or {self.values[1]!r}"
        return f"one of {list(self.values)}"

    def accepts(self, value: Any) -> bool:
        return value in self.values


@dataclass(frozen=True)
class Each(Constraint):
    """Every item of a (non-empty, by its type hint) list is in ``item``."""

    item: Interval

    def describe(self) -> str:
        noun = "integers" if self.item.kind is int else "numbers"
        return f"a non-empty list of {noun} {self.item.bounds()}"

    def accepts(self, value: Any) -> bool:
        return all(self.item.accepts(v) for v in value)


@dataclass(frozen=True)
class Model(Constraint):
    """A model name of the data (checked when the data is known)."""

    def describe(self) -> str:
        return "a model of the data"

    def accepts(self, value: Any) -> bool:
        return True

    def data_problem(
        self, key: str, value: Any, models: Sequence[str], train_rows: dict[str, int]
    ) -> str | None:
        if value in models:
            return None
        hint = did_you_mean(value, models)
        return f"{key} {value!r} is not a model of the data, expected one of {list(models)}{hint}"


@dataclass(frozen=True)
class PromptCount(Interval):
    """An integer >= ``low`` that a fit needs at least as many training prompts as (KNN's ``k``):
    more than every family's training prompts is refused when the data is known (more than some
    family's fails that family's fit alone)."""

    kind: type = int
    low: float | None = 1

    def data_problem(
        self, key: str, value: Any, models: Sequence[str], train_rows: dict[str, int]
    ) -> str | None:
        if not train_rows:
            return None
        fam, rows = max(train_rows.items(), key=lambda kv: kv[1])
        if value <= rows:
            return None
        return (
            f"{key} = {value} is more than the training prompts of every family (the most: "
            f"{rows}, in {fam!r})"
        )


SEED = Interval(int, 0, 2**32, "left")  # a NumPy / scikit-learn seed


def type_problem(value: Any, hint: Any) -> str | None:
    """What ``value`` must be to match the type hint ``hint``, or None if it does: strictly (a
    bool is not an int; a float is finite; an int fits in 64 bits)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        problems = [type_problem(value, a) for a in args]
        return None if None in problems else " or ".join(p for p in problems if p)
    if hint is type(None):
        return None if value is None else "None"
    if origin is typing.Literal:
        return None if value in args else Options(args).describe()
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
        inner = [type_problem(v, args[0]) for v in value]
        return next((f"a list of {p}" for p in inner if p), None)
    return None
