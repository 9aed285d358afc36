"""Resumable runs: each finished cell is stored as one object, and a rerun skips stored cells.

A run folder ``<out>/<run id>/`` holds ``cells/<cell id>.npz`` (one per finished cell, written
once, whole) while the run is going, and ``manifest.json`` (written last) once it is complete::

    store = CellStore(run_url, storage_options, inputs=inputs_key(spec.hash, data.fingerprint()))
    run_grid(spec, plan, skip=store.load, on_result=store.save)

A cell object is a NumPy ``.npz`` archive (read with ``allow_pickle=False``: no pickle): ``meta``
is UTF-8 JSON (the cell, its points rows, the inputs key, the families of its arrays and the
``content_sha256`` of all of it, checked on load: :func:`content_hash`) and
``exact_cost_<i>``, ``exact_quality_<i>``, ``boot_cost_<i>``, ``boot_quality_<i>`` are the arrays
of the i-th family listed there. Floats round-trip exactly, so a resumed run has the same numbers
as an uninterrupted one. A cell with a failed family is not stored: a rerun tries it again.

The default run id is deterministic (:func:`default_run_id`): the same spec, data and code versions
give the same folder, so running a spec again on the same URL resumes it; a new spec, new data or
a new version of the code gives a new folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from routerbench.engine import storage
from routerbench.engine.errors import DataError
from routerbench.sweeps.cells import Cell, CellResult
from routerbench.sweeps.runs import CELLS, LOCK, MANIFEST

FORMAT = 2
# Packages whose version can change a run's numbers.
VERSIONED = ("routerbench", "numpy", "scipy", "scikit-learn", "optuna")
# Our packages whose code computes the numbers (the executor only places the work: results are
# bit-identical on any executor, so cluster/ is left out and editing the CLI keeps run ids).
COMPUTING = ("routerbench.engine", "routerbench.routers", "routerbench.sweeps")


@functools.cache
def source_hash() -> str:
    """sha256 of the source files of :data:`COMPUTING` (``.py`` and ``.toml``, by relative path):
    the code version of a checkout, which a package version alone does not change. A link whose
    file is gone (an editable install's link to a deleted or renamed source) is left out."""
    from importlib import import_module
    from pathlib import Path

    h = hashlib.sha256()
    for pkg in COMPUTING:
        root = Path(import_module(pkg).__file__ or "").parent
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".toml")):
            if not path.exists():  # a dangling link
                continue
            rel = f"{pkg}/{path.relative_to(root).as_posix()}".encode()
            body = path.read_bytes()
            h.update(b"%d:%s%d:" % (len(rel), rel, len(body)) + body)
    return h.hexdigest()[:16]


