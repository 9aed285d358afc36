"""Read and write outcome data (:class:`RoutingData`) at any fsspec URL (path, file://, memory://,
s3://, ...).

:func:`load` detects the layout from the file name (``.pkl``/``.pickle``, ``.parquet``/``.pq``,
``.csv``) and the file's columns, or takes it from ``format=``:

- ``"upstream-wide"``: RouterBench's published pickles (``routerbench_0shot.pkl``, ``_5shot.pkl``):
  ``sample_id, prompt, eval_name``, one quality column per model named by the model (object dtype,
  floats in [0, 1] or NaN), ``<model>|total_cost``; ``<model>|model_response`` and
  ``oracle_model_to_route_to`` are ignored. Models are in the file's *response order* (the order
  of its ``|model_response`` columns, else of its ``|total_cost`` columns), which the original
  code uses for its model list and its tie-breaks; the published file's quality columns are
  alphabetical.
- ``"upstream-long"``: ``routerbench_raw.pkl``: one row per ``(sample_id, model_name)`` with
  ``performance`` and ``cost`` (plus ``prompt, eval_name``; other columns are ignored). Models in
  order of first appearance; a pair that is absent is a missing outcome (NaN quality and cost).
- ``"long"``: a generic long table, CSV or Parquet: ``prompt_id, model, quality, cost`` and
  optionally ``family, eval_name, latency, prompt, synthetic``; no other column. ``eval_name``
  defaults to ``family``, ``family`` to the one derived from ``eval_name``, and both to ``"all"``.
- ``"parquet"``: our lossless layout, ``routing-data/1`` (below). A Parquet file without its
  metadata is read as a generic long table.

Pickles are read with :func:`routerbench.engine.safepickle.safe_load`, never ``pickle.load``.
Every mistake in a file is a one-line :class:`DataError` naming the URL and the column or key.
A local path must name a regular file (not a folder, FIFO or device). Beyond the rules of
:class:`RoutingData`, a loaded table is refused when a quality is a subnormal float (between 0
and 2.2e-308: corruption, not a score), when a latency is infinite, and when costs (or latencies)
are so large that a sum of all of them (``max x prompts x models``) would overflow float64.

Layout ``routing-data/1``: one row per prompt, in the data's order.

==========  ==========================  ==============================================
column      Arrow type                  holds
==========  ==========================  ==============================================
prompt_id   string                      ``prompt_ids``
eval_name   string                      ``eval_names``
family      string                      ``families``
quality     fixed_size_list<double>[m]  ``quality[i, :]`` in model order (NaN = missing)
cost        fixed_size_list<double>[m]  ``cost[i, :]``
latency     fixed_size_list<double>[m]  ``latency[i, :]``, only if the data has latency
prompt      string                      ``prompts``, only if the data has prompts
features    fixed_size_list<double>[d]  ``features[i, :]``, only if it has features, d > 0
==========  ==========================  ==============================================

Row groups: at most ``ROW_GROUP_ROWS`` rows, never spanning two families when the rows are grouped
by family (``data convert`` and ``data synth`` write them grouped), so a Ray actor reads only its
own rows (:mod:`routerbench.engine.rowgroups`).

Schema metadata (UTF-8): ``routerbench.format = "routing-data/1"``, ``routerbench.models`` (JSON
list of the m model names, in order), ``routerbench.source``, ``routerbench.synthetic``
(``"true"``/``"false"``) and, if the data has features, ``routerbench.features_dim``.

:func:`save` writes that layout, the upstream pickles or the long table. A local file is written
to a temporary name in the same folder and renamed; any other URL gets one object, written after
the bytes are complete; on any error nothing is left behind.

The ``synthetic`` label survives every format :func:`save` writes; a file without its marker (any
file not written from synthetic data) loads as ``synthetic=False``, and the marker is never part
of :meth:`RoutingData.fingerprint`. ``routing-data/1`` always records it (``"true"`` or
``"false"``); the other formats carry a marker only for synthetic data, so a file of real data is
the same bytes as before the label existed:

- ``routing-data/1``: ``routerbench.synthetic`` (above);
- long Parquet: schema metadata ``routerbench.synthetic = "true"``;
- long CSV: a ``synthetic`` column, ``True`` on every row, so that any CSV reader (``pd.read_csv``
  as is, a spreadsheet) still reads the file, and a row copied out keeps its label. On reading,
  the column must hold the same ``true``/``false`` (any case) on every row;
- upstream pickles: ``DataFrame.attrs["routerbench.synthetic"] = True``, which ``pd.read_pickle``
  and :func:`safe_load` restore with the frame (the original code ignores it).
"""

from __future__ import annotations

import os
import pickle
import stat
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError, first_line
from routerbench.engine.io_parse import (
    _META,
    _SYNTHETIC,
    _TEXT_COLUMNS,
    _columns_checked,
    _from_long,
    _from_raw,
    _from_table,
    _from_wide,
)
from routerbench.engine.io_write import (
    _parquet_bytes,
    to_long_frame,
    to_table,
    to_upstream_long_frame,
    to_upstream_wide_frame,
)
from routerbench.engine.safepickle import safe_load
from routerbench.engine.storage import RETRY, user_errors, write_bytes

