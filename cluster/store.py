"""The results store: every output goes through fsspec to a URL (local folder, ``s3://``, ...).

Each object is written once, whole: a local file is written under a temporary name in the same
folder and renamed into place; a remote object is built fully in memory and sent as one PUT (S3's
atomic unit), so a reader never sees a half-written file. Remote calls that fail with a transient
error (a lost connection, a timeout, S3 throttling or a 5xx) are retried with exponential backoff
(:class:`Retry`); other errors (missing object, access denied) are raised at once.

Storage options (``--storage-option KEY=VALUE``) go to fsspec, i.e. to ``s3fs.S3FileSystem`` for
``s3://``; without them the endpoint and credentials come from the standard AWS environment and
config (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``~/.aws/config``, ...).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import tempfile
from collections.abc import Sequence
from typing import Any, TypeVar

import fsspec
import pandas as pd
from fsspec.spec import AbstractFileSystem

from routerbench.engine.errors import DataError, UsageError
from routerbench.engine.storage import RETRY, Retry, is_transient, user_errors
from routerbench.engine.storage import write_bytes as _write_bytes

__all__ = ["RETRY", "Retry", "is_transient", "user_errors"]  # the retry policy lives in engine

T = TypeVar("T")
StorageOptions = dict[str, Any] | None


def join(base: str, *parts: str) -> str:
    """``base/part/...`` for folders and URLs alike."""
    return "/".join([base.rstrip("/"), *parts])


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


# ---------------------------------------------------------------------------- storage options
def parse_storage_options(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--storage-option``) as fsspec storage options.

    VALUE is read as JSON when it parses (numbers, ``true``/``false``, ``null``, ``"quoted"``
    strings, lists, objects), else kept as a string; dots in KEY nest:

    >>> parse_storage_options(["endpoint_url=http://127.0.0.1:9000", "client_kwargs.verify=false"])
    {'endpoint_url': 'http://127.0.0.1:9000', 'client_kwargs': {'verify': False}}

    A bad item raises the CLI's ``UsageError`` (one line, exit code 2).
    """

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise UsageError(f"--storage-option must be KEY=VALUE (got {item!r})")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UsageError(
                    f"--storage-option {item!r}: {'.'.join(parts[: i + 1])!r} is already set "
                    "to a value, not a table of options"
                )
        if parts[-1] in node:
            raise UsageError(f"--storage-option {key.strip()!r} is given twice")
        node[parts[-1]] = value
    return out


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    """Register ``--storage-option KEY=VALUE`` (repeatable; read it with
    :func:`parse_storage_options` on ``args.storage_option``)."""
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fsspec/s3fs option for the URLs (repeatable), e.g. "
        "endpoint_url=http://127.0.0.1:9000, anon=true, client_kwargs.verify=false; VALUE is "
        "JSON when it parses. Without it, endpoint and credentials come from the standard AWS "
        "environment and config",
    )


# ------------------------------------------------------------------------------- outputs
# Protocols results can be written to and found again later (memory:// dies with the process;
# http:// and the archive protocols are read-only).
WRITABLE = ("file", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "hdfs", "sftp")


def output_url(url: str) -> str:
    """The output location as given, with ``~`` expanded for local paths; refuses empty URLs,
    NUL bytes and protocols that cannot keep results (one line, naming the URL)."""
    if not url or not url.strip():
        raise DataError("output location is empty: expected a folder or URL (--out, output.url)")
    if "\0" in url:
        raise DataError(f"output location {url!r} contains a NUL byte")
    if is_local(url):
        path = os.path.expanduser(url.removeprefix("file://"))
        return path
    protocol = url.split("://", 1)[0].lower()
    if protocol not in WRITABLE:
        raise DataError(
            f"output location {url!r}: protocol {protocol!r} cannot keep results; expected a "
            f"local folder or one of {', '.join(p + '://' for p in WRITABLE[1:])}"
        )
    return url


def check_output_file(url: str, storage_options: StorageOptions = None) -> str:
    """An output file's URL (``~`` expanded), refused in one line unless it can be written and
    kept: a persistent protocol, no folder or device in its place, a writable folder."""
    url = output_url(url)
    if is_local(url):
        if os.path.exists(url) and not os.path.isfile(url):
            raise DataError(
                f"{url}: cannot write a file here: something other than a file is there"
            )
        if os.path.basename(url.rstrip("/")).strip() in ("", ".", ".."):
            raise DataError(f"{url}: expected a file name, got a folder")
        check_writable(os.path.dirname(os.path.abspath(url)), storage_options)
    else:
        check_writable(url.rsplit("/", 1)[0], storage_options)
    return url


