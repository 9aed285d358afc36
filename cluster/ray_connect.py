"""Starting or joining Ray for the executor: a local Ray on this machine, or a running cluster.

Process-wide state, the one exception to the rule that library calls leave none: starting a local
Ray sets :data:`LOCAL_ENV`'s unset variables while ``ray.init`` runs (Ray's processes inherit
them), and the Ray an executor started is stopped by its ``close``, or by a finalizer when the
executor is collected or the interpreter exits (:func:`stop_local`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

import ray

from routerbench.engine.errors import UsageError
from routerbench.engine.parallel import all_cores

# Set while a local Ray starts (its processes inherit them): no usage reporting and no auth token
# written under ~/.ray. The third keeps Ray on the loopback interface only where it is set before
# `ray` is imported (Ray reads it at import): in the environment of the command, as the tests do
# for the commands they start; set in-process here it reaches only the processes Ray starts.
LOCAL_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


def join(address: str, quiet: bool) -> None:
    """Connect to the running Ray cluster at ``address`` (``"auto"`` or ``HOST:PORT``)."""
    check_reachable(address)
    ray.init(address=address, **_options(quiet))


def start_local(object_store_memory: int, quiet: bool) -> str:
    """Start a local Ray on this machine's cores; its temporary folder (for :func:`stop_local`)."""
    tmpdir = tempfile.mkdtemp(prefix="rb-ray-")
    with environ(LOCAL_ENV):
        ray.init(
            num_cpus=all_cores(),
            include_dashboard=False,
            object_store_memory=object_store_memory,
            _temp_dir=tmpdir,
            **_options(quiet),
        )
    return tmpdir


def _options(quiet: bool) -> dict[str, Any]:
    return {"log_to_driver": not quiet, "logging_level": logging.WARNING}


def stop_local(tmpdir: str) -> None:
    """Stop the local Ray an executor started and remove its temporary folder."""
    ray.shutdown()
    shutil.rmtree(tmpdir, ignore_errors=True)


@contextlib.contextmanager
def environ(defaults: dict[str, str]) -> Iterator[None]:
    """Set the variables of ``defaults`` that are unset, for the duration of the block only."""
    added = {k: v for k, v in defaults.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def check_reachable(address: str) -> None:
    """Fail with one line unless something answers at the GCS address Ray would dial (a wrong
    address would otherwise leave ``ray.init`` retrying for minutes inside Ray's C++ client)."""
    from ray._private.services import canonicalize_bootstrap_address

    try:
        target = canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as e:
        raise UsageError(f"--address {address}: {e}") from None
    if target is None:
        raise UsageError(f"--address {address}: no running Ray cluster found")
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as e:
        raise UsageError(f"--address {address}: no Ray cluster answers at {target} ({e})") from None
