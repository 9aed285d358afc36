"""What the command's verbs are made of: a declarative verb table (:class:`Verb`, :class:`Arg`,
:func:`add_verbs`) and the storage options every verb that reads or writes URLs takes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from routerbench.engine.errors import UsageError


class Arg:
    """One ``add_argument`` call: its names and keywords, as argparse takes them."""

    def __init__(self, *names: str, **kwargs: Any) -> None:
        self.names, self.kwargs = names, kwargs


@dataclass(frozen=True)
class Verb:
    """A command (``func`` runs it) or a command group (``verbs``: its commands, listed under
    ``<NAME>_COMMAND`` with ``verbs_help``), with its help line, description and arguments."""

    name: str
    help: str
    description: str
    func: Callable[[argparse.Namespace], int] | None = None
    args: Sequence[Arg] = ()
    verbs: Sequence[Verb] = ()
    verbs_help: str = "what to do"


def add_verbs(subparsers: Any, verbs: Sequence[Verb]) -> None:
    """Register each verb (and a group's verbs below it) on an argparse subparsers action."""
    for verb in verbs:
        p = subparsers.add_parser(verb.name, help=verb.help, description=verb.description)
        for arg in verb.args:
            p.add_argument(*arg.names, **arg.kwargs)
        if verb.verbs:
            inner = p.add_subparsers(
                dest=f"{verb.name}_command",
                metavar=f"{verb.name.upper()}_COMMAND",
                help=verb.verbs_help,
            )
            add_verbs(inner, verb.verbs)
        if verb.func is not None:
            p.set_defaults(func=verb.func)


# ---------------------------------------------------------------------------- storage options
STORAGE_OPTION = Arg(
    "--storage-option",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="fsspec/s3fs option for the URLs (repeatable), e.g. "
    "endpoint_url=http://127.0.0.1:9000, anon=true, client_kwargs.verify=false; VALUE is "
    "JSON when it parses. Without it, endpoint and credentials come from the standard AWS "
    "environment and config",
)


def parse_storage_options(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--storage-option``) as fsspec storage options.

    VALUE is read as JSON when it parses (numbers, ``true``/``false``, ``null``, ``"quoted"``
    strings, lists, objects), else kept as a string; dots in KEY nest:

    >>> parse_storage_options(["endpoint_url=http://127.0.0.1:9000", "client_kwargs.verify=false"])
    {'endpoint_url': 'http://127.0.0.1:9000', 'client_kwargs': {'verify': False}}

    A bad item raises ``UsageError`` (one line, exit code 2).
    """

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise UsageError(f"--storage-option must be KEY=VALUE (got {item!r})")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UsageError(
                    f"--storage-option {item!r}: {'.'.join(parts[: i + 1])!r} is already set "
                    "to a value, not a table of options"
                )
        if parts[-1] in node:
            raise UsageError(f"--storage-option {key.strip()!r} is given twice")
        node[parts[-1]] = value
    return out
