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

Schema metadata (UTF-8): ``routerbench.format = "routing-data/1"``, ``routerbench.models`` (JSON
list of the m model names, in order), ``routerbench.source``, ``routerbench.synthetic``
(``"true"``/``"false"``) and, if the data has features, ``routerbench.features_dim``.

:func:`save` writes that layout, the upstream pickles or the long table. A local file is written
to a temporary name in the same folder and renamed; any other URL gets one object, written after
the bytes are complete; on any error nothing is left behind.

The ``synthetic`` label survives every format :func:`save` writes; a file without its marker (any
file not written from synthetic data) loads as ``synthetic=False``, and the marker is never part
of :meth:`RoutingData.fingerprint`. The marker is written only for synthetic data, so a file of
real data is the same bytes as before the label existed:

- ``routing-data/1``: ``routerbench.synthetic`` (above);
- long Parquet: schema metadata ``routerbench.synthetic = "true"``;
- long CSV: a ``synthetic`` column, ``True`` on every row, so that any CSV reader (``pd.read_csv``
  as is, a spreadsheet) still reads the file, and a row copied out keeps its label. On reading,
  the column must hold the same ``true``/``false`` (any case) on every row;
- upstream pickles: ``DataFrame.attrs["routerbench.synthetic"] = True``, which ``pd.read_pickle``
  and :func:`safe_load` restore with the frame (the original code ignores it).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import stat
from collections import Counter
from collections.abc import Sequence
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from routerbench.engine.data import DataError, RoutingData
from routerbench.engine.safepickle import safe_load

FORMATS = ("upstream-wide", "upstream-long", "parquet", "long")
LAYOUT = "routing-data/1"
NO_MODEL_CORRECT = "no_model_correct"
RESPONSE_PLACEHOLDER = "['<synthetic response>']"
PROMPT_PLACEHOLDER = "['<no prompt>']"

_SUFFIXES = {
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}
_WIDE_KEYS = ("sample_id", "prompt", "eval_name")
_ORACLE = "oracle_model_to_route_to"
_RAW_REQUIRED = ("sample_id", "prompt", "eval_name", "performance", "model_name", "cost")
_LONG_COLUMNS = (
    "prompt_id",
    "model",
    "quality",
    "cost",
    "family",
    "eval_name",
    "latency",
    "prompt",
    "synthetic",
)
_TEXT_COLUMNS = ("prompt_id", "model", "family", "eval_name", "prompt", "synthetic")
_NUMERIC_KINDS = {"floating", "integer", "mixed-integer-float", "empty"}
_TABLE_COLUMNS = ("prompt_id", "eval_name", "family", "quality", "cost", "latency", "prompt")
_META = b"routerbench."
_SYNTHETIC = "routerbench.synthetic"  # schema metadata key (bytes) and DataFrame.attrs key
_TINY = np.finfo(np.float64).tiny  # the smallest normal float64
_BIG = np.finfo(np.float64).max


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
    obj = _read(url, kind, storage_options)
    try:
        return _parse(obj, url, kind, format)
    except (DataError, NameError, ImportError):  # ours, or a bug in this code: not the file's
        raise
    except Exception as exc:  # a value no check foresaw: still one line naming the file
        raise DataError(f"{url}: cannot use the table ({_first_line(exc)})") from None


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
        if suffix not in _SUFFIXES:
            raise DataError(
                f"{url}: cannot tell the format from the file name; name it .pkl, .parquet or "
                f".csv, or pass format= one of {list(FORMATS)}"
            )
        return _SUFFIXES[suffix]
    if format not in FORMATS:
        raise DataError(f"{url}: unknown format {format!r}; expected one of {list(FORMATS)}")
    if format.startswith("upstream"):
        return "pickle"
    return "csv" if format == "long" and suffix == ".csv" else "parquet"


def _first_line(exc: BaseException) -> str:
    try:
        text = (str(exc).splitlines() or [""])[0][:200]
    except Exception:  # a message that cannot be shown (recursive, too long an int)
        text = "?"
    return f"{type(exc).__name__}: {text}"


