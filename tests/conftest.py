"""Shared test settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

# CI runs are reproducible: Hypothesis draws the same examples every time (derandomize), with no
# per-example deadline on a loaded 2-core machine. Locally, examples vary from run to run.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """A moto S3 server on 127.0.0.1 for the module's tests (``s3server.S3Server``)."""
    from s3server import s3_server, time_limit

    with time_limit(60), s3_server() as server:
        yield server
