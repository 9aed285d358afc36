"""Identity of results: the data fingerprint, the run id, and stored state checked before use."""

from __future__ import annotations

import dataclasses
import io as pyio
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from routerbench.cluster.cli import main
from routerbench.engine import io, synth
from routerbench.engine.data import RoutingData
from routerbench.sweeps import resume, runs
from routerbench.sweeps.resume import default_run_id

SPEC = """
[data]
families = ["mmlu", "hellaswag"]
[split]
kind = "upstream"
[[routers]]
name = "single"
params = { model = "gpt-4-1106-preview" }
[[routers]]
name = "oracle"
[[routers]]
name = "knn"
params = { k = 5 }
[metrics]
bootstrap = 20
"""


@pytest.fixture(scope="module")
def base() -> RoutingData:
    d = synth.generate(1200, seed=4)
    rng = np.random.default_rng(0)
    return d.with_features(rng.normal(size=(d.n_prompts, 3)), source="test-vectors")


def variants(d: RoutingData) -> dict[str, RoutingData]:
    """The data with exactly one component changed."""
    r = dataclasses.replace
    q = d.quality.copy()
    q[5, 2] = 1.0 - q[5, 2]
    c = d.cost.copy()
    c[7, 1] *= 1.5
    fams = d.families.copy()
    a, b = np.flatnonzero(fams == "mmlu"), np.flatnonzero(fams == "hellaswag")
    fams[a], fams[b] = "hellaswag", "mmlu"  # two families' labels swapped
    evals = d.eval_names.copy()
    evals[3] = evals[3] + "-x"
    prompts = d.prompts.copy()
    prompts[9] = prompts[9] + " "
    order = list(range(d.n_models))[::-1]
    feats = d.features.copy()
    feats[[0, 1]] = feats[[1, 0]]  # two feature rows swapped
    pids = d.prompt_ids.copy()
    pids[0] = pids[0] + "'"
    return {
        "quality": r(d, quality=q),
        "cost": r(d, cost=c),
        "latency": r(d, latency=np.ones_like(d.cost)),
        "families": r(d, families=fams),
        "eval_names": r(d, eval_names=evals),
        "prompts": r(d, prompts=prompts),
        "no prompts": r(d, prompts=None),
        "model order": r(
            d,
            quality=d.quality[:, order],
            cost=d.cost[:, order],
            models=tuple(d.models[i] for i in order),
        ),
        "model names": r(d, models=(*d.models[:-1], d.models[-1] + "-v2")),
        "prompt ids": r(d, prompt_ids=pids),
        "features rows": r(d, features=feats),
        "features value": r(d, features=d.features + 1e-12),
        "no features": r(d, features=None),
        "features source": d.with_features(d.features, source="other-vectors"),
    }


class TestFingerprint:
    def test_every_component_changes_it(self, base: RoutingData) -> None:
        """Changing any one component alone gives a new fingerprint, and all differ pairwise."""
        prints = {k: v.fingerprint() for k, v in variants(base).items()}
        assert base.fingerprint() not in prints.values()
        assert len(set(prints.values())) == len(prints)

    def test_same_content_same_fingerprint(self, base: RoutingData) -> None:
        """Equal content gives an equal fingerprint: rebuilt, taken whole, or read from another
        path; ``source`` and ``synthetic`` are labels, not content."""
        again = dataclasses.replace(base, source="elsewhere.parquet", synthetic=False)
        assert again.fingerprint() == base.fingerprint()
        assert base.take(np.arange(base.n_prompts)).fingerprint() == base.fingerprint()

    def test_subset_differs(self, base: RoutingData) -> None:
        """A subset of the prompts is other data."""
        assert base.take(np.arange(10)).fingerprint() != base.fingerprint()

    def test_survives_parquet(self, base: RoutingData, tmp_path: Path) -> None:
        """Our Parquet layout keeps every component the fingerprint covers."""
        url = str(tmp_path / "d.parquet")
        io.save(base, url)
        assert io.load(url).fingerprint() == base.fingerprint()

    def test_string_boundaries(self) -> None:
        """Moving a character between adjacent names changes it (strings are length-prefixed)."""

        def data(ids: list[str]) -> RoutingData:
            return RoutingData(
                quality=[[1.0], [0.0]], cost=[[1.0], [1.0]], models=["m"], prompt_ids=ids,
                eval_names=["e", "e"],
            )  # fmt: skip

        assert data(["ab", "c"]).fingerprint() != data(["a", "bc"]).fingerprint()


