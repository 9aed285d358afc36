"""The results store: every output goes through fsspec to a URL (local folder, ``s3://``, ...).

Each object is written once, whole: a local file is written under a temporary name in the same
folder and renamed into place; a remote object is built fully in memory and sent as one PUT, so a
reader never sees a half-written file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from typing import Any

import fsspec
import pandas as pd


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def write_bytes(url: str, data: bytes, storage_options: dict[str, Any] | None = None) -> None:
    """Write ``data`` to ``url`` atomically (all or nothing)."""
    if is_local(url):
        path = url.removeprefix("file://")
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return
    with fsspec.open(url, "wb", **(storage_options or {})) as f:
        f.write(data)


def write_table(url: str, df: pd.DataFrame, storage_options: dict[str, Any] | None = None) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    write_bytes(url, buf.getvalue(), storage_options)


def write_json(url: str, obj: Any, storage_options: dict[str, Any] | None = None) -> None:
    write_bytes(url, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), storage_options)


def read_table(url: str, storage_options: dict[str, Any] | None = None) -> pd.DataFrame:
    with fsspec.open(url, "rb", **(storage_options or {})) as f:
        return pd.read_parquet(f)
