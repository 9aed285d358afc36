"""Every command of the routerbench parser has a description and help; bare groups exit 2."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from routerbench.cluster.cli import build_parser, main

Command = tuple[str, argparse.ArgumentParser]


def walk(parser: argparse.ArgumentParser, path: str = "routerbench") -> Iterator[Command]:
    """The parser and every parser below it, with its command path."""
    yield path, parser
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path} {name}")


def problems(path: str, parser: argparse.ArgumentParser) -> list[str]:
    """What a parser lacks: a description, help for a verb it offers, help for an argument."""
    out = [] if (parser.description or "").strip() else [f"{path}: no description"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if not (action.help or "").strip():
            out.append(f"{path} {action.option_strings or action.dest}: no help")
        if isinstance(action, argparse._SubParsersAction):  # a verb without help= is unlisted
            helped = {v.dest for v in action._choices_actions if (v.help or "").strip()}
            out += [
                f"{path} {v}: no help in the command list"
                for v in action.choices
                if v not in helped
            ]
    return out


def commands(leaderboard: bool) -> list[Command]:
    """The commands outside the leaderboard group, or those of the leaderboard group."""
    found = list(walk(build_parser()))
    is_lb = [p.startswith("routerbench leaderboard") for p, _ in found]
    return [c for c, lb in zip(found, is_lb, strict=True) if lb == leaderboard]


class TestHelpText:
    def test_walk_sees_every_command(self) -> None:
        """The walk reaches every verb and group (so the checks below are not vacuous)."""
        paths = {p for p, _ in walk(build_parser())}
        expected = {"run", "validate", "report", "plot", "runs", "routers", "data"}
        expected |= {"data info", "data convert", "data synth", "data fetch"}
        expected |= {"leaderboard", "leaderboard refresh", "leaderboard nightly"}
        assert {f"routerbench {c}" for c in expected} | {"routerbench"} <= paths

    def test_cli_commands_documented(self) -> None:
        """Every parser outside the leaderboard group has a description, every verb and argument
        help."""
        found = [msg for path, p in commands(leaderboard=False) for msg in problems(path, p)]
        assert found == []

    def test_leaderboard_commands_documented(self) -> None:
        """Every parser of the leaderboard group has a description and help throughout."""
        found = [msg for path, p in commands(leaderboard=True) for msg in problems(path, p)]
        assert found == []


class TestBareGroup:
    @pytest.mark.parametrize(
        "argv", [[], ["data"], ["leaderboard"]], ids=["routerbench", "data", "leaderboard"]
    )
    def test_help_on_stderr_exit_2(self, argv: list[str], capsys) -> None:
        """A group named without a command prints its own help to stderr and exits 2."""
        rc = main(argv)
        out, err = capsys.readouterr()
        usage = " ".join(["usage: routerbench", *argv])
        assert rc == 2 and out == "" and err.startswith(usage + " ["), err[:200]