def _show(value: object, limit: int = 80) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters (never raises)."""
    try:
        text = repr(value).replace("\n", " ")
    except Exception:  # too deep, too long an int
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


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


def _read(url: str, kind: str, storage_options: dict[str, Any] | None) -> Any:
    what = {"pickle": "pickle", "parquet": "Parquet file", "csv": "CSV file"}[kind]
    try:
        with _open(url, storage_options) as f:
            if kind == "pickle":
                return safe_load(f, name=url)
            if kind == "parquet":
                if f.read(4) != b"PAR1":  # pyarrow reads the footer only
                    raise DataError(f"{url}: not a Parquet file (it must begin with PAR1)")
                f.seek(0)
                return pq.read_table(f, use_threads=False)
            return pd.read_csv(
                f,
                dtype=dict.fromkeys(_TEXT_COLUMNS, str),
                keep_default_na=False,
                na_values={c: ["", "NaN", "nan", "NA"] for c in ("quality", "cost", "latency")},
            )
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{url}: file not found") from None
    except Exception as exc:  # unreadable, truncated, wrong kind, unknown protocol: one line
        raise DataError(f"{url}: not a readable {what} ({_first_line(exc)})") from None


def _columns_checked(obj: object, url: str) -> pd.DataFrame:
    """A DataFrame with unique string column names and at least one row."""
    if not isinstance(obj, pd.DataFrame):
        raise DataError(f"{url}: expected a pandas DataFrame, the file holds {type(obj).__name__}")
    names = [str(c) for c in obj.columns]
    if len(set(names)) != len(names):
        dup = next(c for c in names if names.count(c) > 1)
        raise DataError(f"{url}: column {_show(dup)} appears more than once")
    if len(obj) == 0:
        raise DataError(f"{url}: the table is empty (no rows)")
    obj.columns = pd.Index(names, dtype=object)
    return obj


def _require(frame: pd.DataFrame, url: str, columns: Sequence[str], layout: str) -> None:
    for col in columns:
        if col not in frame.columns:
            raise DataError(f"{url}: missing column {col!r} ({layout} needs {list(columns)})")


def _is_number(v: object) -> bool:
    if isinstance(v, bool | np.bool_):
        return False
    return isinstance(v, int | float | np.integer | np.floating) or v is None


def _as_float(v: object) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _numbers(series: pd.Series, url: str, col: str) -> np.ndarray:
    """The column as float64 (None/NaN -> NaN); a DataError unless every value is a number
    that a float64 holds."""
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind not in _NUMERIC_KINDS:  # show a value that is no number even as text
        bad = next((v for v in series if not _is_number(v) and not _as_float(v)), None)
        bad = next((v for v in series if not _is_number(v)), None) if bad is None else bad
        raise DataError(
            f"{url}: column {_show(col)} must hold numbers, found {kind} value {_show(bad)}"
        )
    try:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError, OverflowError):  # e.g. an int of 400 digits
        bad = next((v for v in series if not _as_float(v)), None)
        raise DataError(
            f"{url}: column {_show(col)} must hold numbers a float64 can hold, found {_show(bad)}"
        ) from None


_SCALAR_TEXT = (str, int, float, np.integer, np.floating)


def _strings(series: pd.Series, url: str, col: str, *, key: bool = False) -> np.ndarray:
    """The column as an object array of valid text (UTF-8 encodable); numbers become text; no
    missing values (and no "" in a key column)."""
    arr = series.to_numpy(dtype=object)
    missing = pd.isna(arr)
    if key:
        missing |= arr == ""
    if missing.any():
        i = int(np.argmax(missing))
        raise DataError(f"{url}: column {_show(col)} has a missing value at row {i}")
    if pd.api.types.infer_dtype(arr, skipna=False) != "string":
        bad = [v for v in arr if not isinstance(v, _SCALAR_TEXT) or isinstance(v, bool)][:1]
        if bad:
            raise DataError(
                f"{url}: column {_show(col)} must hold text, found {type(bad[0]).__name__} "
                f"{_show(bad[0])}"
            )
        arr = np.array([str(v) for v in arr], dtype=object)
    try:  # before pandas turns the column into Arrow strings, which would raise
        "".join(arr).encode("utf-8")
    except UnicodeEncodeError:
        i = next(i for i, v in enumerate(arr) if not _is_text(v))
        raise DataError(
            f"{url}: column {_show(col)} row {i} is not valid text (a lone surrogate): expected "
            "UTF-8 encodable strings"
        ) from None
    return arr


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_outcomes(
    url: str,
    q: np.ndarray,
    c: np.ndarray,
    where: tuple[str, np.ndarray],
    models: Sequence[str],
    columns: tuple[Sequence[str], Sequence[str]],
) -> None:
    """Quality in [0, 1] or NaN, and not subnormal (a corrupt value: no score is 1e-310); cost
    finite and >= 0, NaN only where quality is NaN too, small enough that a sum of all of them
    stays finite."""
    key, ids = where
    nan_note = " (NaN cost is allowed only for a missing outcome)"
    for arr, ok, cols, rule, note in (
        (q, np.isnan(q) | ((q >= 0) & (q <= 1)), columns[0], "quality in [0, 1] (or NaN)", ""),
        (
            c,
            (c >= 0) & (c < np.inf) | np.isnan(c) & np.isnan(q),
            columns[1],
            "costs >= 0",
            nan_note,
        ),
        (q, np.isnan(q) | (q == 0) | (q >= _TINY), columns[0], "no subnormal quality", ""),
    ):
        if not ok.all():
            i, j = np.argwhere(~ok)[0]
            raise DataError(
                f"{url}: column {_show(cols[j])} must hold {rule}, found {float(arr[i, j])!r} for "
                f"{key} {_show(ids[i])}, model {_show(models[j])}{note}"
            )
    _check_sums(url, c, "cost", models)


def _check_sums(url: str, values: np.ndarray, what: str, models: Sequence[str]) -> None:
    """A sum of every value (a bootstrap or cascade total at worst) must stay finite."""
    known = values[~np.isnan(values)]
    top = float(known.max()) if known.size else 0.0
    if top * values.size >= _BIG:
        j = int(np.nanargmax(values) % values.shape[1])
        raise DataError(
            f"{url}: {what} {top!r} of model {_show(models[j])} is too large: a sum over "
            f"{values.shape[0]} prompts x {values.shape[1]} models would overflow float64"
        )


def _latency(url: str, lat: np.ndarray, models: Sequence[str]) -> np.ndarray:
    """Latencies finite and >= 0 (or NaN), small enough that their sum stays finite."""
    if (lat < 0).any() or np.isinf(lat).any():
        raise DataError(f"{url}: column 'latency' must hold finite latencies >= 0 (or NaN)")
    _check_sums(url, lat, "latency", models)
    return lat


def _from_wide(frame: pd.DataFrame, url: str) -> RoutingData:
    layout = "the upstream wide layout"
    _require(frame, url, _WIDE_KEYS, layout)
    models = [c for c in frame.columns if "|" not in c and c not in (*_WIDE_KEYS, _ORACLE)]
    for col in frame.columns:
        model, bar, field = col.rpartition("|")
        if bar and field not in ("total_cost", "model_response"):
            raise DataError(
                f"{url}: unexpected column {col!r}: a per-model column ends in |total_cost or "
                "|model_response"
            )
        if bar and model not in models:
            raise DataError(f"{url}: column {col!r} has no quality column {model!r}")
    if not models:
        raise DataError(f"{url}: no quality columns (one per model, named by the model)")
    models = _response_order(frame, models)
    cost_cols = [f"{m}|total_cost" for m in models]
    _require(frame, url, cost_cols, layout)
    q = np.column_stack([_numbers(frame[m], url, m) for m in models])
    c = np.column_stack([_numbers(frame[col], url, col) for col in cost_cols])
    ids = _strings(frame["sample_id"], url, "sample_id", key=True)
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise DataError(f"{url}: column 'sample_id' must be unique, {_show(ids[dup][0])} repeats")
    _check_outcomes(url, q, c, ("sample_id", ids), models, (models, cost_cols))
    return RoutingData(
        quality=q,
        cost=c,
        models=tuple(models),
        prompt_ids=ids,
        eval_names=_strings(frame["eval_name"], url, "eval_name"),
        prompts=_strings(frame["prompt"], url, "prompt"),
        source=url,
        synthetic=frame.attrs.get(_SYNTHETIC) is True,
    )


def _response_order(frame: pd.DataFrame, models: list[str]) -> list[str]:
    """The models in the order of the ``|model_response`` columns (else ``|total_cost``): the
    original's model order; models without such a column follow, in quality-column order."""
    for field in ("model_response", "total_cost"):
        order = [c[: -len(field) - 1] for c in frame.columns if c.endswith("|" + field)]
        if order:
            known = [m for m in order if m in models]
            return known + [m for m in models if m not in known]
    return models