__all__ = [
    "FORMATS",
    "load",
    "save",
    "summarize",
    "to_long_frame",
    "to_table",
    "to_upstream_long_frame",
    "to_upstream_wide_frame",
]

FORMATS = ("upstream-wide", "upstream-long", "parquet", "long")
SUFFIXES = {  # file name ending -> the kind of file it is (read_file)
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}


# ------------------------------------------------------------------------------------ reading
def load(
    url: str, *, format: str | None = None, storage_options: dict[str, Any] | None = None
) -> RoutingData:
    """Read outcome data from ``url``; ``format`` (one of :data:`FORMATS`) overrides detection.

    >>> import numpy as np
    >>> d = RoutingData(quality=[[1.0, np.nan]], cost=[[0.1, np.nan]], models=["a", "b"],
    ...                 prompt_ids=["p0"], eval_names=["mmlu-x"])
    >>> save(d, "memory://doc/d.parquet")
    >>> e = load("memory://doc/d.parquet")
    >>> e.models, e.quality.tolist(), e.families.tolist()
    (('a', 'b'), [[1.0, nan]], ['mmlu'])
    """
    kind = _file_kind(url, format)
    obj = read_file(url, kind, storage_options, _read_outcomes_csv, "outcomes")
    try:
        return _parse(obj, url, kind, format)
    except (DataError, NameError, ImportError):  # ours, or a bug in this code: not the file's
        raise
    except Exception as exc:  # a value no check foresaw: still one line naming the file
        raise DataError(f"{url}: cannot use the table ({first_line(exc)})") from None


def _parse(obj: Any, url: str, kind: str, format: str | None) -> RoutingData:
    if kind == "pickle":
        frame = _columns_checked(obj, url)
        layout = format or ("upstream-long" if "model_name" in frame.columns else "upstream-wide")
        return _from_wide(frame, url) if layout == "upstream-wide" else _from_raw(frame, url)
    if kind == "csv":
        return _from_long(_columns_checked(obj, url), url)
    meta = obj.schema.metadata or {}
    synthetic = meta.get(_SYNTHETIC.encode()) == b"true"
    if _META + b"format" in meta and format != "long":
        return _from_table(obj, meta, url)
    if format == "parquet":
        raise DataError(
            f"{url}: not a routerbench Parquet file (no 'routerbench.format' schema metadata); "
            "pass format='long' for a long table"
        )
    return _from_long(_columns_checked(obj.to_pandas(use_threads=False), url), url, synthetic)


def _file_kind(url: str, format: str | None) -> str:
    suffix = os.path.splitext(url.rstrip("/"))[1].lower()
    if format is None:
        if suffix not in SUFFIXES:
            raise DataError(
                f"{url}: cannot tell the format from the file name; name it .pkl, .parquet or "
                f".csv, or pass format= one of {list(FORMATS)}"
            )
        return SUFFIXES[suffix]
    if format not in FORMATS:
        raise DataError(f"{url}: unknown format {format!r}; expected one of {list(FORMATS)}")
    if format.startswith("upstream"):
        return "pickle"
    return "csv" if format == "long" and suffix == ".csv" else "parquet"


_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def _open(url: str, storage_options: dict[str, Any] | None) -> Any:
    """The file at ``url``, opened for reading; a local path must be a regular file (a FIFO
    would block, a device never end)."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            what = next((name for test, name in _FILE_KINDS if test(mode)), "a device")
            raise DataError(f"{url}: is {what}, expected a regular file")
    return fs.open(path, "rb")


def read_file(
    url: str,
    kind: str,
    storage_options: dict[str, Any] | None,
    read_csv: Callable[[Any], Any],
    contents: str,
) -> Any:
    """The object at ``url`` as ``kind`` ("pickle": unpickled by the restricted unpickler;
    "parquet": an Arrow table; "csv": ``read_csv(file)``), transient storage errors retried.

    Every failure is one line naming ``url``: a missing or empty file, a wrong kind, an
    unreadable one (``contents`` says what the file should hold, for the empty-file message).
    """

    def read() -> Any:
        with open_checked(url, storage_options, kind, contents) as f:
            if kind == "pickle":
                return safe_load(f, name=url)
            if kind == "parquet":  # pyarrow reads the footer only
                return pq.read_table(f, use_threads=False)
            return read_csv(f)

    return retried(url, kind, read)


_WHAT = {"pickle": "pickle", "parquet": "Parquet file", "csv": "CSV file"}
T = TypeVar("T")


def open_checked(url: str, storage_options: dict[str, Any] | None, kind: str, contents: str) -> Any:
    """The file at ``url``, open at its start: a one-line :class:`DataError` when it is missing
    or empty, or (``kind`` "parquet") does not begin with Parquet's magic bytes."""
    try:
        f = _open(url, storage_options)
    except FileNotFoundError:
        raise DataError(f"{url}: file not found") from None
    try:
        head = f.read(4)
        if not head:
            raise DataError(f"{url}: empty file, expected a {_WHAT[kind]} of {contents}")
        if kind == "parquet" and head != b"PAR1":
            raise DataError(f"{url}: not a Parquet file (it must begin with PAR1)")
        f.seek(0)
        return f
    except BaseException:
        f.close()
        raise


