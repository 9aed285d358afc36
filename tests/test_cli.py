"""The routerbench command: the default job, data verbs, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routerbench.cluster.cli import main
from routerbench.engine import io, synth
from routerbench.engine.data import PAPER_FAMILIES
from routerbench.sweeps import schema


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
            png = run_dir / "plots" / f"{fam}.png"
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
        assert rc == 2 and "--features is empty" in err and not (tmp_path / "o").exists()


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
        from routerbench.engine.data import DataError
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
        recs = json.loads(out)
        assert rc == 0 and len(recs) == 2 * 2 * 2
        assert all(r["aiq_lo"] <= r["aiq_hi"] for r in recs)
        rc, out, _ = run(["report", str(tmp_path / "r"), "--format", "markdown"], capsys)
        assert rc == 0 and out.count("| mmlu |") == 4
        rc, out, _ = run(["plot", str(tmp_path / "r")], capsys)
        pngs = sorted((tmp_path / "r" / "plots").glob("*.png"))
        assert rc == 0 and len(pngs) == 4 and pngs[0].read_bytes()[:4] == b"\x89PNG"

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
        rc, _, err = run(["run", str(spec), "--out", str(tmp_path / "o"), "--quiet"], capsys)
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

        from routerbench.cluster.resume import default_run_id
        from routerbench.sweeps import spec as specmod
        from routerbench.sweeps.execute import load_data

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
        assert len(pngs) == 2 and all(len(p) <= 73 and p.endswith(".png") for p in pngs), pngs
        assert any(p.startswith("__frac__-") for p in pngs)