def _from_raw(frame: pd.DataFrame, url: str) -> RoutingData:
    _require(frame, url, _RAW_REQUIRED, "the upstream long layout")
    return _from_rows(
        frame,
        url,
        ("sample_id", "model_name", "performance", "cost"),
        {"eval_names": "eval_name", "prompts": "prompt"},
        synthetic=frame.attrs.get(_SYNTHETIC) is True,
    )


def _from_long(frame: pd.DataFrame, url: str, synthetic: bool = False) -> RoutingData:
    unknown = [c for c in frame.columns if c not in _LONG_COLUMNS]
    if unknown:
        raise DataError(
            f"{url}: unknown column {_show(unknown[0])}; a long table has the columns "
            f"{list(_LONG_COLUMNS)} (the first four required)"
        )
    _require(frame, url, _LONG_COLUMNS[:4], "a long table")
    names = frame.columns
    fields = {"families": "family", "prompts": "prompt"}
    per_prompt = {k: v for k, v in fields.items() if v in names}
    if "eval_name" in names or "family" in names:  # else eval_name = family = "all"
        per_prompt["eval_names"] = "eval_name" if "eval_name" in names else "family"
    return _from_rows(
        frame,
        url,
        ("prompt_id", "model", "quality", "cost"),
        per_prompt,
        latency="latency" if "latency" in names else None,
        synthetic=synthetic or _synthetic_column(frame, url),
    )


