"""The README describes every column of every table the tool writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from routerbench.cluster.leaderboard import COLUMNS as LEADERBOARD
from routerbench.sweeps import schema

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def described(section: str) -> dict[str, str]:
    """Column name -> description of the README table that follows ``section`` (bold title)."""
    start = README.index(section)
    rows = {}
    for line in README[start:].splitlines()[2:]:
        if line.startswith("| `"):
            m = re.match(r"\| `([^`]+)` \| (.+) \|$", line)
            assert m, line
            rows[m.group(1)] = m.group(2)
        elif rows and not line.startswith("|"):
            break
    return rows


TABLES = {
    "**points.parquet**": schema.POINTS,
    "**curves.parquet**": schema.CURVES,
    "**trials.parquet (Optuna runs)**": schema.TRIALS,
    "**leaderboard.{parquet,csv,json}**": LEADERBOARD,
}


class TestColumnsDescribed:
    @pytest.mark.parametrize("section", list(TABLES))
    def test_every_column_in_order(self, section: str) -> None:
        """Each table's README section lists exactly its columns, in order, each with the
        description the code gives it (schema.py, the leaderboard's COLUMNS)."""
        rows = described(section)
        assert list(rows) == list(TABLES[section])
        for col, text in TABLES[section].items():
            assert rows[col] == text.replace("|", "/"), col