def code_versions() -> dict[str, str]:
    """What a run's numbers depend on besides spec and data: the installed versions of
    :data:`VERSIONED` and our computing code's :func:`source_hash`."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"routerbench-source": source_hash()}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def inputs_key(
    spec_hash: str, data_fingerprint: str, versions: dict[str, str] | None = None
) -> str:
    """What a run's results depend on, as one string: spec hash, data fingerprint (every part
    of the data, see :meth:`RoutingData.fingerprint`) and code versions (:func:`code_versions`).
    Never executor, shard or worker counts: they do not change the numbers."""
    v = code_versions() if versions is None else versions
    return "|".join([spec_hash, data_fingerprint, *(f"{k}={v[k]}" for k in sorted(v))])


def default_run_id(
    spec_hash: str, data_fingerprint: str, versions: dict[str, str] | None = None
) -> str:
    """Deterministic run id ``<spec hash>-<hash of spec, data and code versions>``."""
    key = inputs_key(spec_hash, data_fingerprint, versions)
    return f"{spec_hash[:12]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


@contextlib.contextmanager
def run_lock(run_url: str) -> Iterator[None]:
    """Hold the run folder for this process: a second ``run`` into the same folder (the same
    study, the same cells) is refused in one line instead of doubling the work or the trial
    budget. Local folders only (an OS lock, released when the process ends, even if killed);
    on object stores the store's own writes stay atomic but nothing is locked."""
    if not storage.is_local(run_url):
        yield
        return
    import fcntl

    path = run_url.removeprefix("file://")
    created = not os.path.exists(path)
    os.makedirs(path, exist_ok=True)
    lock = os.path.join(path, LOCK)
    held = False
    try:
        with open(lock, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DataError(
                    f"{run_url}: another routerbench run is writing this run folder now; wait "
                    "for it to finish (running again then resumes or reuses it)"
                ) from None
            held = True
            yield
    except BaseException:
        # This process made the folder, held its lock and failed before writing anything: no
        # trace is left (a process that did not get the lock never touches it).
        if held and created and os.listdir(path) == [LOCK]:
            os.unlink(lock)
            os.rmdir(path)
        raise


def is_complete(run_url: str, storage_options: dict[str, Any] | None = None) -> bool:
    """Whether a run folder is complete: its ``manifest.json`` (written last) exists."""
    return storage.exists(storage.join(run_url, MANIFEST), storage_options)


def content_hash(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """sha256 of a cell's content: its meta (less this hash) and every array's name, dtype,
    shape and bytes. Stored in the cell; a cell whose content no longer hashes to it is refused."""
    h = hashlib.sha256()
    body = {k: v for k, v in meta.items() if k != "content_sha256"}
    h.update(json.dumps(body, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"|{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class CellStore:
    """Finished cells of one run, one object each under ``<run_url>/cells/``.

    ``inputs`` (see :func:`inputs_key`) is recorded in every cell; loading a cell recorded with
    other inputs raises :class:`DataError` rather than mixing results of two different runs.
    """

    def __init__(
        self,
        run_url: str,
        storage_options: dict[str, Any] | None = None,
        *,
        inputs: str = "",
        retry: storage.Retry = storage.RETRY,
    ) -> None:
        self.run_url = run_url
        self.storage_options = storage_options
        self.inputs = inputs
        self.retry = retry
        self._stored: set[str] | None = None  # cell ids, listed once (see stored)
        self.hashes: dict[str, str] = {}  # sha256 of each cell object saved or loaded (manifest)

    def url(self, cell: Cell) -> str:
        """Where a cell's object goes."""
        return storage.join(self.run_url, CELLS, f"{cell.cell_id}.npz")

    def stored(self) -> list[str]:
        """Sorted ids of the cells stored so far."""
        return sorted(self._ids())

    def _ids(self) -> set[str]:
        """The stored cell ids: the folder is listed once, then this store's saves add to it."""
        if self._stored is None:
            names = storage.list_dir(
                storage.join(self.run_url, CELLS), self.storage_options, retry=self.retry
            )
            self._stored = {n.removesuffix(".npz") for n in names if n.endswith(".npz")}
        return self._stored

    def save(self, result: CellResult) -> None:
        """Store a finished cell as one object (nothing if a family of it failed)."""
        if not result.rows or any(r["status"] != "ok" for r in result.rows):
            return
        fams = sorted(set(result.exact) | set(result.boot))
        meta: dict[str, Any] = {
            "format": FORMAT,
            "inputs": self.inputs,
            "cell_id": result.cell.cell_id,
            "cell": {
                "index": result.cell.index,
                "router": result.cell.router,
                "params": result.cell.params_json,
                "split": result.cell.split,
                "knobs": result.cell.knobs,
            },
            "rows": result.rows,
            "exact": [f for f in fams if f in result.exact],
            "boot": [f for f in fams if f in result.boot],
        }
        arrays: dict[str, np.ndarray] = {}
        for kind, table in (("exact", result.exact), ("boot", result.boot)):
            for i, fam in enumerate(meta[kind]):
                arrays[f"{kind}_cost_{i}"], arrays[f"{kind}_quality_{i}"] = table[fam]
        meta["content_sha256"] = content_hash(meta, arrays)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)
        raw = buf.getvalue()
        storage.write_bytes(self.url(result.cell), raw, self.storage_options, retry=self.retry)
        self.hashes[result.cell.cell_id] = hashlib.sha256(raw).hexdigest()
        self._ids().add(result.cell.cell_id)

    def load(self, cell: Cell) -> CellResult | None:
        """The stored result of a cell, or None if it has not finished (``run_grid``'s ``skip``)."""
        if cell.cell_id not in self._ids():
            return None
        url = self.url(cell)
        try:
            raw = storage.read_bytes(url, self.storage_options, retry=self.retry)
        except FileNotFoundError:
            return None
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                meta = json.loads(z["meta"].tobytes())
                if meta.get("format") != FORMAT or meta.get("cell_id") != cell.cell_id:
                    raise ValueError(f"format {meta.get('format')}, cell {meta.get('cell_id')}")
                res = CellResult(cell, rows=meta["rows"])
                arrays = {name: z[name] for name in z.files if name != "meta"}
                for kind, table in (("exact", res.exact), ("boot", res.boot)):
                    for i, fam in enumerate(meta[kind]):
                        table[fam] = (arrays[f"{kind}_cost_{i}"], arrays[f"{kind}_quality_{i}"])
        except (ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
            raise DataError(
                f"{url}: not a readable cell result ({type(e).__name__}: {e}); delete it to "
                "evaluate the cell again"
            ) from None
        if meta.get("inputs") != self.inputs:
            raise DataError(
                f"{url}: stored for other inputs ({meta.get('inputs')!r}, expected "
                f"{self.inputs!r}); use a new run id or output URL"
            )
        if meta.get("content_sha256") != content_hash(meta, arrays):
            raise DataError(
                f"{url}: content does not match its content_sha256 (changed after it was "
                "written); delete it to evaluate the cell again"
            )
        self.hashes[cell.cell_id] = hashlib.sha256(raw).hexdigest()
        return res