# ------------------------------------------------------------------------------- through CLI
def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def spec(tmp_path: Path) -> str:
    p = tmp_path / "spec.toml"
    p.write_text(SPEC)
    return str(p)


def run_dirs(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_dir())


class TestRunId:
    @pytest.mark.parametrize("component", ["prompts", "families", "features rows", "model order"])
    def test_new_data_new_run(
        self, base: RoutingData, component: str, spec: str, tmp_path: Path, capsys: Any
    ) -> None:
        """Rerunning into the same --out on data changed in one component evaluates a new run
        (never 'already complete' with the first data's numbers)."""
        out = tmp_path / "runs"
        for name, d in (("a", base), ("b", variants(base)[component])):
            url = str(tmp_path / f"{name}.parquet")
            io.save(d, url)
            rc, _, err = cli(["run", spec, "--data", url, "--out", str(out), "--no-plots"], capsys)
            assert rc == 0 and "already complete" not in err
        first, second = (runs.read_run(str(out / r)) for r in run_dirs(out))
        assert first.manifest["data_fingerprint"] != second.manifest["data_fingerprint"]
        sources = {first.manifest["data_source"], second.manifest["data_source"]}
        assert sources == {str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")}

    def test_executor_and_shards_keep_it(
        self, base: RoutingData, spec: str, tmp_path: Path, capsys: Any
    ) -> None:
        """The same spec and data with another executor or shard count is the same run."""
        url = str(tmp_path / "a.parquet")
        io.save(base, url)
        out = str(tmp_path / "runs")
        assert cli(["run", spec, "--data", url, "--out", out, "--no-plots"], capsys)[0] == 0
        argv = ["run", spec, "--data", url, "--out", out, "--executor", "ray", "--shards", "3"]
        rc, _, err = cli(argv, capsys)
        assert rc == 0 and "already complete" in err
        assert len(run_dirs(tmp_path / "runs")) == 1

    def test_components_of_the_id(self) -> None:
        """Spec hash, data fingerprint and each code version change the default run id."""
        v = {"numpy": "2", "routerbench-source": "abc"}
        ids = {
            default_run_id("s1", "d1", v),
            default_run_id("s2", "d1", v),
            default_run_id("s1", "d2", v),
            default_run_id("s1", "d1", {**v, "numpy": "3"}),
            default_run_id("s1", "d1", {**v, "routerbench-source": "abd"}),
        }
        assert len(ids) == 5


# ------------------------------------------------------------------------------ stored state
@pytest.fixture
def done(base: RoutingData, spec: str, tmp_path: Path, capsys: Any) -> Path:
    """A complete run folder."""
    url = str(tmp_path / "a.parquet")
    io.save(base, url)
    out = tmp_path / "runs"
    assert cli(["run", spec, "--data", url, "--out", str(out), "--no-plots"], capsys)[0] == 0
    return out / run_dirs(out)[0]


def edit_manifest(run: Path, **changes: Any) -> None:
    m = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**m, **changes}))


