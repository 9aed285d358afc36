"""Reading outcome tables: the checks every column goes through and the parsers of each layout
(the original's wide and long pickles, long tables, our Parquet).

The entry point is :func:`routerbench.engine.io.load`, which documents the formats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError

LAYOUT = "routing-data/1"
NO_MODEL_CORRECT = "no_model_correct"
_WIDE_KEYS = ("sample_id", "prompt", "eval_name")
_ORACLE = "oracle_model_to_route_to"
_RAW_REQUIRED = ("sample_id", "prompt", "eval_name", "performance", "model_name", "cost")
_LONG_REQUIRED = ("prompt_id", "model", "quality", "cost")
_LONG_COLUMNS = (*_LONG_REQUIRED, "family", "eval_name", "latency", "prompt", "synthetic")
_TEXT_COLUMNS = ("prompt_id", "model", "family", "eval_name", "prompt", "synthetic")
_NUMERIC_KINDS = {"floating", "integer", "mixed-integer-float", "empty"}
_TABLE_COLUMNS = ("prompt_id", "eval_name", "family", "quality", "cost", "latency", "prompt")
_META = b"routerbench."
_SYNTHETIC = "routerbench.synthetic"  # schema metadata key (bytes) and DataFrame.attrs key
_TINY = np.finfo(np.float64).tiny  # the smallest normal float64
_BIG = np.finfo(np.float64).max


def _show(value: object, limit: int = 80) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters (never raises)."""
    try:
        text = repr(value).replace("\n", " ")
    except Exception:  # too deep, too long an int
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


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


def _require(names: Container[str], url: str, columns: Sequence[str], layout: str) -> None:
    """Every one of ``columns`` is among the column ``names`` of a ``layout`` file."""
    for col in columns:
        if col not in names:
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
    _require(frame.columns, url, _WIDE_KEYS, layout)
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
    _require(frame.columns, url, cost_cols, layout)
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
    _require(frame.columns, url, _RAW_REQUIRED, "the upstream long layout")
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
    _require(frame.columns, url, _LONG_REQUIRED, "a long table")
    names = frame.columns
    fields = {"families": "family", "prompts": "prompt"}
    per_prompt = {k: v for k, v in fields.items() if v in names}
    if "eval_name" in names or "family" in names:  # else eval_name = family = "all"
        per_prompt["eval_names"] = "eval_name" if "eval_name" in names else "family"
    return _from_rows(
        frame,
        url,
        _LONG_REQUIRED,
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
    fields = _per_prompt(frame, url, per_prompt, (key, ids), pc)
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


def _per_prompt(
    frame: pd.DataFrame,
    url: str,
    per_prompt: dict[str, str],
    where: tuple[str, np.ndarray],
    pc: np.ndarray,
) -> dict[str, np.ndarray]:
    """Each per-prompt column (field -> column) as one text per prompt, taken from the prompt's
    first row; every row of a prompt (code ``pc`` per row) must hold the same text."""
    key, ids = where
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
    return fields


def _meta_text(meta: dict[bytes, bytes], key: str, url: str) -> str | None:
    """Schema metadata ``routerbench.<key>`` as text (None if absent)."""
    raw = meta.get(_META + key.encode())
    try:
        return None if raw is None else raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{url}: schema metadata 'routerbench.{key}' must be UTF-8 text") from None


def _table_meta(meta: dict[bytes, bytes], url: str) -> tuple[list[str], int]:
    """The schema metadata of our Parquet layout, checked: the model names and the features
    width (-1 where ``routerbench.features_dim`` is absent)."""
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
    return models, -1 if dim_text is None else int(dim_text)


def _text_column(table: pa.Table, url: str, col: str) -> np.ndarray:
    """A string column without nulls, as checked text."""
    arr = table.column(col)
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        raise DataError(f"{url}: column {col!r} must be of type string, found {arr.type}")
    if arr.null_count:
        raise DataError(f"{url}: column {col!r} has {arr.null_count} missing values")
    return _strings(pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object), url, col)


def _matrix_column(table: pa.Table, url: str, col: str, width: int) -> np.ndarray:
    """A ``fixed_size_list<double>[width]`` column without nulls, as float64 ``[rows, width]``."""
    arr = table.column(col)
    t = arr.type
    fixed = pa.types.is_fixed_size_list(t) and t.list_size == width
    if not (fixed and pa.types.is_floating(t.value_type)) or arr.null_count:
        raise DataError(
            f"{url}: column {col!r} must be fixed_size_list<double>[{width}] without nulls, "
            f"found {t}"
        )
    flat = arr.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float64).reshape(table.num_rows, width)


def _from_table(table: pa.Table, meta: dict[bytes, bytes], url: str) -> RoutingData:
    models, dim = _table_meta(meta, url)
    unknown = [c for c in table.column_names if c not in (*_TABLE_COLUMNS, "features")]
    if unknown:
        raise DataError(f"{url}: unknown column {_show(unknown[0])} in a {LAYOUT} file")
    n, m = table.num_rows, len(models)
    if n == 0:
        raise DataError(f"{url}: the table is empty (no rows)")
    _require(table.column_names, url, _TABLE_COLUMNS[:5], LAYOUT)
    text, matrix = partial(_text_column, table, url), partial(_matrix_column, table, url)
    ids = text("prompt_id")
    q, c = matrix("quality", m), matrix("cost", m)
    _check_outcomes(url, q, c, ("prompt_id", ids), models, (["quality"] * m, ["cost"] * m))
    features = None
    if dim > 0:
        _require(table.column_names, url, ["features"], LAYOUT)
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
            synthetic=meta.get(_SYNTHETIC.encode()) == b"true",
            features_source=_meta_text(meta, "features_source", url) or "",
            **fields,
        )
    except DataError as exc:  # the stored source is not the file being read: name the file
        raise DataError(f"{url}: {exc}") from None
