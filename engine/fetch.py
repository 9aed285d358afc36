"""Fetch RouterBench's published files from the dataset hub, with a sha256 per file.

Files are looked up first in the local hub cache, laid out as ``huggingface_hub`` lays it out::

    <cache>/datasets--withmartian--routerbench/refs/<revision>        (holds a commit hash)
    <cache>/datasets--withmartian--routerbench/snapshots/<commit>/<file>

Only a file missing there is downloaded, with ``huggingface_hub.hf_hub_download`` (the optional
``routerbench[hub]`` dependency, imported only then). Each file's sha256 (streamed) is its data
fingerprint; they are recorded in ``fingerprints.json`` in the repository's cache folder, keyed by
``snapshots/<commit>/<file>``. A snapshot never changes, so a file whose hash differs from the one
recorded for it is reported as corrupt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from routerbench.engine.errors import DataError, first_line
from routerbench.engine.storage import write_local_atomic

REPO_ID = "withmartian/routerbench"
REPO_FOLDER = "datasets--withmartian--routerbench"
FILES = ("routerbench_0shot.pkl", "routerbench_5shot.pkl")  # also: routerbench_raw.pkl
FINGERPRINTS = "fingerprints.json"
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class FetchedFile:
    """A local copy of a published file: its path, sha256 (hex) and size in bytes."""

    path: str
    sha256: str
    size: int


def default_cache_dir() -> Path:
    """The hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``
    (as ``huggingface_hub`` resolves it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache", "huggingface"
    )
    return Path(home) / "hub"


def cached_path(filename: str, cache_dir: Path, revision: str | None = None) -> Path | None:
    """``filename`` in the local hub cache at ``revision`` (a branch, tag or commit; default
    ``main``), or None if it is not there.

    >>> import tempfile
    >>> cached_path("routerbench_0shot.pkl", Path(tempfile.mkdtemp())) is None
    True
    """
    repo = cache_dir / REPO_FOLDER
    rev = revision or "main"
    if not _COMMIT.fullmatch(rev):
        ref = repo / "refs" / rev
        if not ref.is_file():
            return None
        rev = ref.read_text().strip()
    path = repo / "snapshots" / rev / filename
    return path if path.is_file() else None


def _download(filename: str, cache_dir: Path, revision: str | None) -> Path:
    """The one step that needs the network and ``huggingface_hub``."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise DataError(
            f"{filename} is not in the hub cache {cache_dir} and huggingface_hub is not "
            "installed: pip install 'routerbench[hub]'"
        ) from None
    try:
        path = hf_hub_download(
            repo_id=REPO_ID,
            filename=filename,
            repo_type="dataset",
            revision=revision,
            cache_dir=cache_dir,
        )
    except Exception as exc:  # network, unknown file or revision: one line
        text = first_line(exc).partition(": ")[2]
        raise DataError(f"cannot download {filename} from {REPO_ID}: {text}") from None
    return Path(path)


def sha256_of(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    """The sha256 (hex) and size of a file, read in chunks."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _fingerprints(repo: Path) -> dict[str, dict[str, object]]:
    path = repo / FINGERPRINTS
    try:
        known = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        raise DataError(f"{path}: not valid JSON; delete it to start afresh") from None
    if not isinstance(known, dict):
        raise DataError(f"{path}: expected a JSON object of file -> fingerprint")
    return known


def fetch(
    files: tuple[str, ...] | list[str] = FILES,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    revision: str | None = None,
) -> list[FetchedFile]:
    """Local copies of the published ``files`` (from the hub cache, else downloaded), each with
    its sha256, recorded in ``<cache>/datasets--withmartian--routerbench/fingerprints.json``."""
    cache = Path(os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir())))
    repo = cache / REPO_FOLDER
    known = _fingerprints(repo)
    out = []
    for name in files:
        path = cached_path(name, cache, revision) or _download(name, cache, revision)
        path = Path(os.path.abspath(path))
        digest, size = sha256_of(path)
        key = path.relative_to(repo).as_posix() if path.is_relative_to(repo) else str(path)
        recorded = known.get(key)
        if isinstance(recorded, dict) and recorded.get("sha256") != digest:
            raise DataError(
                f"{path}: sha256 {digest} differs from the one recorded for this snapshot "
                f"({recorded.get('sha256')}): the cached file is corrupt; delete it, fetch again"
            )
        known[key] = {"sha256": digest, "size": size}
        out.append(FetchedFile(path=str(path), sha256=digest, size=size))
    if not out:
        return out
    payload = json.dumps(known, indent=1, sort_keys=True) + "\n"
    write_local_atomic(str(repo / FINGERPRINTS), payload.encode())
    return out
