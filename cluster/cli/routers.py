"""``routerbench routers``: every registered router with its knob and hyperparameters.

Read from the registry and the routers themselves, never from a second list: the knob is the
``knob_name`` of the class ``fit`` is annotated to return (else of a router fitted on 200
synthetic prompts), types and defaults come from the dataclass fields, and a range is the one the
router's own validation states when given an out-of-range value (-1, ``[-1]`` or ``"?"``).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from typing import Any

NO_DEFAULT = "required"


def cmd_routers(args: argparse.Namespace) -> int:
    from routerbench.routers.base import REGISTRY, load_all

    load_all()
    for name in sorted(REGISTRY):
        print(describe(name, REGISTRY[name]))
    return 0


def describe(name: str, cls: type) -> str:
    """One line: ``name  knob K  param: type = default (range); ...``."""
    hints = typing.get_type_hints(cls)
    base = _required_values(cls)
    params = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f" = {_show(f.default)}"
        elif f.default_factory is not dataclasses.MISSING:
            default = f" = {_show(f.default_factory())}"
        else:
            default = f" ({NO_DEFAULT})"
        hint = hints.get(f.name, Any)
        limit = _range(name, f.name, hint, base)
        params.append(f"{f.name}: {type_name(hint)}{default}" + (f" ({limit})" if limit else ""))
    return f"{name}  knob {knob_of(cls)}  " + ("; ".join(params) or "no hyperparameters")


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


def knob_of(cls: type) -> str:
    """The knob a fitted router sweeps (``none`` for a constant one; several joined by ``|``
    when ``fit`` may return several kinds); ``?`` when it cannot be found."""
    try:
        ret = typing.get_type_hints(cls.fit).get("return")  # type: ignore[attr-defined]
        kinds = typing.get_args(ret) if typing.get_origin(ret) is not None else (ret,)
        names = [getattr(k, "knob_name", None) for k in kinds]
        if not names or not all(isinstance(n, str) for n in names):
            from routerbench.engine.synth import generate

            names = [cls(**_required_values(cls)).fit(generate(200, 0)).knob_name]
    except Exception:
        return "?"
    return " | ".join(n or "none" for n in dict.fromkeys(names))


def _required_values(cls: type) -> dict[str, Any]:
    """Values for the fields without a default that name a model (the first synthetic model)."""
    from routerbench.engine.synth import MODELS
    from routerbench.routers.base import MODEL_PARAMS

    return {
        f.name: MODELS[0]
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name in MODEL_PARAMS
    }


def _range(router: str, field: str, hint: Any, base: dict[str, Any]) -> str | None:
    """What the router's validation says ``field`` must be, given an out-of-range value (-1,
    ``[-1]`` or ``"?"``); None for other types or when it accepts the value."""
    from routerbench.engine.errors import RouterError
    from routerbench.routers.base import create

    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    probes = [_probe(k) for k in (typing.get_args(hint) if union else (hint,))]
    probe = next((p for p in probes if p is not None), None)
    if probe is None:
        return None
    try:
        create(router, **{**base, field: probe})
    except RouterError as e:
        found = re.search(rf"\b{re.escape(field)} must be (.+?) \(got ", str(e))
        return found.group(1) if found else None
    except Exception:
        return None
    return None


def _probe(hint: Any) -> Any:
    """An out-of-range value of a type: -1, ``"?"``, or a list of one; None for other types."""
    if hint in (int, float):
        return -1
    if hint is str:
        return "?"
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        inner = _probe(args[0])
        return None if inner is None else [inner]
    return None


def add_parser(sub: Any) -> None:
    """Register ``routers``."""
    r = sub.add_parser(
        "routers",
        help="list the routers with their knob and hyperparameters",
        description="One line per registered router: its name (a spec's routers.name), the knob "
        "its operating points sweep (lambda, threshold, budget, ...; none for a constant "
        "router) and each hyperparameter (a spec's routers.params) with its type, default and "
        "the range its validation states.",
    )
    r.set_defaults(func=cmd_routers)
