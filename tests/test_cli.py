"""The routerbench command: the default job, data verbs, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from routerbench.cluster.cli import main
from routerbench.engine import io, synth
from routerbench.engine.data import PAPER_FAMILIES
from routerbench.sweeps import schema
from routerbench.sweeps.plot import _safe
from routerbench.sweeps.run import run as run_spec
from routerbench.sweeps.runs import read_run


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def small_data():
    return synth.generate(12000, seed=1)  # every paper family has >= 10 train prompts (knn k = 10)


@pytest.fixture
def long_csv(tmp_path: Path, small_data) -> Path:
    p = tmp_path / "long.csv"
    io.save(small_data, str(p.with_suffix(".parquet")), format="long")
    pd.read_parquet(p.with_suffix(".parquet")).to_csv(p, index=False)
    return p


class TestRun:
    def test_default_job_on_small_data(self, tmp_path: Path, small_data, capsys) -> None:
        """run writes points, curves, one plot per family and a manifest, and prints the table."""
        data_url = str(tmp_path / "d.parquet")
        io.save(small_data, data_url)
        rc, out, _ = run(
            [
                "run",
                "--data",
                data_url,
                "--out",
                str(tmp_path / "runs"),
                "--run-id",
                "r1",
                "--quiet",
            ],
            capsys,
        )
        assert rc == 0
        run_dir = tmp_path / "runs" / "r1"
        points = pd.read_parquet(run_dir / "points.parquet")
        curves = pd.read_parquet(run_dir / "curves.parquet")
        fams = [f for f in small_data.family_names() if f in PAPER_FAMILIES]
        assert len(fams) == 7
        assert set(points["family"]) == set(fams)
        assert {"single", "oracle", "zero", "random"} <= set(points["router"])
        provenance = ["run_id", "spec_hash", "data_fingerprint"]
        assert list(points.columns) == [*schema.POINTS, *provenance]
        assert list(curves.columns) == [*schema.CURVES, *provenance]
        assert len(points[points["router"] == "single"]) == len(fams) * small_data.n_models
        for fam in fams:
            png = run_dir / "plots" / f"{fam}-upstream.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["synthetic"] is True and manifest["data_fingerprint"]
        assert "SYNTHETIC" in out and "oracle" in out
        # No router beats the oracle's quality on any family (a cascade may tie it).
        oracle = curves[curves["router"] == "oracle"].set_index("family")["max_quality"]
        best = curves.groupby("family")["max_quality"].max()
        assert (best <= oracle.loc[best.index] + 1e-12).all()

    def test_same_seed_same_numbers(self, tmp_path: Path, small_data, capsys) -> None:
        """Two runs with the same inputs give identical points."""
        data_url = str(tmp_path / "d.parquet")
        io.save(small_data, data_url)
        for rid in ("a", "b"):
            run(
                [
                    "run",
                    "--data",
                    data_url,
                    "--out",
                    str(tmp_path),
                    "--run-id",
                    rid,
                    "--quiet",
                    "--no-plots",
                ],
                capsys,
            )
        a = pd.read_parquet(tmp_path / "a" / "points.parquet").drop(columns=["run_id", "seconds"])
        b = pd.read_parquet(tmp_path / "b" / "points.parquet").drop(columns=["run_id", "seconds"])
        pd.testing.assert_frame_equal(a, b)

    def test_unknown_family(self, tmp_path: Path, long_csv: Path, capsys) -> None:
        """An unknown family in a spec is one line naming the known ones; nothing is written."""
        spec = tmp_path / "s.toml"
        spec.write_text('[data]\nfamilies = ["mmlux"]\n[[routers]]\nname = "oracle"\n')
        rc, _, err = run(
            ["run", str(spec), "--data", str(long_csv), "--out", str(tmp_path / "o")], capsys
        )
        assert rc == 2 and "family 'mmlux'" in err and "'mmlu'" in err
        assert not (tmp_path / "o").exists()


class TestFeaturesAndWorkers:
    SPEC = '[data]\nfamilies = ["mbpp", "winogrande"]\n[[routers]]\nname = "linear"\n'

    def _files(self, tmp_path: Path, small_data, rows: int | None = None) -> tuple[str, str, str]:
        data_url = str(tmp_path / "d.parquet")
        io.save(small_data, data_url)
        rng = np.random.default_rng(0)
        n = small_data.n_prompts if rows is None else rows
        vectors = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"v{j}" for j in range(6)])
        feats = vectors.assign(prompt_id=small_data.prompt_ids[:n])
        url = str(tmp_path / f"f{n}.csv")
        feats.to_csv(url, index=False)
        spec = tmp_path / "s.toml"
        spec.write_text(self.SPEC + "params = { per_model = true }\n")
        return data_url, url, str(spec)

    def test_features_and_workers(self, tmp_path: Path, small_data, capsys) -> None:
        """--features gives another run (id, manifest) than the data's own features; per-model
        fits on 2 workers give the same numbers as on 1."""
        data_url, feats, spec = self._files(tmp_path, small_data)
        base = ["run", spec, "--data", data_url, "--out", str(tmp_path / "o"), "--no-plots"]
        runs = {}
        for name, extra in {
            "own": ["--workers", "1"],
            "one": ["--features", feats, "--workers", "1"],
            "two": ["--features", feats, "--workers", "2", "--run-id", "two"],
        }.items():
            rc, _, err = run([*base, "--quiet", *extra], capsys)
            assert rc == 0, err
            runs[name] = max((tmp_path / "o").iterdir(), key=lambda p: p.stat().st_mtime)
        assert len({p.name for p in runs.values()}) == 3  # own features: another run id
        manifest = json.loads((runs["two"] / "manifest.json").read_text())
        assert manifest["features_source"] == feats and manifest["features"].startswith("features:")
        assert set(manifest["phases"]) == {"load", "evaluate", "write", "fits"}
        pts = {
            k: pd.read_parquet(p / "points.parquet").drop(columns=["run_id", "seconds"])
            for k, p in runs.items()
        }
        pd.testing.assert_frame_equal(pts["one"], pts["two"])
        assert not pts["one"]["quality_mean"].equals(pts["own"]["quality_mean"])

    def test_prompts_without_vectors(self, tmp_path: Path, small_data, capsys) -> None:
        """Features missing for some prompts: one line with the count, exit 2, nothing written."""
        data_url, feats, spec = self._files(tmp_path, small_data, rows=100)
        out = tmp_path / "o"
        rc, _, err = run(
            ["run", spec, "--data", data_url, "--features", feats, "--out", str(out)], capsys
        )
        missing = f"{small_data.n_prompts - 100:,} of {small_data.n_prompts:,} prompts"
        assert rc == 2 and missing in err and feats in err and len(err.splitlines()) == 1
        assert not out.exists() or not any(out.iterdir())

    def test_bad_workers(self, capsys) -> None:
        """--workers below 1 is refused by the parser in one line, exit 2."""
        with pytest.raises(SystemExit) as e:
            main(["run", "--workers", "0"])
        assert (
            e.value.code == 2 and "--workers: expected an integer >= 1" in capsys.readouterr().err
        )

    def test_empty_features(self, tmp_path: Path, capsys) -> None:
        """An empty --features is one line, exit 2, nothing written."""
        rc, _, err = run(["run", "--features", " ", "--out", str(tmp_path / "o")], capsys)
        assert rc == 2 and "features (--features) is empty" in err and not (tmp_path / "o").exists()


def _bad_files(tmp: Path, data) -> dict[str, tuple[Path, str]]:
    """Malformed inputs, each with the fragment its error must contain."""
    long = pd.read_parquet(_long_parquet(tmp, data))
    cases: dict[str, tuple[Path, str]] = {}

    def csv(name: str, df: pd.DataFrame, needle: str) -> None:
        p = tmp / f"{name}.csv"
        df.to_csv(p, index=False)
        cases[name] = (p, needle)

    csv("missing_column", long.drop(columns=["cost"]), "cost")
    csv("wrong_dtype", long.assign(quality="high"), "quality")
    csv("negative_cost", long.assign(cost=-long["cost"]), "cost")
    nan_cost = long.copy()
    nan_cost.loc[3, "cost"] = np.nan
    csv("nan_cost", nan_cost, "cost")
    csv("quality_range", long.assign(quality=long["quality"] + 1.5), "quality")
    wide = io.to_upstream_wide_frame(data)
    pk = tmp / "wide.pkl"
    pk.write_bytes(pickle.dumps(wide, protocol=4))
    trunc = tmp / "truncated.pkl"
    trunc.write_bytes(pk.read_bytes()[: len(pk.read_bytes()) // 2])
    cases["truncated"] = (trunc, "truncated.pkl")
    evil = tmp / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Evil(str(tmp / "pwned")), protocol=4))
    cases["evil_pickle"] = (evil, "refusing")
    cases["missing_file"] = (tmp / "nope.parquet", "nope.parquet")
    return cases


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _long_parquet(tmp: Path, data) -> Path:
    p = tmp / "good_long.parquet"
    io.save(data, str(p), format="long")
    return p


class TestBadInput:
    CASES = (
        "missing_column",
        "wrong_dtype",
        "negative_cost",
        "nan_cost",
        "quality_range",
        "truncated",
        "evil_pickle",
        "missing_file",
    )

    @pytest.mark.parametrize("case", CASES)
    def test_one_line_exit_2_nothing_written(
        self, case: str, tmp_path: Path, small_data, capsys
    ) -> None:
        """Each malformed input: exit 2, one line naming what was wrong, no output written."""
        path, needle = _bad_files(tmp_path, small_data)[case]
        out_dir = tmp_path / "out"
        for argv in (
            ["run", "--data", str(path), "--out", str(out_dir), "--quiet"],
            ["data", "convert", str(path), str(out_dir / "x.parquet")],
            ["data", "info", str(path)],
        ):
            rc, _, err = run(argv, capsys)
            lines = err.strip().splitlines()
            assert rc == 2, (argv, err)
            assert len(lines) == 1 and lines[0].startswith("routerbench: error:"), err
            assert needle in lines[0] and "Traceback" not in err
            assert not out_dir.exists()
        assert not (tmp_path / "pwned").exists()

    def test_unknown_model_in_router(self, capsys) -> None:
        """An unknown model name in a router is one line with a suggestion."""
        from routerbench.engine.errors import DataError
        from routerbench.routers.base import create

        with pytest.raises(DataError, match="did you mean 'gpt-4-1106-preview'"):
            create("single", model="gpt-4-1106").fit(synth.generate(300, seed=0))

    def test_console_script_no_traceback(self, tmp_path: Path) -> None:
        """The installed console script prints one line and exits 2 for a missing file."""
        exe = Path(sys.executable).parent / "routerbench"
        proc = subprocess.run(
            [str(exe), "data", "info", str(tmp_path / "missing.csv")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "missing.csv" in proc.stderr


class TestDataVerbs:
    def test_synth_info_convert_round_trip(self, tmp_path: Path, capsys) -> None:
        """synth writes the upstream pickle; info reads it; convert to Parquet is lossless."""
        pk = tmp_path / "s.pkl"
        rc, _, _ = run(
            [
                "data",
                "synth",
                "--out",
                str(pk),
                "--n",
                "800",
                "--seed",
                "2",
                "--format",
                "upstream-pickle",
            ],
            capsys,
        )
        assert rc == 0
        rc, out, _ = run(["data", "info", str(pk)], capsys)
        assert rc == 0 and "800 prompts x 11 models" in out and "gpt-4-1106-preview" in out
        rc, _, _ = run(["data", "convert", str(pk), str(tmp_path / "s.parquet")], capsys)
        assert rc == 0
        a, b = io.load(str(pk)), io.load(str(tmp_path / "s.parquet"))
        assert a.models == b.models and (a.prompt_ids == b.prompt_ids).all()
        np.testing.assert_array_equal(a.quality, b.quality)
        np.testing.assert_array_equal(a.cost, b.cost)
        ref = synth.generate(800, seed=2)
        np.testing.assert_array_equal(a.quality, ref.quality)


class TestReportAndPlot:
    def test_report_formats_and_plot(self, tmp_path: Path, small_data, capsys) -> None:
        """report prints the run in three formats with intervals; plot writes one PNG per family."""
        data_url = str(tmp_path / "d.parquet")
        io.save(small_data, data_url)
        spec = tmp_path / "s.toml"
        spec.write_text(
            '[data]\nfamilies = ["mmlu", "hellaswag"]\n[split]\nkind = "seeded"\nseeds = [1, 2]\n'
            '[[routers]]\nname = "oracle"\n[[routers]]\nname = "random"\n'
            "[metrics]\nbootstrap = 50\n"
        )
        argv = ["run", str(spec), "--data", data_url, "--out", str(tmp_path), "--run-id", "r"]
        assert run([*argv, "--quiet", "--no-plots"], capsys)[0] == 0
        rc, out, _ = run(["report", str(tmp_path / "r")], capsys)
        assert rc == 0 and "Across splits" in out and "seeded-2" in out and "[" in out
        rc, out, _ = run(["report", str(tmp_path / "r"), "--format", "json"], capsys)
        recs = [r for r in json.loads(out)["rows"] if r["router"] in ("oracle", "random")]
        assert rc == 0 and len(recs) == 2 * 2 * 2
        assert all(r["aiq_lo"] <= r["aiq_hi"] for r in recs)
        rc, out, _ = run(["report", str(tmp_path / "r"), "--format", "markdown"], capsys)
        assert rc == 0 and out.count("| mmlu |") == 4
        rc, out, _ = run(["plot", str(tmp_path / "r")], capsys)
        pngs = sorted((tmp_path / "r" / "plots").glob("*.png"))
        assert rc == 0 and len(pngs) == 4 and pngs[0].read_bytes()[:4] == b"\x89PNG"

    def test_report_names_the_runs_confidence(self, tmp_path: Path, capsys) -> None:
        """A run at 90% confidence: report, --compare and --pairs say 90%, never 95%."""
        spec = tmp_path / "s.toml"
        spec.write_text(
            '[data]\nsynthetic_n = 2000\nfamilies = ["mmlu"]\n'
            '[[routers]]\nname = "knn"\ngrid = { k = [3, 7] }\n'
            "[metrics]\nbootstrap = 30\nconfidence = 0.9\n"
        )
        argv = ["run", str(spec), "--out", str(tmp_path), "--run-id", "r", "--quiet"]
        assert run([*argv, "--no-plots"], capsys)[0] == 0
        for extra in ([], ["--format", "markdown"], ["--compare", "knn(k=3)", "knn(k=7)"]):
            rc, out, _ = run(["report", str(tmp_path / "r"), *extra], capsys)
            assert rc == 0 and "90% CI]" in out and "95%" not in out, extra
        rc, out, _ = run(["report", str(tmp_path / "r"), "--pairs"], capsys)
        assert rc == 0 and "[90% CI]" in out and "95%" not in out

    def test_report_missing_run(self, tmp_path: Path, capsys) -> None:
        """report on a folder that is not a run is one line, exit 2."""
        rc, _, err = run(["report", str(tmp_path)], capsys)
        assert rc == 2 and "not a completed run" in err and err.count("\n") == 1


class TestRunOutcome:
    SPEC = (
        '[data]\nsynthetic_n = 3000\nfamilies = ["mmlu", "hellaswag"]\n'
        '[[routers]]\nname = "oracle"\n[metrics]\nbootstrap = 10\n'
    )

    def test_failed_cells_exit_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A run whose cells fail writes what it has (tables, manifest) and exits 1 with one
        summary line naming the first error."""
        from routerbench.routers import reference

        def broken(self: object, train: object) -> None:
            raise ValueError("broken on purpose")

        monkeypatch.setattr(reference.Oracle, "fit", broken)
        spec = tmp_path / "s.toml"
        spec.write_text(self.SPEC)
        argv = ["run", str(spec), "--out", str(tmp_path / "o"), "--quiet", "--workers", "1"]
        rc, _, err = run(argv, capsys)  # one process: the patch is not in worker processes
        lines = err.strip().splitlines()
        assert rc == 1 and len(lines) == 1 and "broken on purpose" in lines[0], err
        (run_dir,) = (tmp_path / "o").iterdir()
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["failed_rows"] == 2

    def test_plot_failure_is_a_warning(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A plot that fails is one warning line; results and manifest are written, exit 0."""
        from routerbench.sweeps import plot

        def broken(*a: object, **k: object) -> bytes:
            raise ValueError("'yerr' must not contain negative values")

        monkeypatch.setattr(plot, "plot_family", broken)
        spec = tmp_path / "s.toml"
        spec.write_text(self.SPEC)
        rc, _, err = run(["run", str(spec), "--out", str(tmp_path / "o")], capsys)
        warnings = [ln for ln in err.splitlines() if ln.startswith("routerbench: warning")]
        assert rc == 0 and len(warnings) == 2 and all("yerr" in w for w in warnings)
        (run_dir,) = (tmp_path / "o").iterdir()
        assert (run_dir / "manifest.json").exists() and not (run_dir / "plots").exists()

    def test_one_run_per_folder(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """While one run holds a run folder, a second run into it is refused in one line."""
        import fcntl

        from routerbench.sweeps import spec as specmod
        from routerbench.sweeps.execute import load_data
        from routerbench.sweeps.resume import default_run_id

        path = tmp_path / "s.toml"
        path.write_text(self.SPEC)
        s = specmod.load(str(path))
        run_dir = tmp_path / "o" / default_run_id(s.hash, load_data(s).fingerprint())
        run_dir.mkdir(parents=True)
        with open(run_dir / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            rc, _, err = run(["run", str(path), "--out", str(tmp_path / "o")], capsys)
        assert rc == 2 and "another routerbench run" in err
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]
        assert run(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"], capsys)[0] == 0


class TestRunFromPython:
    SPEC = TestRunOutcome.SPEC

    def test_returns_what_it_wrote_and_prints_nothing(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """run() writes the run folder and returns its URL, its manifest and its results,
        printing nothing without a progress callback; called again it finds the run complete,
        evaluates nothing and says so (evaluated False), reporting only its data and plan."""
        import routerbench.sweeps.execute as execute

        spec = tmp_path / "s.toml"
        spec.write_text(self.SPEC)
        first = run_spec(str(spec), out=str(tmp_path / "o"), plots=False)
        assert capsys.readouterr() == ("", "")
        (folder,) = (tmp_path / "o").iterdir()
        assert first.url == str(folder) and first.evaluated and first.failure() is None
        on_disk = read_run(first.url)
        assert on_disk.manifest == json.loads((folder / "manifest.json").read_text())
        assert on_disk.manifest == first.manifest
        np.testing.assert_array_equal(on_disk.curves["aiq"], first.results.curves["aiq"])

        def no_evaluation(*args: object, **kwargs: object) -> None:
            raise AssertionError("a cell was evaluated in a complete run")

        monkeypatch.setattr(execute, "evaluate_cell", no_evaluation)
        lines: list[str] = []
        again = run_spec(str(spec), out=str(tmp_path / "o"), plots=False, progress=lines.append)
        assert not again.evaluated and again.url == first.url
        assert again.manifest == first.manifest and again.failure() is None
        assert [ln.split(":")[0] for ln in lines] == ["data", "plan"]

    def test_failed_rows_are_a_failure_not_an_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Failed cells are rows of a complete run: run() returns, and failure() counts them,
        names points.parquet and quotes the first error."""
        from routerbench.routers import reference

        def broken(self: object, train: object) -> None:
            raise ValueError("broken on purpose")

        monkeypatch.setattr(reference.Oracle, "fit", broken)
        spec = tmp_path / "s.toml"
        spec.write_text(self.SPEC)
        outcome = run_spec(str(spec), out=str(tmp_path / "o"), plots=False)
        n = len(outcome.results.points)
        assert outcome.manifest["failed_rows"] == 2 and n >= 2
        assert outcome.failure() == (
            f"2 of {n} result rows failed (see the 'error' column of "
            f"{outcome.url}/points.parquet); first error: "
            + outcome.results.points["error"][outcome.results.points["status"] == "failed"].iloc[0]
        )
        assert "broken on purpose" in (outcome.failure() or "")


class TestOddNames:
    def test_tex_and_long_family_names_plot(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Families named like TeX or 300 characters long get their plots, under slug-and-hash
        file names, with no warning."""
        import dataclasses

        d = synth.generate(3000, seed=2)
        fams = d.families.copy()
        names = {"mmlu": "$\\frac{$", "hellaswag": "h" * 300}
        for old, new in names.items():
            fams[fams == old] = new
        d = dataclasses.replace(d, families=fams)
        url = str(tmp_path / "d.parquet")
        io.save(d, url)
        spec = tmp_path / "s.toml"
        spec.write_text(
            f"[data]\nfamilies = {json.dumps(list(names.values()))}\n"
            '[[routers]]\nname = "oracle"\n[metrics]\nbootstrap = 10\n'
        )
        rc, _, err = run(["run", str(spec), "--data", url, "--out", str(tmp_path / "o")], capsys)
        assert rc == 0 and "warning" not in err.replace(str(tmp_path), ""), err
        (run_dir,) = (tmp_path / "o").iterdir()
        pngs = sorted(p.name for p in (run_dir / "plots").iterdir())
        assert pngs == sorted(f"{_safe(n)}-upstream.png" for n in names.values()), pngs
        assert all(len(p) <= 82 for p in pngs) and any(p.startswith("__frac__-") for p in pngs)


SMALL_SPEC = (
    '[data]\nsynthetic_n = 3000\nfamilies = ["mmlu", "hellaswag"]\n'
    '[[routers]]\nname = "oracle"\n[[routers]]\nname = "random"\n[metrics]\nbootstrap = 10\n'
)


def _small_run(tmp_path: Path, capsys, run_id: str, *extra: str) -> tuple[int, Path, str]:
    """Run SMALL_SPEC into tmp_path/o/<run_id>; rc, the run folder, stderr."""
    spec = tmp_path / "s.toml"
    spec.write_text(SMALL_SPEC)
    argv = ["run", str(spec), "--out", str(tmp_path / "o"), "--run-id", run_id, *extra]
    rc, _, err = run(argv, capsys)
    return rc, tmp_path / "o" / run_id, err


class TestPlotNames:
    def test_run_and_plot_write_the_same_files(self, tmp_path: Path, capsys) -> None:
        """run and plot both write <family>-<split>.png for every family and split."""
        spec = tmp_path / "s.toml"
        spec.write_text(
            SMALL_SPEC.replace(
                "[[routers]]", '[split]\nkind = "seeded"\nseeds = [1, 2]\n[[routers]]', 1
            )
        )
        argv = ["run", str(spec), "--out", str(tmp_path), "--run-id", "r", "--quiet"]
        assert run(argv, capsys)[0] == 0
        expected = sorted(f"{f}-seeded-{s}.png" for f in ("mmlu", "hellaswag") for s in (1, 2))
        assert sorted(p.name for p in (tmp_path / "r" / "plots").iterdir()) == expected
        rc, out, _ = run(["plot", str(tmp_path / "r"), "--out", str(tmp_path / "again")], capsys)
        assert rc == 0 and sorted(p.name for p in (tmp_path / "again").iterdir()) == expected
        assert sorted(Path(u).name for u in out.split()) == expected


class TestRuns:
    def _store(self, tmp_path: Path, capsys, monkeypatch) -> Path:
        """A runs folder: 'ok' complete, 'bad' complete with a failed cell, 'part' incomplete
        (manifest and one cell object deleted), and 'notes', not a run."""
        from routerbench.routers import reference

        assert _small_run(tmp_path, capsys, "ok", "--quiet", "--no-plots")[0] == 0
        assert _small_run(tmp_path, capsys, "part", "--quiet", "--no-plots")[0] == 0
        (tmp_path / "o" / "part" / "manifest.json").unlink()
        sorted((tmp_path / "o" / "part" / "cells").iterdir())[0].unlink()
        with monkeypatch.context() as m:
            m.setattr(reference.Oracle, "fit", lambda self, train: 1 / 0)
            assert (
                _small_run(tmp_path, capsys, "bad", "--quiet", "--no-plots", "--workers", "1")[0]
                == 1
            )
        (tmp_path / "o" / "notes").mkdir()
        (tmp_path / "o" / "notes" / "todo.txt").write_text("x")
        return tmp_path / "o"

    def test_lists_complete_failed_and_incomplete(
        self, tmp_path: Path, capsys, monkeypatch
    ) -> None:
        """One line per run folder with its status, failed cells and created time."""
        base = self._store(tmp_path, capsys, monkeypatch)
        rc, out, _ = run(["runs", str(base)], capsys)
        lines = out.splitlines()
        assert rc == 0 and lines[0].split() == [
            "id",
            "spec",
            "data",
            "status",
            "failed",
            "cells",
            "created",
        ]
        rows = {ln.split()[0]: ln for ln in lines[1:]}
        assert sorted(rows) == ["bad", "ok", "part"]
        points = pd.read_parquet(base / "bad" / "points.parquet")
        failed = points[points["status"] == "failed"]
        created = json.loads((base / "ok" / "manifest.json").read_text())["created"]
        assert (
            f"complete with {len(failed)} failed rows  {failed['cell_id'].nunique()}  "
            in rows["bad"]
        )
        assert " complete " in rows["ok"] and rows["ok"].endswith(created)
        assert str(tmp_path / "s.toml") in rows["ok"] and "synthetic(n=3000, seed=0)" in rows["ok"]
        n_cells = len(list((base / "part" / "cells").glob("*.npz")))
        assert f"incomplete ({n_cells} stored cells)" in rows["part"]

    def test_any_fsspec_url(self, tmp_path: Path, capsys) -> None:
        """A runs folder on another filesystem (memory://) is listed the same way."""
        import fsspec

        assert _small_run(tmp_path, capsys, "ok", "--quiet", "--no-plots")[0] == 0
        fs = fsspec.filesystem("memory")
        fs.put(str(tmp_path / "o" / "ok"), "/runs-test/ok", recursive=True)
        rc, out, _ = run(["runs", "memory://runs-test"], capsys)
        assert rc == 0 and len(out.splitlines()) == 2 and out.splitlines()[1].startswith("ok ")
        fs.rm("/runs-test", recursive=True)

    @pytest.mark.parametrize("where", ["empty", "missing"])
    def test_no_runs_is_one_line(self, where: str, tmp_path: Path, capsys) -> None:
        """An empty or nonexistent folder: one error line, exit 2."""
        url = tmp_path / where
        if where == "empty":
            url.mkdir()
        rc, out, err = run(["runs", str(url)], capsys)
        assert rc == 2 and out == "" and err.count("\n") == 1 and str(url) in err


class TestRouters:
    def test_one_line_per_router(self, capsys) -> None:
        """Every registered router, sorted, with each hyperparameter's type and default."""
        import dataclasses

        from routerbench.routers.base import REGISTRY, load_all

        load_all()
        rc, out, _ = run(["routers"], capsys)
        lines = out.splitlines()
        assert rc == 0 and [ln.split()[0] for ln in lines] == sorted(REGISTRY)
        for line in lines:
            for f in dataclasses.fields(REGISTRY[line.split()[0]]):
                default = f.default if f.default is not dataclasses.MISSING else None
                shown = repr(list(default)) if isinstance(default, tuple) else repr(default)
                assert f"{f.name}: " in line and (default is None or f" = {shown}" in line), line
        knn = next(ln for ln in lines if ln.startswith("knn "))
        assert (
            "k: int = 10 (an integer >= 1)" in knn and "metric: str = 'cosine' ('cosine' or" in knn
        )
        assert "order: 'price' | 'cost' = 'price'" in out and "eps: float = 0.0 (in [0, 1])" in out

    def test_knob_is_the_fitted_routers(self, capsys) -> None:
        """Each router's listed knob is the knob_name of the router fitted on small data."""
        from routerbench.routers.base import REGISTRY, create

        rc, out, _ = run(["routers"], capsys)
        assert rc == 0
        knobs = {ln.split()[0]: ln.split("  ")[1].removeprefix("knob ") for ln in out.splitlines()}
        data = synth.generate(600, seed=0)
        for name in REGISTRY:
            params = {"model": data.models[0]} if name == "single" else {}
            fitted = create(name, **params).fit(data).knob_name or "none"
            assert fitted in knobs[name].split(" | "), (name, knobs[name])
        assert knobs["zero"] == "target_cost | model"


class TestProgress:
    class Clock:
        def __init__(self) -> None:
            self.t = 0.0

        def __call__(self) -> float:
            return self.t

    def test_plain_lines_off_terminal(self) -> None:
        """Off a terminal: a line at most every 10 s and one at the end, no escape codes."""
        import io as stdio

        from routerbench.engine.progress import progress

        log, clock = stdio.StringIO(), self.Clock()
        with progress(19, "cell", initial=15, file=log, clock=clock) as bar:
            for t in (4.0, 11.0, 15.0, 22.0):
                clock.t = t
                bar.update(1)
        assert log.getvalue().splitlines() == [
            "cells 17/19 (15 reused) 11 s",
            "cells 19/19 (15 reused) 22 s",
            "cells 19/19 (15 reused) 22 s",
        ]
        assert "\x1b" not in log.getvalue() and "\r" not in log.getvalue()

    def test_bar_on_terminal_and_quiet(self) -> None:
        """On a terminal a tqdm bar (carriage returns) counts from initial; quiet: nothing."""
        import io as stdio

        from routerbench.engine.progress import progress

        class Tty(stdio.StringIO):
            def isatty(self) -> bool:
                return True

        tty, log = Tty(), stdio.StringIO()
        with progress(5, "trial", initial=2, file=tty) as bar:
            bar.update(3)
        with progress(5, "trial", quiet=True, file=log) as bar:
            bar.update(5)
        assert "\r" in tty.getvalue() and "5/5" in tty.getvalue() and "trial" in tty.getvalue()
        assert log.getvalue() == ""

    def test_resumed_run_says_reused(self, tmp_path: Path, capsys) -> None:
        """A resumed run says how many stored cells it reused; its count ends at the total."""
        rc, folder, _ = _small_run(tmp_path, capsys, "r", "--no-plots")
        total = len(list((folder / "cells").glob("*.npz")))
        (folder / "manifest.json").unlink()
        sorted((folder / "cells").iterdir())[-1].unlink()
        rc, _, err = _small_run(tmp_path, capsys, "r", "--no-plots")
        reused = total - 1
        assert rc == 0 and f"reused {reused} stored cells" in err.splitlines()
        assert f"cells {total}/{total} ({reused} reused)" in err and "\x1b" not in err


class TestDataFormats:
    MAGIC: ClassVar[dict[str, bytes]] = {"parquet": b"PAR1", "pickle": b"\x80", "csv": b"prompt_id"}

    @pytest.mark.parametrize(
        ("name", "fmt", "magic"),
        [
            ("s.parquet", None, "parquet"),
            ("s.pq", None, "parquet"),
            ("s.CSV", None, "csv"),
            ("s.pkl", None, "pickle"),
            ("s.csv", "parquet", "parquet"),
            ("s.parquet", "upstream-pickle", "pickle"),
            ("s.parquet", "upstream-wide", "pickle"),  # the name data convert uses too
            ("s.parquet", "upstream-long", "pickle"),
        ],
    )
    def test_synth_format_from_extension(self, name, fmt, magic, tmp_path: Path, capsys) -> None:
        """data synth writes the format of the extension unless --format says otherwise."""
        out = tmp_path / name
        argv = ["data", "synth", "--out", str(out), "--n", "300"]
        rc, _, err = run([*argv, *(["--format", fmt] if fmt else [])], capsys)
        assert rc == 0, err
        assert out.read_bytes().startswith(self.MAGIC[magic])

    def test_convert_pickle_to_csv(self, tmp_path: Path, capsys) -> None:
        """data convert s.pkl long.csv writes a long CSV with the same outcomes."""
        pk, csv = tmp_path / "s.pkl", tmp_path / "long.csv"
        io.save(synth.generate(300, seed=3), str(pk), format="upstream-wide")
        rc, out, _ = run(["data", "convert", str(pk), str(csv)], capsys)
        assert rc == 0 and "long" in out and csv.read_bytes().startswith(b"prompt_id")
        a, b = io.load(str(pk)), io.load(str(csv))
        np.testing.assert_array_equal(a.quality, b.quality)
        np.testing.assert_array_equal(a.cost, b.cost)

    @pytest.mark.parametrize("verb", ["synth", "convert"])
    def test_unknown_extension(self, verb: str, tmp_path: Path, capsys) -> None:
        """An extension that names no format, without --format: one line, exit 2, no file."""
        out = tmp_path / "s.txt"
        src = tmp_path / "in.parquet"
        io.save(synth.generate(300, seed=3), str(src))
        argv = {
            "synth": ["data", "synth", "--out", str(out)],
            "convert": ["data", "convert", str(src), str(out)],
        }
        rc, _, err = run(argv[verb], capsys)
        assert rc == 2 and err.count("\n") == 1 and "'.txt'" in err and "--format" in err
        assert not out.exists()


class TestDataInfo:
    def test_embedded_default_with_family_sizes(self, capsys) -> None:
        """data info without URL reads the embedded default and lists families by name."""
        from collections import Counter

        from routerbench.sweeps.spec import FIELDS

        rc, out, _ = run(["data", "info"], capsys)
        n = FIELDS["data"]["synthetic_n"][1]
        counts = Counter(synth.generate(n, seed=0).families.tolist())
        assert rc == 0 and f"{n} prompts x 11 models" in out and "[synthetic]" in out
        block = out.split(f"prompts per family ({len(counts)}):\n")[1].splitlines()
        assert [ln.split() for ln in block] == [[f, str(counts[f])] for f in sorted(counts)]

    def test_families_sorted_by_name(self, tmp_path: Path, capsys) -> None:
        """Families are listed by name, not in the file's order, each with its prompt count."""
        from routerbench.engine.data import RoutingData

        names = ["zeta", "alpha", "zeta", "mid", "zeta"]
        d = RoutingData(
            quality=np.ones((5, 1)),
            cost=np.ones((5, 1)),
            models=["m"],
            prompt_ids=[f"p{i}" for i in range(5)],
            eval_names=names,
        )
        url = str(tmp_path / "d.parquet")
        io.save(d, url)
        rc, out, _ = run(["data", "info", url], capsys)
        block = out.split("prompts per family (3):\n")[1].splitlines()
        assert rc == 0 and [ln.split() for ln in block] == [
            ["alpha", "1"],
            ["mid", "1"],
            ["zeta", "3"],
        ]
