"""A run's outputs: written whole with their content hashes, read back only when they agree.

A complete run folder holds ``points.parquet``, ``curves.parquet`` (and ``trials.parquet`` for an
Optuna search), ``spec.toml``, ``plots/`` and ``manifest.json``, written last. Each table carries
the run's provenance (:data:`PROVENANCE`) in its Parquet metadata (``routerbench.run``): the
tables, not the manifest, are the truth for what they contain. The manifest lists the sha256 of
every table and of every stored cell object (``cells``, for audit: a cell object is checked
against its own ``content_sha256`` when a resumed run reads it).

:func:`read_run` refuses, in one line naming the file, a run whose files disagree: a table whose
bytes do not hash to the manifest's entry (rewritten or truncated), a table that is not Parquet,
a manifest whose provenance differs from the tables' (``synthetic``, ``data_fingerprint``, ...),
or a ``failed_rows`` count that is not the number of failed rows in ``points.parquet``.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from routerbench.engine import storage
from routerbench.engine.errors import DataError

# The names in a run folder that routerbench writes besides the tables, spec and plots.
MANIFEST = "manifest.json"  # written last: the run is complete
CELLS = "cells"  # the finished cells of a run going on, one object each (sweeps.resume)
JOURNAL = "study.journal"  # an Optuna search's journal (sweeps.search)
LOCK = ".lock"  # held by the process writing a local run folder (sweeps.resume.run_lock)
TABLES = ("points", "curves", "trials")
# What a table's metadata and the manifest must agree on.
PROVENANCE = ("run_id", "spec_hash", "data_fingerprint", "synthetic")
_META = b"routerbench.run"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def table_bytes(df: pd.DataFrame, provenance: dict[str, Any]) -> bytes:
    """A frame as Parquet bytes with the run's provenance in the schema metadata."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_META] = json.dumps({k: provenance[k] for k in PROVENANCE}, sort_keys=True).encode()
    buf = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), buf)
    return buf.getvalue()


def write_tables(
    out: str,
    tables: dict[str, pd.DataFrame],
    provenance: dict[str, Any],
    storage_options: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Write each table as ``<out>/<name>.parquet`` (provenance columns and metadata added);
    return the sha256 of each written object, for the manifest."""
    cols = {k: provenance[k] for k in ("run_id", "spec_hash", "data_fingerprint")}
    hashes = {}
    for name, df in tables.items():
        raw = table_bytes(df.assign(**cols), provenance)
        storage.write_bytes(storage.join(out, f"{name}.parquet"), raw, storage_options)
        hashes[f"{name}.parquet"] = sha256(raw)
    return hashes


@dataclass(frozen=True)
class Run:
    """A complete run, checked: its manifest and tables (``trials`` None without a search)."""

    url: str
    manifest: dict[str, Any]
    points: pd.DataFrame
    curves: pd.DataFrame
    trials: pd.DataFrame | None


def read_manifest(url: str, raw: bytes) -> dict[str, Any]:
    """Parse a run's manifest (``url`` names the run folder in errors)."""
    where = storage.join(url, MANIFEST)
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("tables"), dict):
        raise DataError(
            f"{where}: expected an object with a 'tables' entry (the sha256 of each table); "
            "written by another version of routerbench? Run the spec again into a new folder"
        )
    return manifest


def check_run(url: str, manifest: dict[str, Any], raw: dict[str, bytes]) -> Run:
    """Check a run's tables (``raw``: bytes by file name) against its manifest; parse them."""
    listed: dict[str, Any] = manifest["tables"]
    frames: dict[str, pd.DataFrame] = {}
    for name in (f"{t}.parquet" for t in TABLES):
        if name not in raw:  # points and curves are required below; trials only if read
            continue
        where = storage.join(url, name)
        if listed.get(name) != sha256(raw[name]):
            raise DataError(
                f"{where}: content does not match the sha256 in {MANIFEST} (changed or "
                "truncated after the run; delete the run folder to run it again)"
            )
        try:
            table = pq.read_table(pa.BufferReader(raw[name]), use_threads=False)
            meta = json.loads((table.schema.metadata or {})[_META])
        except (pa.ArrowException, KeyError, ValueError) as e:
            raise DataError(f"{where}: not a routerbench results table ({e})") from None
        for key in PROVENANCE:
            if manifest.get(key) != meta.get(key):
                raise DataError(
                    f"{storage.join(url, MANIFEST)}: {key} = {manifest.get(key)!r}, but {name} "
                    f"was written with {meta.get(key)!r}"
                )
        frames[name] = table.to_pandas(use_threads=False)
    for name in ("points.parquet", "curves.parquet"):
        if name not in frames:
            raise DataError(f"{storage.join(url, name)}: missing (expected in a complete run)")
    failed = int((frames["points.parquet"]["status"] == "failed").sum())
    if manifest.get("failed_rows") != failed:
        raise DataError(
            f"{storage.join(url, MANIFEST)}: failed_rows = {manifest.get('failed_rows')!r}, but "
            f"points.parquet has {failed} failed rows"
        )
    return Run(
        url,
        manifest,
        frames["points.parquet"],
        frames["curves.parquet"],
        frames.get("trials.parquet"),
    )


def read_run(url: str, storage_options: dict[str, Any] | None = None) -> Run:
    """Read and check a complete run folder (see the module docstring)."""
    with storage.user_errors(url):
        try:
            manifest = read_manifest(
                url, storage.read_bytes(storage.join(url, MANIFEST), storage_options)
            )
        except FileNotFoundError:
            raise DataError(
                f"{url}: not a completed run (no {MANIFEST}); expected a folder written by "
                "'routerbench run'"
            ) from None
        raw = {}
        for name in manifest["tables"]:
            if name not in {f"{t}.parquet" for t in TABLES}:
                raise DataError(f"{storage.join(url, MANIFEST)}: unknown table {name!r}")
            try:
                raw[name] = storage.read_bytes(storage.join(url, name), storage_options)
            except FileNotFoundError:
                raise DataError(
                    f"{storage.join(url, name)}: listed in {MANIFEST} but missing"
                ) from None
    return check_run(url, manifest, raw)


def routerbench_version() -> str:
    """The installed routerbench's version (``0+unknown`` when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("routerbench")
    except PackageNotFoundError:
        return "0+unknown"
