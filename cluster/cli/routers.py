"""``routerbench routers``: every registered router with its knob and hyperparameters.

Read from the registry and the routers' own declarations, never from a second list: the knob is
the router class's ``knob``, types and defaults come from the dataclass fields, and a range is
the hyperparameter's entry in the class's ``constraints`` table.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import TYPE_CHECKING, Any

from routerbench.cluster.cli.options import Verb

if TYPE_CHECKING:
    from routerbench.routers.base import Router

NO_DEFAULT = "required"


def cmd_routers(args: argparse.Namespace) -> int:
    from routerbench.routers.base import REGISTRY, load_all  # not at parser build: startup time

    load_all()
    for name in sorted(REGISTRY):
        print(describe(name, REGISTRY[name]))
    return 0


def describe(name: str, cls: type[Router]) -> str:
    """One line: ``name  knob K  param: type = default (range); ...`` (knob ``none``: one
    operating point)."""
    hints = typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f" = {_show(f.default)}"
        elif f.default_factory is not dataclasses.MISSING:
            default = f" = {_show(f.default_factory())}"
        else:
            default = f" ({NO_DEFAULT})"
        rule = cls.constraints.get(f.name)
        limit = f" ({rule.describe()})" if rule is not None else ""
        params.append(f"{f.name}: {type_name(hints.get(f.name, Any))}{default}{limit}")
    return f"{name}  knob {cls.knob or 'none'}  " + ("; ".join(params) or "no hyperparameters")


def _show(value: Any) -> str:
    """A default as a spec writes it (a tuple as a list)."""
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def type_name(hint: Any) -> str:
    """A type hint as a spec author reads it: ``int``, ``float | None``, ``'a' | 'b'``,
    ``list[int]`` (TOML has lists, not tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"list[{type_name(args[0])}]"
    if hint is type(None):
        return "None"
    return hint.__name__ if isinstance(hint, type) else str(hint)


def verbs() -> list[Verb]:
    """The ``routers`` verb."""
    return [
        Verb(
            "routers",
            "list the routers with their knob and hyperparameters",
            "One line per registered router: its name (a spec's routers.name), the knob its "
            "operating points sweep (lambda, threshold, budget, ...; none for a constant router) "
            "and each hyperparameter (a spec's routers.params) with its type, default and the "
            "range its constraints state.",
            cmd_routers,
        )
    ]
