"""Writing bytes anywhere fsspec reaches, all or nothing, with one retry policy.

The one atomic writer of routerbench: data files (``engine.io.save``) and results
(``cluster.store``) both go through :func:`write_bytes`. A local file is written under a temporary
name in the same folder and renamed into place; a remote object is sent as one PUT (S3's atomic
unit). Transient errors (a lost or refused connection, a timeout, throttling, a 5xx) are retried
with exponential backoff (:class:`Retry`); :func:`user_errors` turns what a user can fix (missing
folder or bucket, permissions, no credentials, an endpoint still unreachable after the retries)
into one-line :class:`~routerbench.engine.data.DataError` naming the URL.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem

from routerbench.engine.errors import DataError, Unreachable

T = TypeVar("T")


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
    storage_options: dict[str, Any] | None = None,
    *,
    retry: Retry = RETRY,
) -> None:
    """Write ``data`` to ``url`` all or nothing (a missing local folder is made first)."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_local_atomic(path, data)
        return
    retry.call(lambda: fs.pipe_file(path, data))  # one PUT: the object appears whole or not
