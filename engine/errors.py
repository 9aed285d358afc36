"""Every error type routerbench raises on purpose, in one place.

User mistakes (bad data, spec, router parameter or command-line value) are ``ValueError``
subclasses: the CLI prints their one-line message without a traceback and exits with code 2.
Faults that are not the user's (an unreachable store, a failed cell, a broken cluster) exit 1.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(value: object, allowed: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest allowed name, or ``""`` when none is close.

    >>> did_you_mean("knnn", ["knn", "mlp"]), did_you_mean("zzz", ["knn"])
    ("; did you mean 'knn'?", '')
    """
    close = difflib.get_close_matches(str(value), list(allowed), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters), for a one-line error.

    >>> first_line(ValueError("bad value\\nmore detail"))
    'ValueError: bad value'
    """
    try:
        text = (str(exc).splitlines() or [""])[0][:200]
    except Exception:  # a message that cannot be shown (recursive, too long an int)
        text = "?"
    return f"{type(exc).__name__}: {text}"


class DataError(ValueError):
    """A user's data (or a path, key or column in it) is not what routerbench expects.

    The message is one line naming the file, column or key and what was expected; the CLI prints
    it without a traceback and exits with code 2.
    """


class Unreachable(DataError):
    """A store still unreachable after the retries: a fault, not bad input (exit code 1)."""


class SpecError(ValueError):
    """A spec file is malformed; the message is one line naming the key."""


class RouterError(ValueError):
    """Bad router name or hyperparameter; one line, shown without a traceback."""


class UsageError(ValueError):
    """A bad command-line value; shown as one line, exit code 2."""


class UpstreamHullError(ValueError):
    """The original code's hull fails on these points (it raises IndexError there)."""


class RunFailed(RuntimeError):
    """A run finished with failed cells where a caller needs it whole (one line, exit 1)."""


class ClusterError(RuntimeError):
    """The cluster failed past what the executor recovers from; one line, exit code 1."""
