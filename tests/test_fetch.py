"""fetch(): resolve published files from a hub-style cache, fingerprint them, download only if
needed (offline: huggingface_hub is never needed here)."""

from __future__ import annotations

import doctest
import hashlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.engine import fetch as fetch_mod
from routerbench.engine import io, storage
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError
from routerbench.engine.fetch import FetchedFile, cached_path, default_cache_dir, fetch, sha256_of

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "datasets--withmartian--routerbench"


def _rd(**fields: Any) -> RoutingData:
    """A RoutingData from plain lists (its fields are annotated as arrays)."""
    return RoutingData(**fields)


def _hub_cache(
    root: Path, files: dict[str, bytes], *, ref: str = "main", commit: str = COMMIT
) -> Path:
    """A cache laid out as huggingface_hub lays it out (refs/<ref> -> snapshots/<commit>/)."""
    repo = root / REPO
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        (snap / name).write_bytes(payload)
    return root


def _small_pickle(tmp_path: Path) -> bytes:
    data = _rd(
        quality=[[1.0, 0.0], [0.5, 0.25]],
        cost=[[0.01, 0.001], [0.02, 0.002]],
        models=["gpt-4-1106-preview", "mistralai/mistral-7b-chat"],
        prompt_ids=["mmlu-astronomy.val.0", "hellaswag.dev.0"],
        eval_names=["mmlu-astronomy", "hellaswag"],
    )
    path = tmp_path / "gen.pkl"
    io.save(data, str(path), format="upstream-wide")
    return path.read_bytes()


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download attempt fails the test."""

    def refuse(*args: object) -> Path:
        raise AssertionError("fetch tried to download")

    monkeypatch.setattr(fetch_mod, "_download", refuse)


class TestFetch:
    def test_from_cache_without_download(self, tmp_path: Path, no_download: None) -> None:
        """A cached file is found, hashed and recorded; nothing is downloaded or imported."""
        payload = _small_pickle(tmp_path)
        cache = _hub_cache(tmp_path / "hub", {"routerbench_0shot.pkl": payload})
        [got] = fetch(("routerbench_0shot.pkl",), cache_dir=cache)
        snap = cache / REPO / "snapshots" / COMMIT / "routerbench_0shot.pkl"
        assert got == FetchedFile(str(snap), hashlib.sha256(payload).hexdigest(), len(payload))
        assert "huggingface_hub" not in sys.modules
        recorded = json.loads((cache / REPO / "fingerprints.json").read_text())
        key = f"snapshots/{COMMIT}/routerbench_0shot.pkl"
        assert recorded == {key: {"sha256": got.sha256, "size": len(payload)}}
        assert io.load(got.path).models == ("gpt-4-1106-preview", "mistralai/mistral-7b-chat")

    def test_revisions(self, tmp_path: Path, no_download: None) -> None:
        """A branch name is resolved through refs/; a commit hash names the snapshot directly."""
        other = "f" * 40
        cache = _hub_cache(tmp_path, {"a.pkl": b"main"})
        _hub_cache(tmp_path, {"a.pkl": b"v2"}, ref="v2", commit=other)
        assert Path(fetch(["a.pkl"], cache_dir=cache)[0].path).read_bytes() == b"main"
        assert Path(fetch(["a.pkl"], cache_dir=cache, revision="v2")[0].path).read_bytes() == b"v2"
        assert fetch(["a.pkl"], cache_dir=cache, revision=other)[0].sha256 == (
            hashlib.sha256(b"v2").hexdigest()
        )

    def test_fingerprints_accumulate(self, tmp_path: Path, no_download: None) -> None:
        """Separate fetches add to the same fingerprints file."""
        cache = _hub_cache(tmp_path, {"a.pkl": b"1", "b.pkl": b"22"})
        fetch(["a.pkl"], cache_dir=cache)
        fetch(["b.pkl"], cache_dir=cache)
        recorded = json.loads((cache / REPO / "fingerprints.json").read_text())
        assert {k.rsplit("/", 1)[1]: v["size"] for k, v in recorded.items()} == {
            "a.pkl": 1,
            "b.pkl": 2,
        }

    def test_failed_write_leaves_no_temporary(
        self, tmp_path: Path, no_download: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A rename that fails while recording fingerprints raises, keeps the old record and
        leaves no temporary file in the folder."""
        cache = _hub_cache(tmp_path, {"a.pkl": b"1", "b.pkl": b"22"})
        fetch(["a.pkl"], cache_dir=cache)
        record = cache / REPO / "fingerprints.json"
        before = record.read_bytes()

        def broken(src: str, dst: str) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(storage.os, "replace", broken)
        with pytest.raises(OSError, match="disk full"):
            fetch(["b.pkl"], cache_dir=cache)
        monkeypatch.undo()
        names = sorted(p.name for p in (cache / REPO).iterdir())
        assert names == ["fingerprints.json", "refs", "snapshots"]
        assert record.read_bytes() == before

    def test_corrupt_cached_file(self, tmp_path: Path, no_download: None) -> None:
        """A snapshot file whose hash changed since it was recorded is reported as corrupt."""
        cache = _hub_cache(tmp_path, {"a.pkl": b"good"})
        fetch(["a.pkl"], cache_dir=cache)
        (cache / REPO / "snapshots" / COMMIT / "a.pkl").write_bytes(b"evil")
        with pytest.raises(DataError, match="corrupt"):
            fetch(["a.pkl"], cache_dir=cache)

    def test_bad_fingerprints_file(self, tmp_path: Path, no_download: None) -> None:
        """An unreadable fingerprints.json is a DataError naming it."""
        cache = _hub_cache(tmp_path, {"a.pkl": b"1"})
        (cache / REPO / "fingerprints.json").write_text("{not json")
        with pytest.raises(DataError, match=r"fingerprints\.json"):
            fetch(["a.pkl"], cache_dir=cache)

    def test_missing_without_hub_client(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Not cached and huggingface_hub not installed: a one-line DataError with the fix."""
        monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # makes the import fail
        with pytest.raises(DataError) as err:
            fetch(["routerbench_0shot.pkl"], cache_dir=tmp_path)
        msg = str(err.value)
        assert "pip install 'routerbench[hub]'" in msg and "routerbench_0shot.pkl" in msg
        assert "\n" not in msg

    def test_download_when_missing(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A file not in the cache is asked from hf_hub_download with the dataset repo."""
        calls: list[dict[str, Any]] = []

        def hf_hub_download(**kw: Any) -> str:
            calls.append(kw)
            _hub_cache(Path(kw["cache_dir"]), {kw["filename"]: b"downloaded"})
            return str(Path(kw["cache_dir"]) / REPO / "snapshots" / COMMIT / kw["filename"])

        fake = types.ModuleType("huggingface_hub")
        fake.hf_hub_download = hf_hub_download  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
        [got] = fetch(["routerbench_5shot.pkl"], cache_dir=tmp_path, revision="main")
        assert calls == [
            {
                "repo_id": "withmartian/routerbench",
                "filename": "routerbench_5shot.pkl",
                "repo_type": "dataset",
                "revision": "main",
                "cache_dir": tmp_path,
            }
        ]
        assert got.sha256 == hashlib.sha256(b"downloaded").hexdigest() and got.size == 10
        fetch(["routerbench_5shot.pkl"], cache_dir=tmp_path)  # now cached: no second call
        assert len(calls) == 1

    def test_download_error(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A failing download is a one-line DataError naming the file."""

        def hf_hub_download(**kw: Any) -> str:
            raise OSError("404 Client Error\nEntry Not Found")

        fake = types.ModuleType("huggingface_hub")
        fake.hf_hub_download = hf_hub_download  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
        with pytest.raises(DataError, match=r"^cannot download x\.pkl .*404 Client Error$"):
            fetch(["x.pkl"], cache_dir=tmp_path)


class TestCachedPath:
    def test_absent(self, tmp_path: Path) -> None:
        """No refs, no snapshot or no file: None."""
        assert cached_path("a.pkl", tmp_path) is None
        _hub_cache(tmp_path, {"b.pkl": b""})
        assert cached_path("a.pkl", tmp_path) is None
        assert cached_path("b.pkl", tmp_path, revision="nope") is None


class TestDefaultCacheDir:
    def test_environment(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """HF_HUB_CACHE wins over HF_HOME/hub, which wins over ~/.cache/huggingface/hub."""
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        monkeypatch.delenv("HF_HOME", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
        assert default_cache_dir() == tmp_path / ".cache" / "huggingface" / "hub"
        monkeypatch.setenv("HF_HOME", "/x/home")
        assert default_cache_dir() == Path("/x/home/hub")
        monkeypatch.setenv("HF_HUB_CACHE", "/y/cache")
        assert default_cache_dir() == Path("/y/cache")

    def test_fetch_uses_it(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_download: None
    ) -> None:
        """fetch() without cache_dir looks in the default cache."""
        monkeypatch.setenv("HF_HUB_CACHE", str(_hub_cache(tmp_path, {"a.pkl": b"x"})))
        assert fetch(["a.pkl"])[0].size == 1


class TestSha256Of:
    @settings(max_examples=30, deadline=None)
    @given(payload=st.binary(max_size=300), chunk=st.integers(1, 64))
    def test_matches_hashlib(
        self, tmp_path_factory: pytest.TempPathFactory, payload: bytes, chunk: int
    ) -> None:
        """The streamed hash and size equal hashlib over the whole content."""
        path = tmp_path_factory.mktemp("h") / "f"
        path.write_bytes(payload)
        assert sha256_of(path, chunk) == (hashlib.sha256(payload).hexdigest(), len(payload))


class TestDocstrings:
    def test_examples_run(self) -> None:
        """The docstring examples of engine/fetch.py run and give what they show."""
        result = doctest.testmod(fetch_mod)
        assert result.attempted >= 2 and result.failed == 0