def _synthetic_column(frame: pd.DataFrame, url: str) -> bool:
    """The ``synthetic`` column's one value (False without the column)."""
    if "synthetic" not in frame.columns:
        return False
    values = {str(v).lower() for v in frame["synthetic"].to_numpy(dtype=object)}
    if len(values) != 1 or not values <= {"true", "false"}:
        raise DataError(
            f"{url}: column 'synthetic' must hold the same true/false on every row, found "
            f"{_show(sorted(values)[:2])}"
        )
    return values == {"true"}


def _from_rows(
    frame: pd.DataFrame,
    url: str,
    columns: tuple[str, str, str, str],
    per_prompt: dict[str, str],
    latency: str | None = None,
    synthetic: bool = False,
) -> RoutingData:
    """Pivot one row per (prompt, model) into [n, m] arrays; absent pairs are NaN."""
    key, model, quality, cost = columns
    ids = _strings(frame[key], url, key, key=True)
    names = _strings(frame[model], url, model, key=True)
    pc, prompt_ids = pd.factorize(ids)
    mc, models = pd.factorize(names)
    n, m = len(prompt_ids), len(models)
    cell = pc * m + mc
    order = np.argsort(cell, kind="stable")
    dup = np.flatnonzero(cell[order][1:] == cell[order][:-1])
    if dup.size:
        r0, r1 = order[dup[0]], order[dup[0] + 1]
        raise DataError(
            f"{url}: ({key}, {model}) pair ({_show(ids[r0])}, {_show(names[r0])}) appears twice, "
            f"at rows {r0} and {r1}; each pair may appear once"
        )

    def grid(values: np.ndarray) -> np.ndarray:
        out = np.full(n * m, np.nan)
        out[cell] = values
        return out.reshape(n, m)

    q = grid(_numbers(frame[quality], url, quality))
    c = grid(_numbers(frame[cost], url, cost))
    _check_outcomes(
        url, q, c, (key, np.asarray(prompt_ids)), list(models), ([quality] * m, [cost] * m)
    )
    lat = None
    if latency is not None:
        lat = _latency(url, grid(_numbers(frame[latency], url, latency)), list(models))
    first = np.unique(pc, return_index=True)[1]  # first row of each prompt
    fields: dict[str, np.ndarray] = {}
    for field, col in per_prompt.items():
        vals = _strings(frame[col], url, col)
        differs = np.flatnonzero(vals[first][pc] != vals)
        if differs.size:
            r = differs[0]
            raise DataError(
                f"{url}: column {col!r} must be the same on every row of {key} {_show(ids[r])}, "
                f"found {_show(vals[first[pc[r]]])} and {_show(vals[r])}"
            )
        fields[field] = vals[first]
    return RoutingData(
        quality=q,
        cost=c,
        models=tuple(models),
        prompt_ids=np.asarray(prompt_ids, dtype=object),
        eval_names=fields.get("eval_names", np.full(n, "all", dtype=object)),
        families=fields.get("families"),  # type: ignore[arg-type]  # None: derived
        prompts=fields.get("prompts"),
        latency=lat,
        source=url,
        synthetic=synthetic,
    )


