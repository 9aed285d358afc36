"""Spec files: parsing, defaults, one-line errors naming the key and the allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from routerbench.cluster.cli import main
from routerbench.engine.errors import SpecError
from routerbench.sweeps.spec import describe_fields, load, parse

ORACLE = [{"name": "oracle"}]


class TestParse:
    def test_defaults_filled(self) -> None:
        """A minimal spec gets every default and a stable hash."""
        s = parse({"routers": ORACLE})
        assert s.split["kind"] == "upstream" and s.metrics["bootstrap"] == 200
        assert s.data["families"] == ["paper"] and s.output["url"] == "runs"
        assert s.hash == parse({"routers": ORACLE}).hash
        assert s.hash != parse({"routers": ORACLE, "split": {"kind": "seeded"}}).hash

    def test_grid_cells_key_sorted(self) -> None:
        """A grid expands to every combination, keys sorted, fixed params merged."""
        s = parse(
            {
                "routers": [
                    {
                        "name": "knn",
                        "grid": {"k": [5, 10], "metric": ["cosine"]},
                        "params": {"feature_dim": 16},
                    }
                ]
            }
        )
        cells = s.routers[0].cells()
        assert cells == [
            {"feature_dim": 16, "k": 5, "metric": "cosine"},
            {"feature_dim": 16, "k": 10, "metric": "cosine"},
        ]

    @pytest.mark.parametrize(
        ("doc", "needle"),
        [
            ({"routers": ORACLE, "splt": {}}, "unknown section 'splt'"),
            ({"routers": ORACLE, "split": {"knd": "upstream"}}, "unknown key 'split.knd'"),
            ({"routers": ORACLE, "split": {"kind": "random"}}, "'split.kind' must be one of"),
            ({"routers": ORACLE, "search": {"trials": "ten"}}, "'search.trials' must be int"),
            ({"routers": ORACLE, "metrics": {"confidence": 1.5}}, "'metrics.confidence'"),
            ({"routers": [{"name": "knnn"}]}, "did you mean 'knn'"),
            ({"routers": [{"name": "knn", "gird": {}}]}, "unknown key 'routers[0].gird'"),
            (
                {"routers": [{"name": "knn", "grid": {"k": []}}]},
                "'routers[0].grid.k' must be a non-empty",
            ),
            ({"routers": [{"name": "knn", "grid": {"kk": [1]}}]}, "did you mean 'k'"),
            ({"routers": [{"name": "knn", "grid": {"k": [0]}}]}, "k must be an integer >= 1"),
            ({"routers": []}, "at least one router"),
            ({"routers": ORACLE, "search": {"kind": "optuna"}}, "needs a 'space'"),
            ({"routers": [{"name": "knn", "space": {"k": {"low": 1}}}]}, "routers[0].space.k"),
        ],
    )
    def test_refuses(self, doc: dict, needle: str) -> None:
        """Each mistake is one line naming the key (and what is allowed)."""
        with pytest.raises(SpecError) as e:
            parse(doc, source="s.toml")
        assert needle in str(e.value) and "s.toml" in str(e.value) and "\n" not in str(e.value)

    def test_describe_fields_lists_every_key(self) -> None:
        """The field reference names every section and key."""
        text = describe_fields()
        for key in ("[data]", "families", "validation_fraction", "bootstrap", "[[routers]]"):
            assert key in text


class TestLoadAndCli:
    def test_bad_toml(self, tmp_path: Path) -> None:
        """A file that is not TOML is one line naming the file."""
        p = tmp_path / "x.toml"
        p.write_text("[data\n")
        with pytest.raises(SpecError, match=r"x\.toml: not valid TOML"):
            load(str(p))

    def test_validate_prints_plan(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """validate prints the cells and computes nothing (no output folder appears)."""
        p = tmp_path / "s.toml"
        p.write_text(
            '[data]\nsynthetic_n = 2000\nfamilies = ["mmlu", "hellaswag"]\n'
            '[split]\nkind = "seeded"\nseeds = [1, 2]\n'
            '[[routers]]\nname = "knn"\ngrid = { k = [5, 10] }\n[output]\nurl = "'
            + str(tmp_path / "out")
            + '"\n'
        )
        assert main(["validate", str(p)]) == 0
        out = capsys.readouterr().out
        assert "cells: 8 (knn 4, zero 2, frontier 2)" in out and "seeded-1, seeded-2" in out
        assert not (tmp_path / "out").exists()

    def test_cli_exit_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """run and validate exit 2 with one line for a misspelt key; nothing is written."""
        p = tmp_path / "s.toml"
        p.write_text('[[routers]]\nname = "oracle"\n[output]\nurll = "x"\n')
        for verb in ("validate", "run"):
            assert (
                main([verb, str(p), *(["--out", str(tmp_path / "o")] if verb == "run" else [])])
                == 2
            )
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "unknown key 'output.urll'" in err and "'url'" in err
        assert not (tmp_path / "o").exists()
