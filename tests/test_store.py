"""Storage (local and a real S3 server on 127.0.0.1), retries, and resumable runs."""

from __future__ import annotations

import argparse
import json
import os
import threading
import tomllib
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from s3server import S3Server, time_limit

from routerbench.cluster.cli.options import STORAGE_OPTION, Verb, add_verbs, parse_storage_options
from routerbench.engine import storage
from routerbench.engine.errors import DataError, UsageError
from routerbench.sweeps.cells import CellResult, evaluate_cell
from routerbench.sweeps.execute import load_data, plan, run_grid
from routerbench.sweeps.resume import (
    CellStore,
    code_versions,
    default_run_id,
    inputs_key,
    is_complete,
)
from routerbench.sweeps.spec import parse

SPEC = """
[data]
synthetic_n = 2000
families = ["mmlu", "hellaswag", "grade-school-math"]
[[routers]]
name = "single"
[[routers]]
name = "oracle"
[[routers]]
name = "knn"
grid = { k = [5, 10] }
[metrics]
bootstrap = 20
"""
FAST = storage.Retry(attempts=2, base=0.05)  # gives up quickly: for outages meant to fail


@pytest.fixture(autouse=True)
def _limit() -> Iterator[None]:
    with time_limit(120):
        yield


@pytest.fixture(scope="module")
def job():
    spec = parse(tomllib.loads(SPEC), text=SPEC)
    data = load_data(spec)
    p = plan(spec, data)
    return spec, p, inputs_key(spec.hash, data.fingerprint())


@pytest.fixture(scope="module")
def reference(job):
    """The uninterrupted run, evaluated in this process with no storage."""
    spec, p, _ = job
    return run_grid(spec, p)


def _points(res) -> pd.DataFrame:
    return res.points.drop(columns=["seconds"])  # timings differ between runs


# ------------------------------------------------------------------------- storage options
class TestParseStorageOptions:
    def test_strings_and_json_values(self) -> None:
        """Values are JSON when they parse (numbers, booleans, quoted strings), else strings."""
        got = parse_storage_options(
            [
                "endpoint_url=http://127.0.0.1:9000",
                "anon=true",
                "default_block_size=5242880",
                'secret="0123"',
                "profile=dev",
            ]
        )
        assert got == {
            "endpoint_url": "http://127.0.0.1:9000",
            "anon": True,
            "default_block_size": 5242880,
            "secret": "0123",
            "profile": "dev",
        }

    def test_dotted_keys_nest(self) -> None:
        """client_kwargs.verify=false and a JSON object merge into one nested table."""
        got = parse_storage_options(
            [
                "client_kwargs.verify=false",
                'config_kwargs={"connect_timeout": 5}',
                "config_kwargs.read_timeout=9",
            ]
        )
        assert got == {
            "client_kwargs": {"verify": False},
            "config_kwargs": {"connect_timeout": 5, "read_timeout": 9},
        }

    def test_value_may_contain_equals(self) -> None:
        """Only the first '=' separates key from value."""
        assert parse_storage_options(["token=a=b"]) == {"token": "a=b"}

    @pytest.mark.parametrize(
        ("items", "expected"),
        [
            (["anon"], "must be KEY=VALUE (got 'anon')"),
            (["=1"], "must be KEY=VALUE (got '=1')"),
            (["a..b=1"], "must be KEY=VALUE (got 'a..b=1')"),
            (["anon=true", "anon=false"], "'anon' is given twice"),
            (["a=1", "a.b=2"], "'a' is already set to a value"),
        ],
    )
    def test_bad_items_one_line(self, items: list[str], expected: str) -> None:
        """A malformed item raises the CLI's UsageError naming it, on one line."""
        with pytest.raises(UsageError, match="--storage-option") as e:
            parse_storage_options(items)
        assert expected in str(e.value) and "\n" not in str(e.value)


class TestStorageOption:
    def test_repeatable_flag(self) -> None:
        """--storage-option may be given several times on a verb of the verb table; the parsed
        list feeds the parser, and each parse starts from an empty list."""
        parser = argparse.ArgumentParser()
        verb = Verb("get", "a verb", "A verb with storage options.", args=[STORAGE_OPTION])
        add_verbs(parser.add_subparsers(dest="command"), [verb])
        argv = ["get", "--storage-option", "anon=true", "--storage-option=x.y=1"]
        args = parser.parse_args(argv)
        assert parse_storage_options(args.storage_option) == {"anon": True, "x": {"y": 1}}
        assert parser.parse_args(["get"]).storage_option == []