def _meta_text(meta: dict[bytes, bytes], key: str, url: str) -> str | None:
    """Schema metadata ``routerbench.<key>`` as text (None if absent)."""
    raw = meta.get(_META + key.encode())
    try:
        return None if raw is None else raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{url}: schema metadata 'routerbench.{key}' must be UTF-8 text") from None


def _from_table(table: pa.Table, meta: dict[bytes, bytes], url: str) -> RoutingData:
    version = _meta_text(meta, "format", url)
    if version != LAYOUT:
        raise DataError(
            f"{url}: routerbench.format is {_show(version)}; this version reads {LAYOUT!r}"
        )
    try:
        models = json.loads(_meta_text(meta, "models", url) or "")
    except (ValueError, RecursionError):
        models = None
    if not isinstance(models, list) or not models or not all(isinstance(x, str) for x in models):
        raise DataError(f"{url}: schema metadata 'routerbench.models' must be a JSON list of names")
    dim_text = _meta_text(meta, "features_dim", url)
    if dim_text is not None and not re.fullmatch("[0-9]{1,9}", dim_text):
        raise DataError(
            f"{url}: schema metadata 'routerbench.features_dim' must be an integer >= 0, found "
            f"{_show(dim_text)}"
        )
    dim = -1 if dim_text is None else int(dim_text)
    unknown = [c for c in table.column_names if c not in (*_TABLE_COLUMNS, "features")]
    if unknown:
        raise DataError(f"{url}: unknown column {_show(unknown[0])} in a {LAYOUT} file")
    n, m = table.num_rows, len(models)
    if n == 0:
        raise DataError(f"{url}: the table is empty (no rows)")
    _require_arrow(table, url, _TABLE_COLUMNS[:5])

    def text(col: str) -> np.ndarray:
        arr = table.column(col)
        if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
            raise DataError(f"{url}: column {col!r} must be of type string, found {arr.type}")
        if arr.null_count:
            raise DataError(f"{url}: column {col!r} has {arr.null_count} missing values")
        return _strings(pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object), url, col)

    def matrix(col: str, width: int) -> np.ndarray:
        arr = table.column(col)
        t = arr.type
        fixed = pa.types.is_fixed_size_list(t) and t.list_size == width
        if not (fixed and pa.types.is_floating(t.value_type)) or arr.null_count:
            raise DataError(
                f"{url}: column {col!r} must be fixed_size_list<double>[{width}] without nulls, "
                f"found {t}"
            )
        flat = arr.combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return np.asarray(flat, dtype=np.float64).reshape(n, width)

    ids = text("prompt_id")
    q, c = matrix("quality", m), matrix("cost", m)
    _check_outcomes(url, q, c, ("prompt_id", ids), models, (["quality"] * m, ["cost"] * m))
    features = None
    if dim > 0:
        _require_arrow(table, url, ["features"])
        features = matrix("features", dim)
    elif dim == 0:
        features = np.empty((n, 0))
    names = table.column_names
    source = _meta_text(meta, "source", url)
    fields: dict[str, Any] = {
        "eval_names": text("eval_name"),
        "families": text("family"),
        "prompts": text("prompt") if "prompt" in names else None,
        "latency": _latency(url, matrix("latency", m), models) if "latency" in names else None,
    }
    try:
        return RoutingData(
            quality=q,
            cost=c,
            models=tuple(models),
            prompt_ids=ids,
            features=features,
            source=url if source is None else source,
            synthetic=meta.get(_META + b"synthetic") == b"true",
            features_source=_meta_text(meta, "features_source", url) or "",
            **fields,
        )
    except DataError as exc:  # the stored source is not the file being read: name the file
        raise DataError(f"{url}: {exc}") from None


