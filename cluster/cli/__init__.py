"""The ``routerbench`` command: a thin layer over the Python API (:mod:`routerbench.sweeps.run`,
:mod:`routerbench.cluster.leaderboard`, ...).

User mistakes (bad files, columns, names, values, output locations) print one line
``routerbench: error: ...`` and exit with code 2, with no traceback and nothing half-written.
Faults that outlast the retries (a store still unreachable, Ray actors dying past the limit) and
runs with failed cells exit with code 1, also with one line; success is 0. A command group named
without a command (``routerbench``, ``routerbench data``, ...) prints its help to stderr, exit 2.

Verbs, declared with the verb table of :mod:`.options`: ``run`` and ``validate`` in :mod:`.run`;
``report``, ``plot`` and ``runs`` in :mod:`.results`; ``leaderboard ...`` in :mod:`.leaderboard`;
``data ...`` in :mod:`.data`; ``routers`` in :mod:`.routers`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from routerbench.engine.errors import (
    ClusterError,
    DataError,
    RouterError,
    RunFailed,
    SpecError,
    Unreachable,
    UsageError,
)
from routerbench.engine.storage import is_transient

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from routerbench.cluster.cli import data, leaderboard, results, routers, run
    from routerbench.cluster.cli.options import add_verbs
    from routerbench.sweeps.runs import routerbench_version

    p = argparse.ArgumentParser(
        prog="routerbench",
        description="Evaluate LLM routers by replaying precomputed outcomes (RouterBench).",
    )
    p.add_argument("--version", action="version", version=f"routerbench {routerbench_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", help="what to do")
    add_verbs(
        sub,
        [*run.verbs(), *results.verbs(), *routers.verbs(), *leaderboard.verbs(), *data.verbs()],
    )
    return p


def _bare_group(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """The innermost command group named without one of its commands (``routerbench``,
    ``routerbench data``, ...), or None when a command was named."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            return parser if chosen is None else _bare_group(action.choices[chosen], args)
    return None


def _one_line(e: BaseException) -> str:
    """An error as one line (newlines folded, at most 2000 characters)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 2000 else text[:1997] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` (default: the process's arguments); returns its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    group = _bare_group(parser, args)
    if group is not None:  # one rule for every group: its help on stderr, exit code 2
        group.print_help(sys.stderr)
        return 2
    try:
        rc: Any = args.func(args)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stdout = open(os.devnull, "w")
        return 0
    except Unreachable as e:  # a fault that outlasted the retries
        print(f"routerbench: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except (DataError, RouterError, SpecError, UsageError) as e:
        print(f"routerbench: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:
        if is_transient(e):  # a refused or lost connection past the retries: a fault
            print(f"routerbench: error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
            return 1
        # storage, permission and filesystem errors are the user's to fix
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"routerbench: error: {where}{_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        if isinstance(e, ClusterError | RunFailed) or is_transient(e):  # faults
            print(f"routerbench: error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        print("routerbench: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)