def retried(url: str, kind: str, fn: Callable[[], T]) -> T:
    """``fn()`` reading ``url`` (a ``kind`` file), transient storage errors retried; any failure
    one line naming ``url``."""
    try:
        with user_errors(url):
            return RETRY.call(fn)
    except DataError:
        raise
    except Exception as exc:  # unreadable, truncated, wrong kind, unknown protocol: one line
        raise DataError(f"{url}: not a readable {_WHAT[kind]} ({first_line(exc)})") from None


def _read_outcomes_csv(f: Any) -> pd.DataFrame:
    return pd.read_csv(
        f,
        dtype=dict.fromkeys(_TEXT_COLUMNS, str),
        keep_default_na=False,
        na_values={c: ["", "NaN", "nan", "NA"] for c in ("quality", "cost", "latency")},
    )


def save(
    data: RoutingData,
    url: str,
    *,
    format: str = "parquet",
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Write ``data`` to ``url`` atomically; ``format`` is one of :data:`FORMATS` (``"long"``
    writes CSV when ``url`` ends in ``.csv``, else Parquet; the upstream layouts are pickles).

    >>> d = RoutingData(quality=[[1.0]], cost=[[0.1]], models=["a"], prompt_ids=["p0"],
    ...                 eval_names=["e"], source="mine")
    >>> save(d, "memory://doc/d.pkl", format="upstream-wide")
    >>> load("memory://doc/d.pkl").quality.tolist()
    [[1.0]]
    """
    if format not in FORMATS:
        raise DataError(f"{url}: unknown format {format!r}; expected one of {list(FORMATS)}")
    mark = data.synthetic  # the label's marker (module docstring), only for synthetic data
    if format == "parquet":
        payload = _parquet_bytes(to_table(data))
    elif format.startswith("upstream"):
        wide = format == "upstream-wide"
        frame = to_upstream_wide_frame(data) if wide else to_upstream_long_frame(data)
        frame.attrs = {_SYNTHETIC: True} if mark else {}
        payload = pickle.dumps(frame, protocol=4)
    elif url.lower().endswith(".csv"):
        frame = to_long_frame(data)
        if mark:
            frame["synthetic"] = True
        payload = frame.to_csv(index=False, lineterminator="\r\n").encode()
    else:
        table = pa.Table.from_pandas(to_long_frame(data), preserve_index=False)
        if mark:
            table = table.replace_schema_metadata({**table.schema.metadata, _SYNTHETIC: "true"})
        payload = _parquet_bytes(table)
    _write(url, payload, storage_options)


def _write(url: str, payload: bytes, storage_options: dict[str, Any] | None) -> None:
    """All or nothing, with the one retry policy (:func:`engine.storage.write_bytes`); any
    failure is one line naming the URL."""

    try:
        write_bytes(url, payload, storage_options)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{url}: cannot write: the folder does not exist") from None
    except Exception as exc:  # permissions, unknown protocol, a folder in the way, ...
        raise DataError(f"{url}: cannot write ({first_line(exc)})") from None


# ------------------------------------------------------------------------------------ summary
def summarize(data: RoutingData) -> pd.DataFrame:
    """One row per model: ``model, mean_quality, mean_cost, total_cost, n_missing`` (means over
    the known outcomes). ``attrs`` holds the totals: ``rows``, ``models``, ``families`` (name ->
    rows, in order of appearance), ``source``, ``synthetic``.

    >>> d = RoutingData(quality=[[1.0, 0.0], [0.5, float("nan")]], cost=[[0.2, 0.1], [0.4, 0.1]],
    ...                 models=["a", "b"], prompt_ids=["p0", "p1"], eval_names=["mmlu-x", "mbpp"])
    >>> s = summarize(d)
    >>> s["mean_quality"].tolist(), s["n_missing"].tolist(), s.attrs["families"]
    ([0.75, 0.0], [0, 1], {'mmlu': 1, 'mbpp': 1})
    """
    known = ~data.missing
    n_known = known.sum(axis=0)
    costs = np.isfinite(data.cost)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_q = np.where(known, data.quality, 0.0).sum(axis=0) / n_known
        total = np.where(costs, data.cost, 0.0).sum(axis=0)
        mean_c = total / costs.sum(axis=0)
    out = pd.DataFrame(
        {
            "model": list(data.models),
            "mean_quality": mean_q,
            "mean_cost": mean_c,
            "total_cost": total,
            "n_missing": data.n_prompts - n_known,
        }
    )
    counts = Counter(data.families.tolist())  # no fixed-width copy: one long name is n long
    out.attrs = {
        "rows": data.n_prompts,
        "models": data.n_models,
        "families": {f: counts[f] for f in data.family_names()},
        "source": data.source,
        "synthetic": data.synthetic,
    }
    return out