def _require_arrow(table: pa.Table, url: str, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in table.column_names:
            raise DataError(f"{url}: missing column {col!r} ({LAYOUT} needs {list(columns)})")


# ------------------------------------------------------------------------------------ writing
def _objects(values: Sequence[Any] | np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=object), dtype=object)


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    """A DataFrame with an object-dtype column index, as pandas < 3 wrote them."""
    frame = pd.DataFrame(columns)
    frame.columns = pd.Index(list(columns), dtype=object)
    return frame


def _turns(prompts: np.ndarray | None, n: int) -> list[str]:
    """The ``prompt`` column: the repr of a list of turns (kept if it already is one)."""
    if prompts is None:
        return [PROMPT_PLACEHOLDER] * n
    return [p if p[:2] in ("['", '["') and p[-2:] in ("']", '"]') else repr([p]) for p in prompts]


def _oracle(q: np.ndarray, c: np.ndarray, models: Sequence[str]) -> np.ndarray:
    """Per prompt: among the best-scoring models the cheapest (first in model order on ties);
    ``no_model_correct`` when the best score is 0 (or every score is missing)."""
    qq = np.where(np.isnan(q), -np.inf, q)
    best = qq.max(axis=1)
    pick = np.where(qq == best[:, None], c, np.inf).argmin(axis=1)
    return np.where(best > 0, np.asarray(models, dtype=object)[pick], NO_MODEL_CORRECT)


def to_upstream_wide_frame(data: RoutingData) -> pd.DataFrame:
    """The published wide schema: ``sample_id, prompt, eval_name``, one quality column per model
    (object dtype of Python floats), ``<model>|model_response`` (a placeholder),
    ``<model>|total_cost``, ``oracle_model_to_route_to``. As in the published file, the quality
    columns are alphabetical and the per-model columns in the data's model order (the response
    order, which :func:`load` takes back as the model order).

    >>> d = RoutingData(quality=[[1.0, 1.0], [0.0, 0.0]], cost=[[0.3, 0.1], [0.1, 0.2]],
    ...                 models=["b", "a"], prompt_ids=["p0", "p1"], eval_names=["e", "e"])
    >>> f = to_upstream_wide_frame(d)
    >>> list(f.columns)[3:], f["oracle_model_to_route_to"].tolist()
    (['a', 'b', 'b|model_response', 'a|model_response', 'b|total_cost', 'a|total_cost', \
'oracle_model_to_route_to'], ['a', 'no_model_correct'])
    """
    n = data.n_prompts
    cols: dict[str, Any] = {
        "sample_id": _objects(data.prompt_ids),
        "prompt": _objects(_turns(data.prompts, n)),
        "eval_name": _objects(data.eval_names),
    }
    for model in sorted(data.models):
        j = data.models.index(model)
        cols[model] = pd.Series(data.quality[:, j].tolist(), dtype=object)
    for model in data.models:
        cols[f"{model}|model_response"] = _objects([RESPONSE_PLACEHOLDER] * n)
    for j, model in enumerate(data.models):
        cols[f"{model}|total_cost"] = data.cost[:, j]
    cols[_ORACLE] = _objects(_oracle(data.quality, data.cost, data.models))
    return _frame(cols)