def check_writable(url: str, storage_options: StorageOptions = None) -> None:
    """Refuse, before any computation, an output location that cannot be written: a probe
    object is written under ``url`` and removed again (nothing is left behind)."""
    probe = join(url, f".routerbench-probe-{os.getpid()}-{random.getrandbits(32):08x}")
    if is_local(url):
        path = os.path.abspath(url)
        existing = path
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise DataError(f"{url}: cannot write results: {existing} is not a folder")
        try:  # a probe in the nearest existing folder: no folder is created to test
            fd, tmp = tempfile.mkstemp(dir=existing, prefix=".routerbench-probe-")
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            raise DataError(f"{url}: cannot write results in {existing} ({e.strerror})") from None
        return
    with user_errors(url):
        try:
            fs, path = filesystem(probe, storage_options)
            RETRY.call(lambda: fs.pipe_file(path, b""))
            RETRY.call(lambda: fs.rm(path))
        except (DataError, FileNotFoundError, PermissionError):
            raise
        except Exception as e:
            if is_transient(e):
                raise
            raise DataError(f"{url}: cannot write results ({type(e).__name__}: {e})") from None


# ------------------------------------------------------------------------------------ objects
def filesystem(url: str, storage_options: StorageOptions = None) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of a URL and the path on it (instances are cached by fsspec)."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return fs, path


def write_bytes(
    url: str, data: bytes, storage_options: StorageOptions = None, *, retry: Retry = RETRY
) -> None:
    """Write ``data`` to ``url`` atomically (all or nothing, :func:`engine.storage.write_bytes`)."""
    _write_bytes(url, data, storage_options, retry=retry)


def read_bytes(url: str, storage_options: StorageOptions = None, *, retry: Retry = RETRY) -> bytes:
    """The bytes of one object; ``FileNotFoundError`` when there is none."""
    fs, path = filesystem(url, storage_options)
    return bytes(retry.call(lambda: fs.cat_file(path)))


def read_many(
    base: str, names: Sequence[str], storage_options: StorageOptions = None, *, retry: Retry = RETRY
) -> list[bytes | None]:
    """The bytes of ``base/name`` for each name (None for a missing one), fetched concurrently
    where the store allows."""
    if not names:
        return []
    fs, root = filesystem(base, storage_options)
    paths = [join(root, n) for n in names]
    got = retry.call(lambda: fs.cat(paths, on_error="return"))
    out: list[bytes | None] = []
    for p in paths:
        value = got.get(p)
        if isinstance(value, FileNotFoundError) or value is None:
            out.append(None)
        elif isinstance(value, BaseException):
            raise value
        else:
            out.append(bytes(value))
    return out


def exists(url: str, storage_options: StorageOptions = None, *, retry: Retry = RETRY) -> bool:
    """Whether an object (or folder) exists at ``url`` (never answered from a stale cache)."""
    fs, path = filesystem(url, storage_options)
    fs.invalidate_cache(path)
    return bool(retry.call(lambda: fs.exists(path)))


def list_dir(
    url: str, storage_options: StorageOptions = None, *, retry: Retry = RETRY
) -> list[str]:
    """Sorted names of the entries directly under ``url``; empty if there is no such folder."""
    fs, path = filesystem(url, storage_options)
    fs.invalidate_cache(path)
    try:
        entries = retry.call(lambda: fs.ls(path, detail=False))
    except FileNotFoundError:
        return []
    return sorted({str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries} - {""})


def glob(
    url: str, pattern: str, storage_options: StorageOptions = None, *, retry: Retry = RETRY
) -> list[str]:
    """Sorted paths relative to ``url`` of the objects matching ``pattern`` (e.g. ``*/x.json``)."""
    fs, path = filesystem(url, storage_options)
    root = path.rstrip("/")
    fs.invalidate_cache(root)
    found = retry.call(lambda: fs.glob(join(root, pattern)))
    return sorted(str(p)[len(root) + 1 :] for p in found)


def remove(url: str, storage_options: StorageOptions = None, *, retry: Retry = RETRY) -> None:
    """Delete the object or folder (recursively) at ``url``; nothing if it is already gone."""
    fs, path = filesystem(url, storage_options)
    try:
        retry.call(lambda: fs.rm(path, recursive=True))
    except FileNotFoundError:
        pass


# ----------------------------------------------------------------------------- tables, JSON
def write_table(url: str, df: pd.DataFrame, storage_options: StorageOptions = None) -> None:
    """Write a frame as one Parquet object."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    write_bytes(url, buf.getvalue(), storage_options)


def write_json(url: str, obj: Any, storage_options: StorageOptions = None) -> None:
    """Write an object as indented, key-sorted JSON."""
    write_bytes(url, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), storage_options)


def read_table(url: str, storage_options: StorageOptions = None) -> pd.DataFrame:
    """Read one Parquet object."""
    return pd.read_parquet(io.BytesIO(read_bytes(url, storage_options)))