def refused(run: Path, capsys: Any, *names: str) -> str:
    """report on the run exits 2 with one line naming the file; returns that line."""
    rc, out, err = cli(["report", str(run)], capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and len(lines) == 1, (rc, out, err)
    assert all(n in lines[0] for n in names), lines[0]
    return lines[0]


class TestSourceHash:
    def test_dangling_link_left_out(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A link to a deleted source file (as a strict editable install leaves) is left out of
        the hash instead of failing it; the files that exist, linked or not, still count."""
        pkg = tmp_path / "rb_source_hash_pkg"
        (pkg / "sub").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "sub" / "a.toml").write_text("x = 1\n")
        (tmp_path / "b.py").write_text("B = 1\n")
        (pkg / "b.py").symlink_to(tmp_path / "b.py")  # a link with its file
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setattr(resume, "COMPUTING", (pkg.name,))
        monkeypatch.delitem(sys.modules, pkg.name, raising=False)

        def fresh() -> str:
            resume.source_hash.cache_clear()
            return resume.source_hash()

        try:
            clean = fresh()
            (pkg / "gone.py").symlink_to(tmp_path / "deleted.py")  # dangling
            assert fresh() == clean
            (tmp_path / "b.py").write_text("B = 2\n")  # through the link: a new code version
            assert fresh() != clean
        finally:
            sys.modules.pop(pkg.name, None)
            resume.source_hash.cache_clear()


class TestStoredState:
    def test_intact_run_reads(self, done: Path, capsys: Any) -> None:
        """An untouched run reads back, its tables equal to what was written."""
        run = runs.read_run(str(done))
        assert run.manifest["synthetic"] is True
        assert len(run.points) and (run.points["status"] == "ok").all()
        assert cli(["report", str(done)], capsys)[0] == 0

    @pytest.mark.parametrize(
        "changes",
        [{"synthetic": False}, {"data_fingerprint": "0" * 64}, {"spec_hash": "x"}],
        ids=["synthetic", "fingerprint", "spec_hash"],
    )
    def test_manifest_provenance_checked(self, done: Path, changes: dict, capsys: Any) -> None:
        """A manifest whose provenance differs from the tables' is refused, naming it."""
        edit_manifest(done, **changes)
        refused(done, capsys, "manifest.json", next(iter(changes)))

    def test_failed_rows_checked(self, done: Path, capsys: Any) -> None:
        """failed_rows must be the number of failed rows in points.parquet."""
        edit_manifest(done, failed_rows=3)
        refused(done, capsys, "failed_rows", "points.parquet")

    def test_rewritten_table_refused(self, done: Path, capsys: Any) -> None:
        """A table rewritten after the run (every quality +0.05) no longer matches its hash."""
        path = done / "curves.parquet"
        table = pq.read_table(path)
        df = table.to_pandas()
        df["max_quality"] += 0.05
        buf = pyio.BytesIO()
        pq.write_table(
            pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(
                table.schema.metadata
            ),
            buf,
        )
        path.write_bytes(buf.getvalue())
        refused(done, capsys, "curves.parquet", "sha256")

    def test_truncated_table_refused(self, done: Path, capsys: Any) -> None:
        """A truncated table is refused in one line naming it."""
        path = done / "points.parquet"
        path.write_bytes(path.read_bytes()[:100])
        refused(done, capsys, "points.parquet")

    def test_rerun_refuses_damaged_complete_run(
        self, done: Path, spec: str, tmp_path: Path, capsys: Any
    ) -> None:
        """Running the spec again does not serve a damaged run's numbers."""
        edit_manifest(done, synthetic=False)
        argv = ["run", spec, "--data", str(tmp_path / "a.parquet"), "--out", str(done.parent)]
        rc, _, err = cli(argv, capsys)
        assert rc == 2 and "manifest.json" in err

    def test_edited_cell_refused_on_resume(
        self, done: Path, spec: str, tmp_path: Path, capsys: Any
    ) -> None:
        """A cell object whose rows were rewritten (+0.05 quality) is refused when a resumed run
        would use it, naming the cell file."""
        (done / "manifest.json").unlink()
        cell = sorted((done / "cells").iterdir())[-1]
        with np.load(cell, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays["meta"].tobytes())
        for row in meta["rows"]:
            row["quality_mean"] += 0.05
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with open(cell, "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
        argv = ["run", spec, "--data", str(tmp_path / "a.parquet"), "--out", str(done.parent)]
        rc, _, err = cli([*argv, "--quiet"], capsys)
        assert rc == 2 and cell.name in err and "content_sha256" in err

    def test_manifest_lists_cells_and_tables(self, done: Path) -> None:
        """The manifest lists the sha256 of every stored cell object and table."""
        import hashlib

        m = json.loads((done / "manifest.json").read_text())
        cells = {
            p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in (done / "cells").iterdir()
        }
        assert m["cells"] == cells and len(cells) == 5  # 3 listed, zero and frontier added
        for name, digest in m["tables"].items():
            assert hashlib.sha256((done / name).read_bytes()).hexdigest() == digest
        assert set(pd.read_parquet(done / "points.parquet")["run_id"]) == {done.name}


class TestLeaderboardSkipsDamagedRuns:
    def test_damaged_run_named_rest_published(
        self, done: Path, spec: str, tmp_path: Path, capsys: Any
    ) -> None:
        """refresh leaves out a run whose table was truncated, names it, publishes the rest."""
        other = tmp_path / "spec2.toml"
        other.write_text(SPEC.replace("bootstrap = 20", "bootstrap = 10"))
        argv = ["run", str(other), "--data", str(tmp_path / "a.parquet"), "--out", str(done.parent)]
        assert cli([*argv, "--no-plots", "--quiet"], capsys)[0] == 0
        points = done / "points.parquet"
        points.write_bytes(points.read_bytes()[:-50])
        site = tmp_path / "site"
        rc, out, err = cli(
            ["leaderboard", "refresh", "--runs", str(done.parent), "--out", str(site)], capsys
        )
        assert rc == 0, err
        assert done.name in err and "points.parquet" in err
        version = Path(out.strip().splitlines()[-1])
        table = pd.read_parquet(version / "leaderboard.parquet")
        assert set(table["run_id"]) == set(run_dirs(done.parent)) - {done.name}


class TestRerunRules:
    def test_explicit_run_id_on_other_inputs_refused(
        self, done: Path, spec: str, base: RoutingData, tmp_path: Path, capsys: Any
    ) -> None:
        """--run-id naming a complete run made from other data is refused, not served."""
        other = tmp_path / "b.parquet"
        io.save(variants(base)["prompts"], str(other))
        argv = ["run", spec, "--data", str(other), "--out", str(done.parent)]
        rc, out, err = cli([*argv, "--run-id", done.name, "--no-plots"], capsys)
        assert rc == 2 and "data_fingerprint differs" in err and out == ""

    def test_bad_run_id_refused_before_computing(
        self, spec: str, tmp_path: Path, capsys: Any
    ) -> None:
        """A run id that is not one folder name is refused in one line; nothing is written."""
        for bad in ("..", "a/b", "x\0y", ""):
            argv = ["run", spec, "--out", str(tmp_path / "o"), "--run-id", bad]
            rc, _, err = cli(argv, capsys)
            assert rc == 2 and "run_id (--run-id)" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "o").exists()

    def test_failed_cells_evaluated_again(
        self, base: RoutingData, spec: str, tmp_path: Path, capsys: Any, monkeypatch: Any
    ) -> None:
        """A complete run with failed cells exits 1; running it again evaluates the failed
        cells (not 'already complete') and, once they succeed, exits 0."""
        from routerbench.routers import reference

        url = str(tmp_path / "a.parquet")
        io.save(base, url)
        argv = ["run", spec, "--data", url, "--out", str(tmp_path / "o"), "--no-plots"]
        argv += ["--workers", "1"]  # cells evaluated in this process, where fit is patched
        original = reference.Oracle.fit

        def broken(self: object, train: object) -> None:
            raise ValueError("broken on purpose")

        monkeypatch.setattr(reference.Oracle, "fit", broken)
        assert cli(argv, capsys)[0] == 1
        monkeypatch.setattr(reference.Oracle, "fit", original)
        rc, _, err = cli(argv, capsys)
        assert rc == 0 and "evaluating them again" in err
        (run_dir,) = (tmp_path / "o").iterdir()
        assert runs.read_run(str(run_dir)).manifest["failed_rows"] == 0


class TestLeaderboardReadsSearches:
    def test_optuna_run_is_published(self, tmp_path: Path, capsys: Any) -> None:
        """An Optuna run (with trials.parquet) is read by the leaderboard like any run."""
        spec = tmp_path / "o.toml"
        spec.write_text(
            '[data]\nsynthetic_n = 3000\nfamilies = ["mmlu", "hellaswag"]\n'
            '[search]\nkind = "optuna"\ntrials = 2\nparallel = 1\n'
            '[[routers]]\nname = "knn"\nspace = { k = { low = 3, high = 9 } }\n'
            "[metrics]\nbootstrap = 0\n"
        )
        out = tmp_path / "runs"
        assert cli(["run", str(spec), "--out", str(out), "--no-plots", "--quiet"], capsys)[0] == 0
        (run_dir,) = out.iterdir()
        assert runs.read_run(str(run_dir)).trials is not None
        rc, _, err = cli(
            ["leaderboard", "refresh", "--runs", str(out), "--out", str(tmp_path / "lb")], capsys
        )
        assert rc == 0 and "skipped" not in err, err


class TestBrokenPipe:
    def test_closed_stdout_is_not_an_error(self, done: Path, capsys: Any, monkeypatch: Any) -> None:
        """report into a pipe its reader closed (`| head`) exits 0 with nothing on stderr."""
        import sys

        class Closed:
            def write(self, text: str) -> int:
                raise BrokenPipeError(32, "Broken pipe")

            def flush(self) -> None:
                raise BrokenPipeError(32, "Broken pipe")

        monkeypatch.setattr(sys, "stdout", Closed())
        assert main(["report", str(done)]) == 0
        assert capsys.readouterr().err == ""
