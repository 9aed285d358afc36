"""Writing outcome tables: the original's wide and long frames, our long table and Parquet
layout. Entry point: :func:`routerbench.engine.io.save`.

A ``routing-data/1`` file keeps the data's row order and is written in row groups of at most
:data:`routerbench.engine.rowgroups.ROW_GROUP_ROWS` rows that never span two families when the
rows are grouped by family (:func:`routerbench.engine.rowgroups.row_group_bounds`); ``routerbench
data convert`` groups them first. Every other part of the layout is as ``engine.io`` describes.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from routerbench.engine.data import RoutingData
from routerbench.engine.io_parse import _META, _ORACLE, LAYOUT, NO_MODEL_CORRECT
from routerbench.engine.rowgroups import ROW_GROUP_ROWS, row_group_bounds

RESPONSE_PLACEHOLDER = "['<synthetic response>']"
PROMPT_PLACEHOLDER = "['<no prompt>']"


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


def _parquet_bytes(table: pa.Table, *, row_group_rows: int = ROW_GROUP_ROWS) -> bytes:
    """The Parquet file of ``table``: a ``routing-data/1`` table (:func:`to_table`) in the row
    groups of :func:`~routerbench.engine.rowgroups.row_group_bounds` (at most ``row_group_rows``
    rows, none spanning two families of grouped rows), any other table in pyarrow's."""
    sink = pa.BufferOutputStream()
    if (table.schema.metadata or {}).get(_META + b"format") != LAYOUT.encode():
        pq.write_table(table, sink)
    else:
        bounds = row_group_bounds(table.column("family"), row_group_rows).tolist()
        with pq.ParquetWriter(sink, table.schema) as writer:
            for lo, hi in itertools.pairwise(bounds):
                writer.write_table(table.slice(lo, hi - lo), row_group_size=hi - lo)
    return sink.getvalue().to_pybytes()