def to_upstream_long_frame(data: RoutingData) -> pd.DataFrame:
    """The published raw schema (``sample_id, prompt, eval_name, performance, model_response,
    model_name, cost``), one row per known outcome; a missing outcome has no row."""
    rows, cols = np.nonzero(~data.missing)
    return _frame(
        {
            "sample_id": _objects(data.prompt_ids[rows]),
            "prompt": _objects(np.asarray(_turns(data.prompts, data.n_prompts), object)[rows]),
            "eval_name": _objects(data.eval_names[rows]),
            "performance": data.quality[rows, cols],
            "model_response": _objects([RESPONSE_PLACEHOLDER] * len(rows)),
            "model_name": _objects(np.asarray(data.models, dtype=object)[cols]),
            "cost": data.cost[rows, cols],
        }
    )


def to_long_frame(data: RoutingData) -> pd.DataFrame:
    """The generic long table: one row per (prompt, model), prompt-major, missing outcomes kept
    as NaN; ``latency`` and ``prompt`` columns only when the data has them."""
    n, m = data.quality.shape
    rows = np.repeat(np.arange(n), m)
    cols: dict[str, Any] = {
        "prompt_id": _objects(data.prompt_ids[rows]),
        "model": _objects(np.tile(np.asarray(data.models, dtype=object), n)),
        "quality": data.quality.ravel(),
        "cost": data.cost.ravel(),
        "family": _objects(data.families[rows]),
        "eval_name": _objects(data.eval_names[rows]),
    }
    if data.latency is not None:
        cols["latency"] = data.latency.ravel()
    if data.prompts is not None:
        cols["prompt"] = _objects(data.prompts[rows])
    return _frame(cols)


def _fixed(matrix: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), matrix.shape[1])


def to_table(data: RoutingData) -> pa.Table:
    """``data`` in the ``routing-data/1`` layout (see the module docstring)."""
    cols: dict[str, pa.Array] = {
        "prompt_id": pa.array(data.prompt_ids.tolist(), pa.string()),
        "eval_name": pa.array(data.eval_names.tolist(), pa.string()),
        "family": pa.array(data.families.tolist(), pa.string()),
        "quality": _fixed(data.quality),
        "cost": _fixed(data.cost),
    }
    meta = {
        "format": LAYOUT,
        "models": json.dumps(list(data.models)),
        "source": data.source,
        "synthetic": "true" if data.synthetic else "false",
        "features_source": data.features_source,
    }
    if data.latency is not None:
        cols["latency"] = _fixed(data.latency)
    if data.prompts is not None:
        cols["prompt"] = pa.array(data.prompts.tolist(), pa.string())
    if data.features is not None:
        meta["features_dim"] = str(data.features.shape[1])
        if data.features.shape[1]:
            cols["features"] = _fixed(data.features)
    return pa.table(cols).replace_schema_metadata({f"routerbench.{k}": v for k, v in meta.items()})


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


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
    from routerbench.engine.storage import write_bytes

    try:
        write_bytes(url, payload, storage_options)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{url}: cannot write: the folder does not exist") from None
    except Exception as exc:  # permissions, unknown protocol, a folder in the way, ...
        raise DataError(f"{url}: cannot write ({_first_line(exc)})") from None


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