# ---------------------------------------------------------------------------------- retries
class TestRetry:
    def test_transient_errors_are_retried(self) -> None:
        """Two lost connections, then success: three calls, the result returned."""
        calls = []

        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise ConnectionResetError("reset by peer")
            return "ok"

        assert storage.Retry(attempts=3, base=0.01).call(flaky) == "ok"
        assert len(calls) == 3

    def test_other_errors_raise_at_once(self) -> None:
        """A missing object is not retried: one call."""
        calls = []

        def missing() -> None:
            calls.append(1)
            raise FileNotFoundError("s3://b/x")

        with pytest.raises(FileNotFoundError):
            storage.Retry(attempts=5, base=0.01).call(missing)
        assert len(calls) == 1

    def test_gives_up_after_attempts(self) -> None:
        """A persistent transient error is raised after `attempts` calls."""
        calls = []

        def down() -> None:
            calls.append(1)
            raise TimeoutError("timed out")

        with pytest.raises(TimeoutError):
            storage.Retry(attempts=4, base=0.001).call(down)
        assert len(calls) == 4

    def test_rejects_bad_settings(self) -> None:
        """attempts must be >= 1."""
        with pytest.raises(ValueError, match="attempts >= 1"):
            storage.Retry(attempts=0)


class TestIsTransient:
    def _client_error(self, code: str, status: int):
        from botocore.exceptions import ClientError

        return ClientError(
            {
                "Error": {"Code": code, "Message": code},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            "PutObject",
        )

    def test_connection_and_timeouts(self) -> None:
        """Refused or reset connections, timeouts and botocore's endpoint errors are transient."""
        from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

        assert storage.is_transient(ConnectionRefusedError())
        assert storage.is_transient(TimeoutError())
        assert storage.is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
        assert storage.is_transient(ReadTimeoutError(endpoint_url="http://127.0.0.1:1"))

    def test_server_errors_and_throttling(self) -> None:
        """5xx and SlowDown are transient, also wrapped in an OSError as s3fs does."""
        assert storage.is_transient(self._client_error("InternalError", 500))
        assert storage.is_transient(self._client_error("SlowDown", 503))
        wrapped = OSError(5, "server error")
        wrapped.__cause__ = self._client_error("ServiceUnavailable", 503)
        assert storage.is_transient(wrapped)

    def test_client_errors_are_not(self) -> None:
        """Missing objects, access denied and bad values are not transient."""
        assert not storage.is_transient(FileNotFoundError())
        assert not storage.is_transient(PermissionError())
        assert not storage.is_transient(ValueError())
        assert not storage.is_transient(self._client_error("AccessDenied", 403))
        wrapped = OSError(5, "bad request")
        wrapped.__cause__ = self._client_error("InvalidRequest", 400)
        assert not storage.is_transient(wrapped)


# ---------------------------------------------------------------------------------- objects
def _store_roundtrip(base: str, so: dict | None) -> None:
    storage.write_bytes(storage.join(base, "a", "x.bin"), b"one", so)
    storage.write_bytes(storage.join(base, "a", "x.bin"), b"two", so)  # replaced whole
    storage.write_bytes(storage.join(base, "b", "y.json"), b"{}", so)
    storage.write_bytes(storage.join(base, "b", "c", "z.json"), b"[]", so)
    assert storage.read_bytes(storage.join(base, "a", "x.bin"), so) == b"two"
    assert storage.list_dir(base, so) == ["a", "b"]
    assert storage.list_dir(storage.join(base, "nothing"), so) == []
    assert storage.glob(base, "*/*.json", so) == ["b/y.json"]
    assert storage.read_many(base, ["a/x.bin", "b/c/z.json"], so) == [b"two", b"[]"]
    assert storage.exists(storage.join(base, "b", "y.json"), so)
    assert not storage.exists(storage.join(base, "b", "nope.json"), so)
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(storage.join(base, "b", "nope.json"), so)
    storage.remove(storage.join(base, "b"), so)
    storage.remove(storage.join(base, "b"), so)  # already gone: nothing to do
    assert storage.list_dir(base, so) == ["a"]


def _no_torn_reads(url: str, so: dict | None) -> None:
    """While a writer replaces an object with whole payloads of one byte value, every read
    returns one whole payload."""
    size = 2_000_000
    storage.write_bytes(url, b"a" * size, so)
    done = threading.Event()

    def writer() -> None:
        for i in range(12):
            storage.write_bytes(url, bytes([ord("a") + i % 3]) * size, so)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    reads = 0
    while not done.is_set() or reads == 0:
        data = storage.read_bytes(url, so)
        assert len(data) == size and data.count(data[:1]) == size
        reads += 1
    t.join(timeout=60)


class TestLocalStore:
    def test_write_read_list_glob_remove(self, tmp_path: Path) -> None:
        """Objects in a local folder: written, replaced, listed, globbed, read, removed."""
        _store_roundtrip(str(tmp_path / "s"), None)

    def test_no_temporary_files_left(self, tmp_path: Path) -> None:
        """The temporary file is renamed into place, and removed if the write fails."""
        storage.write_bytes(str(tmp_path / "x.bin"), b"data")
        with pytest.raises(TypeError):
            storage.write_bytes(str(tmp_path / "y.bin"), "not bytes")  # type: ignore[arg-type]
        assert sorted(os.listdir(tmp_path)) == ["x.bin"]

    def test_file_mode_is_the_usual(self, tmp_path: Path) -> None:
        """A stored file gets the mode an ordinary new file gets (not a private temp mode)."""
        storage.write_bytes(str(tmp_path / "x.bin"), b"data")
        (tmp_path / "plain").write_bytes(b"")
        assert (tmp_path / "x.bin").stat().st_mode == (tmp_path / "plain").stat().st_mode

    def test_readers_never_see_a_partial_file(self, tmp_path: Path) -> None:
        """Concurrent reads during rewrites always return a whole payload."""
        _no_torn_reads(str(tmp_path / "big.bin"), None)


class TestS3Store:
    def test_write_read_list_glob_remove(self, s3: S3Server) -> None:
        """The same operations against the S3 server."""
        _store_roundtrip(s3.bucket() + "/s", s3.options())

    def test_readers_never_see_a_partial_object(self, s3: S3Server) -> None:
        """Concurrent reads during rewrites (single PUTs) always return a whole payload."""
        _no_torn_reads(s3.bucket() + "/big.bin", s3.options())

    def test_short_outage_is_retried(self, s3: S3Server) -> None:
        """Server stopped, restarted a second later: the write goes through on a retry."""
        so = s3.options()
        url = s3.bucket() + "/runs/r1/manifest.json"
        s3.stop()
        timer = s3.restart_after(1.0)
        try:
            storage.write_bytes(url, b'{"ok": true}', so, retry=storage.Retry(attempts=8, base=0.2))
        finally:
            timer.join(timeout=30)
        assert storage.read_bytes(url, so) == b'{"ok": true}'

    def test_long_outage_raises_and_writes_nothing(self, s3: S3Server) -> None:
        """Server down for longer than the retries: the write raises and no object appears."""
        so = s3.options()
        base = s3.bucket()
        s3.stop()
        try:
            with pytest.raises(Exception) as e:
                storage.write_bytes(base + "/x.bin", b"data", so, retry=FAST)
            assert storage.is_transient(e.value)
        finally:
            s3.start()
        assert storage.list_dir(base, so) == []


# ------------------------------------------------------------------------------ cell store
def _evaluate(p, cell, bootstrap: int = 0) -> CellResult:
    split = next(s for s in p.splits if s.name == cell.split)
    return evaluate_cell(p.data, cell, split, bootstrap=bootstrap)


def _same_result(a: CellResult, b: CellResult) -> None:
    assert a.cell == b.cell
    pd.testing.assert_frame_equal(pd.DataFrame(a.rows), pd.DataFrame(b.rows))  # NaN == NaN
    for x, y in ((a.exact, b.exact), (a.boot, b.boot)):
        assert sorted(x) == sorted(y)
        for fam in x:
            for u, v in zip(x[fam], y[fam], strict=True):
                np.testing.assert_array_equal(u, v)


class TestCellStore:
    def test_roundtrip_is_exact(self, tmp_path: Path, job) -> None:
        """A saved cell loads back with identical rows, exact paths and bootstrap arrays."""
        _, p, inputs = job
        cs = CellStore(str(tmp_path / "run"), inputs=inputs)
        for cell in p.cells[:3] + p.cells[-2:]:  # single models and knn (exact paths)
            res = _evaluate(p, cell, bootstrap=20)
            cs.save(res)
            got = CellStore(str(tmp_path / "run"), inputs=inputs).load(cell)
            assert got is not None
            _same_result(res, got)
        assert len(cs.stored()) == 5

    def test_not_stored_is_none(self, tmp_path: Path, job) -> None:
        """A cell never saved loads as None (run_grid then evaluates it)."""
        _, p, inputs = job
        assert CellStore(str(tmp_path / "run"), inputs=inputs).load(p.cells[0]) is None

    def test_failed_cell_is_not_stored(self, tmp_path: Path, job) -> None:
        """A cell with a failed family is left for the rerun to try again."""
        _, p, inputs = job
        cs = CellStore(str(tmp_path / "run"), inputs=inputs)
        row = {"family": "mmlu", "status": "failed", "error": "MemoryError"}
        cs.save(CellResult(p.cells[0], rows=[row]))
        assert cs.stored() == [] and cs.load(p.cells[0]) is None

    def test_other_inputs_refused(self, tmp_path: Path, job) -> None:
        """A cell stored for other inputs (spec, data, versions) raises a one-line DataError."""
        _, p, inputs = job
        CellStore(str(tmp_path / "run"), inputs=inputs).save(_evaluate(p, p.cells[0]))
        with pytest.raises(DataError, match="stored for other inputs") as e:
            CellStore(str(tmp_path / "run"), inputs="other").load(p.cells[0])
        assert "\n" not in str(e.value)

    def test_unreadable_object_refused(self, tmp_path: Path, job) -> None:
        """A cell object that is not an npz archive raises a DataError naming it."""
        _, p, inputs = job
        cs = CellStore(str(tmp_path / "run"), inputs=inputs)
        storage.write_bytes(cs.url(p.cells[0]), b"not an archive")
        with pytest.raises(DataError, match=r"\.npz: not a readable cell result"):
            cs.load(p.cells[0])

    def test_no_pickle_inside(self, tmp_path: Path, job) -> None:
        """The object loads with allow_pickle=False: plain arrays and JSON only."""
        _, p, inputs = job
        cs = CellStore(str(tmp_path / "run"), inputs=inputs)
        cs.save(_evaluate(p, p.cells[-1], bootstrap=5))
        with np.load(cs.url(p.cells[-1]), allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)


class TestRunIds:
    def test_deterministic(self) -> None:
        """The same spec, data and versions give the same run id."""
        v = {"routerbench": "1.0", "numpy": "2.4", "scikit-learn": "1.9"}
        assert default_run_id("abc123", "f00d", v) == default_run_id("abc123", "f00d", v)

    def test_changes_with_any_input(self) -> None:
        """A new spec hash, data fingerprint or package version gives a new run id."""
        v = {"routerbench": "1.0", "numpy": "2.4", "scikit-learn": "1.9"}
        ids = {
            default_run_id("abc123", "f00d", v),
            default_run_id("abc124", "f00d", v),
            default_run_id("abc123", "f00e", v),
            default_run_id("abc123", "f00d", v | {"routerbench": "1.1"}),
        }
        assert len(ids) == 4

    def test_default_versions_are_installed_ones(self) -> None:
        """Without versions given, the installed ones are used."""
        assert default_run_id("abc", "f") == default_run_id("abc", "f", code_versions())
        versioned = {"routerbench", "numpy", "scipy", "scikit-learn", "optuna"}
        assert set(code_versions()) == versioned | {"routerbench-source"}

    def test_complete_when_manifest_exists(self, tmp_path: Path) -> None:
        """A run folder is complete once its manifest.json exists."""
        run = str(tmp_path / "r")
        storage.write_bytes(storage.join(run, "cells", "x.npz"), b"")
        assert not is_complete(run)
        storage.write_json(storage.join(run, "manifest.json"), {"run_id": "r"})
        assert is_complete(run)


# ------------------------------------------------------------------------------------ resume
class TestResumeOnS3:
    def test_interrupted_run_resumes_to_the_same_rows(self, s3: S3Server, job, reference) -> None:
        """The server stops mid-run (the run fails); restarted, the rerun evaluates only the
        missing cells and gives the same points and curves as an uninterrupted run, with every
        cell stored exactly once."""
        spec, p, inputs = job
        so = s3.options()
        run_url = s3.bucket() + "/runs/r1"
        first = CellStore(run_url, so, inputs=inputs, retry=FAST)
        saved = []

        def save_then_fail(res: CellResult) -> None:
            first.save(res)
            saved.append(res.cell.cell_id)
            if len(saved) == 4:
                s3.stop()  # the next save finds no server

        try:
            with pytest.raises(Exception) as e:
                run_grid(spec, p, skip=first.load, on_result=save_then_fail)
            assert storage.is_transient(e.value)
        finally:
            s3.start()
        assert not is_complete(run_url, so)

        second = CellStore(run_url, so, inputs=inputs)
        assert second.stored() == sorted(saved)
        evaluated = []

        def save(res: CellResult) -> None:
            evaluated.append(res.cell.cell_id)
            second.save(res)

        resumed = run_grid(spec, p, skip=second.load, on_result=save)
        assert sorted(evaluated) == sorted({c.cell_id for c in p.cells} - set(saved))
        assert second.stored() == sorted(c.cell_id for c in p.cells)  # once each, none missing
        assert storage.list_dir(run_url, so) == ["cells"]
        pd.testing.assert_frame_equal(_points(resumed), _points(reference))
        pd.testing.assert_frame_equal(resumed.curves, reference.curves)
        assert not resumed.points.duplicated(["cell_id", "family", "knob"]).any()

    def test_complete_rerun_evaluates_nothing(self, s3: S3Server, job, reference) -> None:
        """With every cell stored, a rerun loads them all and evaluates none."""
        spec, p, inputs = job
        so = s3.options()
        run_url = s3.bucket() + "/runs/r2"
        cs = CellStore(run_url, so, inputs=inputs)
        run_grid(spec, p, skip=cs.load, on_result=cs.save)
        evaluated = []
        again = CellStore(run_url, so, inputs=inputs)
        res = run_grid(spec, p, skip=again.load, on_result=lambda r: evaluated.append(r))
        assert evaluated == []
        pd.testing.assert_frame_equal(_points(res), _points(reference))


class TestRunCommandResumes:
    def test_run_on_s3_resumes_and_then_does_nothing(
        self, s3: S3Server, job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`routerbench run` on S3 with a run left incomplete (some cells stored, no manifest)
        evaluates only the missing cells and gives the rows of an uninterrupted run; run again,
        it finds the run complete and evaluates and writes nothing."""
        import routerbench.sweeps.execute as execute
        from routerbench.cluster.cli import main

        spec, p, inputs = job
        so = s3.options()
        (tmp_path / "spec.toml").write_text(SPEC)
        opts = [f"--storage-option={k}={json.dumps(v)}" for k, v in so.items()]
        base = s3.bucket()
        argv = ["run", str(tmp_path / "spec.toml"), "--quiet", "--no-plots", *opts]
        argv += ["--workers", "1"]  # cells evaluated in this process, where they are counted

        assert main([*argv, "--out", f"{base}/whole"]) == 0
        (run_id,) = storage.list_dir(f"{base}/whole", so)
        assert run_id == default_run_id(spec.hash, p.data.fingerprint())

        interrupted = CellStore(f"{base}/resumed/{run_id}", so, inputs=inputs)
        for cell in p.cells[:5]:
            interrupted.save(_evaluate(p, cell, bootstrap=spec.metrics["bootstrap"]))
        evaluated = []
        real = execute.evaluate_cell

        def counting(data, cell, split, **kw):
            evaluated.append(cell.cell_id)
            return real(data, cell, split, **kw)

        monkeypatch.setattr(execute, "evaluate_cell", counting)
        assert main([*argv, "--out", f"{base}/resumed"]) == 0
        assert sorted(evaluated) == sorted(c.cell_id for c in p.cells[5:])
        whole = pd.read_parquet(
            BytesIO(storage.read_bytes(f"{base}/whole/{run_id}/points.parquet", so))
        )
        resumed = pd.read_parquet(
            BytesIO(storage.read_bytes(f"{base}/resumed/{run_id}/points.parquet", so))
        )
        pd.testing.assert_frame_equal(
            resumed.drop(columns="seconds"), whole.drop(columns="seconds")
        )

        manifest = storage.read_bytes(f"{base}/resumed/{run_id}/manifest.json", so)
        evaluated.clear()
        assert main([*argv, "--out", f"{base}/resumed"]) == 0
        assert evaluated == []
        assert storage.read_bytes(f"{base}/resumed/{run_id}/manifest.json", so) == manifest


class TestUnreachableStore:
    def test_refused_connections_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An S3 endpoint refusing connections past the retries stops run and report with one
        line naming the URL, exit 1 (a fault), before anything is computed or written."""
        from routerbench.cluster.cli import main

        dead = ["--storage-option", "endpoint_url=http://127.0.0.1:1"]
        dead += ["--storage-option", "key=a", "--storage-option", "secret=b"]
        # botocore's own retries off: only routerbench's backoff (about 8 s) and s3fs's are left
        dead += ["--storage-option", "config_kwargs.retries.max_attempts=1"]
        spec = tmp_path / "s.toml"
        spec.write_text('[data]\nsynthetic_n = 500\n[[routers]]\nname = "oracle"\n')
        for argv in (["run", str(spec), "--out", "s3://bucket/runs"], ["report", "s3://bucket/r"]):
            assert main([*argv, *dead]) == 1  # a fault past the retries, not bad input
            lines = capsys.readouterr().err.strip().splitlines()
            assert len(lines) == 1 and "s3://bucket/" in lines[0], lines
