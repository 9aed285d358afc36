"""Test helpers: a real S3 server on 127.0.0.1 (moto's, as s3fs's own tests use) and a time limit.

moto keeps its buckets in this process, so stopping the server and starting it again on the same
port keeps what was stored: a failure injected mid-run loses nothing but the connection.
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.server import ThreadedMotoServer


class S3Server:
    """moto's S3 server on 127.0.0.1 (a free port on the first start, the same one afterwards)."""

    def __init__(self) -> None:
        self.port = 0
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self.port = server.get_host_and_port()[1]
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def restart_after(self, seconds: float) -> threading.Timer:
        """Start the (stopped) server again ``seconds`` from now, in another thread."""
        timer = threading.Timer(seconds, self.start)
        timer.start()
        return timer

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def options(self) -> dict[str, Any]:
        """s3fs storage options for this server. botocore's own retries are off (one attempt
        per call), so the store's retries are the ones tested; no region (moto's bucket creation
        fails with one)."""
        return {
            "endpoint_url": self.endpoint,
            "key": "testing",
            "secret": "testing",
            "config_kwargs": {
                "retries": {"total_max_attempts": 1},
                "connect_timeout": 2,
                "read_timeout": 20,
            },
        }

    def bucket(self) -> str:
        """A new empty bucket; its ``s3://`` URL."""
        import s3fs

        name = f"test-{uuid.uuid4().hex[:12]}"
        s3fs.S3FileSystem(skip_instance_cache=True, **self.options()).mkdir(name)
        return f"s3://{name}"


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """A running :class:`S3Server`, stopped on exit."""
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TimeLimitExceeded(BaseException):
    """A test ran past its time limit (a BaseException: retry loops must not swallow it)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in the main thread after ``seconds`` (POSIX timers)."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded(f"time limit of {seconds} s exceeded")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
