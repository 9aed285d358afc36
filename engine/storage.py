"""Storage: every file and object goes through fsspec to a URL (local folder, ``s3://``, ...).

Each object is written once, whole, by the one atomic writer (:func:`write_bytes`): data files
(``engine.io.save``), run folders and the leaderboard all go through it. A local file is written
under a temporary name in the same folder and renamed into place (:func:`write_local_atomic`); a
remote object is built fully in memory and sent as one PUT (S3's atomic unit), so a reader never
sees a half-written file. Remote calls that fail with a transient error (a lost or refused
connection, a timeout, S3 throttling or a 5xx) are retried with exponential backoff
(:class:`Retry`); other errors (missing object, access denied) are raised at once.
:func:`user_errors` turns what a user can fix (missing folder or bucket, permissions, no
credentials, an endpoint still unreachable after the retries) into one-line
:class:`~routerbench.engine.errors.DataError` naming the URL.

Storage options go to fsspec, i.e. to ``s3fs.S3FileSystem`` for ``s3://`` (s3fs is never imported
here); without them the endpoint and credentials come from the standard AWS environment and
config (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``~/.aws/config``, ...).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem

from routerbench.engine.errors import DataError, Unreachable

T = TypeVar("T")
StorageOptions = dict[str, Any] | None


@dataclass(frozen=True, kw_only=True)
class Retry:
    """Exponential backoff for transient errors: before retry ``i`` (from 0) wait
    ``min(cap, base * 2**i)`` seconds, jittered down by up to half; ``attempts`` calls at most."""

    attempts: int = 6
    base: float = 0.25
    cap: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base < 0 or self.cap < 0:
            raise ValueError(
                f"Retry needs attempts >= 1, base >= 0 and cap >= 0 (got {self.attempts}, "
                f"{self.base}, {self.cap})"
            )

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, called again after a transient error until ``attempts`` calls were made."""
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as e:
                attempt += 1
                if attempt >= self.attempts or not is_transient(e):
                    raise
                time.sleep(min(self.cap, self.base * 2 ** (attempt - 1)) * random.uniform(0.5, 1))


RETRY = Retry()

_THROTTLED = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestLimitExceeded",
}


def is_transient(exc: BaseException) -> bool:
    """Whether an error may go away when the call is repeated: a lost or refused connection, a
    timeout, S3 throttling or a server-side (5xx) error, also when s3fs wrapped it in an OSError.
    """
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    # Only modules already imported can have raised their errors: no import cost for local URLs.
    botocore = sys.modules.get("botocore.exceptions")
    aiohttp = sys.modules.get("aiohttp")
    if botocore is not None:
        if isinstance(exc, botocore.ConnectionError | botocore.HTTPClientError):
            return True
        error = exc if isinstance(exc, botocore.ClientError) else exc.__cause__
        if isinstance(error, botocore.ClientError):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = error.response.get("Error", {}).get("Code", "")
            return int(status) >= 500 or code in _THROTTLED
    if aiohttp is not None:
        return isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError)
    return False


@contextmanager
def user_errors(url: str) -> Iterator[None]:
    """Storage failures as one-line errors naming ``url``: what a user can fix (a missing bucket
    or object, access denied, no credentials) as :class:`DataError`, an endpoint still
    unreachable after the retries as :class:`Unreachable`. Anything else propagates unchanged."""
    try:
        yield
    except (FileNotFoundError, PermissionError) as e:
        raise DataError(f"{url}: {type(e).__name__}: {e}") from None
    except Exception as e:
        botocore = sys.modules.get("botocore.exceptions")
        no_credentials = botocore is not None and isinstance(e, botocore.NoCredentialsError)
        if is_transient(e):
            raise Unreachable(f"{url}: unreachable ({type(e).__name__}: {e})") from None
        if not no_credentials:
            raise
        raise DataError(f"{url}: {type(e).__name__}: {e}") from None


def join(base: str, *parts: str) -> str:
    """``base/part/...`` for folders and URLs alike."""
    return "/".join([base.rstrip("/"), *parts])


def is_local(url: str) -> bool:
    """Whether a URL names a local path (no protocol, or ``file://``)."""
    return "://" not in url or url.startswith("file://")


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
        return os.path.expanduser(url.removeprefix("file://"))
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


# ------------------------------------------------------------------------------------ writing
def write_local_atomic(path: str, payload: bytes) -> None:
    """Write a local file all or nothing: a fresh temporary name in the same folder (created with
    the usual mode), then an atomic rename; on any error the temporary file is removed."""
    folder, base = os.path.split(os.path.abspath(path))
    if os.path.lexists(path) and not os.path.isfile(path):  # never replace a device or folder
        raise DataError(f"{path}: cannot write a file here: it is not a regular file")
    tmp = os.path.join(folder, f".{base}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes(
    url: str,
    data: bytes,
    storage_options: StorageOptions = None,
    *,
    retry: Retry = RETRY,
) -> None:
    """Write ``data`` to ``url`` all or nothing (a missing local folder is made first)."""
    fs, path = filesystem(url, storage_options)
    if isinstance(fs, LocalFileSystem):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_local_atomic(path, data)
        return
    retry.call(lambda: fs.pipe_file(path, data))  # one PUT: the object appears whole or not


# ------------------------------------------------------------------------------------ objects
def filesystem(url: str, storage_options: StorageOptions = None) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of a URL and the path on it (instances are cached by fsspec)."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return fs, path


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
def write_json(url: str, obj: Any, storage_options: StorageOptions = None) -> None:
    """Write an object as indented, key-sorted JSON."""
    write_bytes(url, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), storage_options)
