"""Row groups of ``routing-data/1`` Parquet files, and reading some rows of such a file without
the rest (:class:`ParquetRows`), so that each Ray actor reads its own rows and the driver never
holds the outcome matrix, the prompts or the features.

Row groups. :func:`routerbench.engine.io.save` writes the layout (``engine.io``'s docstring) in
the data's row order, in row groups (:func:`row_group_bounds`) of at most :data:`ROW_GROUP_ROWS`
rows. When the rows are grouped by family (each family one contiguous run of rows) no row group
spans two families: each family's run is cut into row groups of ``ROW_GROUP_ROWS`` rows, the last
one shorter. Otherwise the row groups are consecutive blocks of ``ROW_GROUP_ROWS`` rows.
``routerbench data convert IN OUT.parquet`` and ``routerbench data synth --out X.parquet`` group
the rows first (:func:`grouped_by_family`: a stable reorder, families in order of first
appearance, rows within a family in their original order). Nothing else of the layout changes:
every reader of ``routing-data/1`` (:func:`routerbench.engine.io.load`) reads these files as
before, and the Parquet footer's column statistics then give each row group's family.

Who reads what. The driver calls :meth:`ParquetRows.open`, which reads the footer only (schema
metadata, the row counts of the row groups, column statistics), and
:meth:`ParquetRows.family_codes`, which reads nothing more when every row group holds one family
(the statistics say which) and otherwise the ``family`` column alone. An actor calls
:meth:`ParquetRows.read` with its rows and reads the row groups that hold them (all columns),
nothing else. :meth:`ParquetRows.fingerprint` streams every column of the file through the hash,
holding one column of one row group at a time.
A ``ParquetRows`` holds no open file and pickles small (it travels to actors): each call opens the
file again, refuses it in one line if its row groups or metadata changed since :meth:`open`, and
retries transient storage errors as :func:`routerbench.engine.io.read_file` does.
"""

from __future__ import annotations

import hashlib
import itertools
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from routerbench.engine.data import (
    _FINGERPRINT,
    _HASHED_ARRAYS,
    _HASHED_TEXTS,
    RoutingData,
    _hash_array,
    _hash_array_head,
    _hash_strings,
    _StringsHash,
)
from routerbench.engine.errors import DataError, first_line
from routerbench.engine.io_parse import (
    _META,
    _SYNTHETIC,
    _TABLE_COLUMNS,
    LAYOUT,
    _from_table,
    _matrix_column,
    _meta_text,
    _require,
    _table_meta,
    _text_column,
)

__all__ = ["ROW_GROUP_ROWS", "ParquetRows", "grouped_by_family", "row_group_bounds"]

T = TypeVar("T")

ROW_GROUP_ROWS = 32_768
"""The most rows in one row group of a ``routing-data/1`` file. A row of 50 models' quality and
cost and 64 features is 1,312 bytes of float64, so such a row group is about 43 MB in memory
(56 MB with latency): small enough for an actor to hold a few, large enough that a file of a
billion rows has about 30,000 row groups (a footer of tens of MB)."""

_COLUMN = {  # RoutingData field -> its routing-data/1 column
    "prompt_ids": "prompt_id",
    "eval_names": "eval_name",
    "families": "family",
    "prompts": "prompt",
    "quality": "quality",
    "cost": "cost",
    "latency": "latency",
    "features": "features",
}
_TEXTS = ("prompt_id", "eval_name", "family", "prompt")
_STR_OBJECT = sys.getsizeof("")  # a Python str's header (an ASCII one: plus one byte a character)


# ------------------------------------------------------------------------------------ writing
def row_group_bounds(
    families: pa.Array | pa.ChunkedArray | Sequence[str] | np.ndarray,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> np.ndarray:
    """Where the row groups of rows with these ``families`` begin, then the row count (int64,
    one more value than row groups): no row group spans two families when each family is one
    contiguous run, else blocks of ``row_group_rows``; at most ``row_group_rows`` rows each.

    >>> row_group_bounds(["a", "a", "a", "b"], 2).tolist()
    [0, 2, 3, 4]
    >>> row_group_bounds(["a", "b", "a"], 2).tolist()  # not grouped: blocks of 2 rows
    [0, 2, 3]
    """
    if row_group_rows < 1:
        raise ValueError(f"row_group_rows must be >= 1, got {row_group_rows}")
    if isinstance(families, pa.Array):
        families = pa.chunked_array([families])
    elif not isinstance(families, pa.ChunkedArray):
        families = pa.chunked_array([pa.array(families, pa.string())])
    n = len(families)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    changes = pc.not_equal(families[1:], families[:-1]).to_numpy()
    starts = np.flatnonzero(changes) + 1
    grouped = len(starts) + 1 == pc.count_distinct(families).as_py()
    edges = [0, *starts.tolist(), n] if grouped else [0, n]
    cuts = [np.arange(lo, hi, row_group_rows) for lo, hi in itertools.pairwise(edges)]
    return np.concatenate([*cuts, [n]]).astype(np.int64)


def grouped_by_family(data: RoutingData) -> RoutingData:
    """The rows of ``data`` grouped by family: families in order of first appearance, each
    family's rows in their order (``data`` itself when it is grouped already).

    >>> d = RoutingData(quality=[[1.0]] * 3, cost=[[0.1]] * 3, models=["m"],
    ...                 prompt_ids=["p0", "p1", "p2"], eval_names=["b", "a", "b"])
    >>> grouped_by_family(d).prompt_ids.tolist()
    ['p0', 'p2', 'p1']
    """
    codes = pd.factorize(data.families)[0]
    return data.take(np.argsort(codes, kind="stable"))


# ------------------------------------------------------------------------------------ reading
def _call(url: str, fn: Callable[[], T]) -> T:
    """``fn()`` reading the file at ``url``, retried and failing in one line as
    :func:`routerbench.engine.io.read_file` does."""
    from routerbench.engine.io import retried  # engine.io imports this module (via io_write)

    return retried(url, "parquet", fn)


@contextmanager
def _opened(url: str, storage_options: dict[str, Any] | None) -> Iterator[pq.ParquetFile]:
    """The Parquet file at ``url`` with its footer read; closed on exit."""
    from routerbench.engine.io import open_checked

    def start() -> tuple[Any, pq.ParquetFile]:
        f = open_checked(url, storage_options, "parquet", "outcomes")
        try:
            return f, pq.ParquetFile(f)
        except BaseException:
            f.close()
            raise

    f, parquet = _call(url, start)
    with f:
        yield parquet


def _group_family(group: pq.RowGroupMetaData, column: int) -> str | None:
    """The one family of a row group, when its statistics say so (min == max, no nulls)."""
    chunk = group.column(column)
    stats = chunk.statistics if chunk.is_stats_set else None
    if stats is None or not stats.has_min_max or not stats.has_null_count or stats.null_count:
        return None
    try:
        low, high = stats.min, stats.max
    except Exception:  # statistics that do not decode as text: read the column instead
        return None
    return low if isinstance(low, str) and low == high and group.num_rows else None


@dataclass(frozen=True, eq=False)
class ParquetRows:
    """A ``routing-data/1`` Parquet file at a URL, read a few row groups at a time.

    Build one with :meth:`open`. The attributes come from the footer: ``models``, ``n_prompts``,
    ``source``, ``synthetic``, ``features_dim`` (None without features), ``features_source``,
    ``has_prompts``, ``has_latency``; ``row_group_bounds`` (int64, the first row of each row
    group, then ``n_prompts``) and ``row_group_families`` (each row group's one family where its
    statistics say so, else None).
    """

    url: str
    storage_options: dict[str, Any] | None = field(repr=False)  # may hold credentials
    models: tuple[str, ...]
    n_prompts: int
    source: str
    synthetic: bool
    features_dim: int | None
    features_source: str
    has_prompts: bool
    has_latency: bool
    row_group_bounds: np.ndarray = field(repr=False)
    row_group_families: tuple[str | None, ...] = field(repr=False)
    _meta: dict[bytes, bytes] = field(repr=False)
    _text_bytes: int = field(repr=False)  # the text columns' uncompressed Parquet bytes

    @classmethod
    def open(cls, url: str, storage_options: dict[str, Any] | None = None) -> ParquetRows:
        """The file at ``url``, from its footer alone; a one-line :class:`DataError` naming
        ``url`` when it is not a readable ``routing-data/1`` file with at least one row."""
        with _opened(url, storage_options) as parquet:
            schema, footer = parquet.schema_arrow, parquet.metadata
        meta = dict(schema.metadata or {})
        if _META + b"format" not in meta:
            raise DataError(f"{url}: not a {LAYOUT} file (no 'routerbench.format' schema metadata)")
        models, dim = _table_meta(meta, url)
        _check_schema(schema, url, len(models), dim)
        if footer.num_rows == 0:
            raise DataError(f"{url}: the table is empty (no rows)")
        groups = [footer.row_group(i) for i in range(footer.num_row_groups)]
        paths = [footer.schema.column(j).path for j in range(footer.num_columns)]
        family = paths.index("family")
        texts = [j for j, p in enumerate(paths) if p in _TEXTS]
        source = _meta_text(meta, "source", url)
        return cls(
            url=url,
            storage_options=storage_options,
            models=tuple(models),
            n_prompts=footer.num_rows,
            source=url if source is None else source,
            synthetic=meta.get(_SYNTHETIC.encode()) == b"true",
            features_dim=None if dim < 0 else dim,
            features_source=_meta_text(meta, "features_source", url) or "",
            has_prompts="prompt" in schema.names,
            has_latency="latency" in schema.names,
            row_group_bounds=np.cumsum([0, *(g.num_rows for g in groups)], dtype=np.int64),
            row_group_families=tuple(_group_family(g, family) for g in groups),
            _meta=meta,
            _text_bytes=sum(g.column(j).total_uncompressed_size for g in groups for j in texts),
        )

    # -------------------------------------------------------------------------- planning
    def families(self) -> np.ndarray:
        """The family of every row (an object array of str, as ``RoutingData.families``): from
        the footer's statistics when every row group holds one family, else read from the
        ``family`` column alone."""
        if None not in self.row_group_families:
            names = np.array(self.row_group_families, dtype=object)
            return np.repeat(names, np.diff(self.row_group_bounds))
        with self._file() as parquet:
            table = _call(self.url, partial(parquet.read, columns=["family"], use_threads=False))
        return _text_column(table, self.url, "family")

    def family_codes(self) -> tuple[list[str], np.ndarray]:
        """``(names, codes)``: families in order of first appearance and each row's index into
        them (int32; from the footer alone where :meth:`families` can be; see
        :func:`routerbench.engine.splits.family_rows`)."""
        if None in self.row_group_families:
            codes, uniques = pd.factorize(self.families(), sort=False)
            return [str(u) for u in uniques], codes.astype(np.int32)
        names = self.family_names()
        per_group = np.array([names.index(f) for f in self.row_group_families], dtype=np.int32)  # type: ignore[arg-type]
        return names, np.repeat(per_group, np.diff(self.row_group_bounds))

    def family_names(self) -> list[str]:
        """Families in order of first appearance (as ``RoutingData.family_names``)."""
        if None not in self.row_group_families:
            return list(dict.fromkeys(self.row_group_families))  # type: ignore[arg-type]
        return list(dict.fromkeys(self.families()))

    def nbytes_in_memory(self) -> int:
        """The bytes the loaded :class:`RoutingData`'s arrays would take: the float64 arrays
        exactly; the text estimated as one Python str per value (an 8-byte reference and the
        str's header) plus the text columns' uncompressed Parquet bytes (close for ASCII text;
        Python stores other text in up to 4 bytes a character, so it may take more)."""
        n, m = self.n_prompts, len(self.models)
        numbers = 8 * n * (m * (2 + self.has_latency) + (self.features_dim or 0))
        texts = 3 + self.has_prompts
        return numbers + texts * n * (8 + _STR_OBJECT) + self._text_bytes

    # -------------------------------------------------------------------------- reading
    def read(self, rows: np.ndarray | Sequence[int]) -> RoutingData:
        """The data of ``rows`` (increasing row indices), in that order: equal, field by field,
        to ``io.load(url).take(rows)``. Reads only the row groups that hold them (all columns),
        one at a time, and checks what it reads as :func:`routerbench.engine.io.load` does. The
        memory is the result's and one row group's (the parts are checked as read and joined
        without a copy, :meth:`RoutingData.joined`)."""
        idx = self._rows(rows)
        bounds = self.row_group_bounds
        groups = np.searchsorted(bounds, idx, side="right") - 1
        edges = [0, *(np.flatnonzero(np.diff(groups)) + 1).tolist(), len(idx)]
        arrays: dict[str, np.ndarray] = {}  # the result's arrays, filled group by group
        done = 0
        with self._file() as parquet:
            for lo, hi in itertools.pairwise(edges):
                g = int(groups[lo])
                table = _call(self.url, partial(parquet.read_row_group, g, use_threads=False))
                if hi - lo < table.num_rows:
                    table = table.take(idx[lo:hi] - bounds[g])
                part = self._parse(table)
                del table
                if len(edges) == 2:  # the rows of one row group: as read
                    return part
                for name in _COLUMN:
                    value = getattr(part, name)
                    if value is not None:
                        if name not in arrays:
                            arrays[name] = np.empty((len(idx), *value.shape[1:]), value.dtype)
                        arrays[name][done : done + len(value)] = value
                done += part.n_prompts
        try:
            return RoutingData.joined(part, arrays)
        except DataError as exc:  # rows of two row groups (a repeated prompt id): name the file
            raise DataError(f"{self.url}: {exc}") from None

    def _parse(self, table: pa.Table) -> RoutingData:
        """Rows read from the file, checked as :func:`routerbench.engine.io.load` does."""
        try:
            return _from_table(table, self._meta, self.url)
        except (DataError, NameError, ImportError):  # ours, or a bug in this code
            raise
        except Exception as exc:  # a value no check foresaw: still one line naming the file
            raise DataError(f"{self.url}: cannot use the table ({first_line(exc)})") from None

    def fingerprint(self) -> str:
        """``io.load(url).fingerprint()``, computed one column of one row group at a time (the
        memory of one such column chunk). The columns' types are checked as they are read, their
        values are not (:meth:`read` checks them)."""
        url, n = self.url, self.n_prompts
        h = hashlib.sha256(_FINGERPRINT)
        _hash_strings(h, b"models", self.models)
        with self._file() as parquet:

            def chunks(column: str) -> Iterator[pa.Table]:
                for g in range(len(self.row_group_bounds) - 1):
                    read = partial(parquet.read_row_group, g, columns=[column], use_threads=False)
                    yield _call(url, read)

            for name in _HASHED_TEXTS:
                column = _COLUMN[name]
                if column == "prompt" and not self.has_prompts:
                    _hash_strings(h, name.encode(), None)
                    continue
                feed = _StringsHash(h, name.encode(), n)
                for table in chunks(column):
                    feed.add_encoded(*_utf8(table, url, column))
                feed.close()
            for name in _HASHED_ARRAYS:
                column, width = _COLUMN[name], self._width(name)
                if width is None:
                    _hash_array(h, name.encode(), None)
                    continue
                _hash_array_head(h, name.encode(), (n, width))
                for table in chunks(column) if width else ():
                    values = np.ascontiguousarray(_matrix_column(table, url, column, width), "<f8")
                    h.update(memoryview(values.reshape(-1)).cast("B"))  # type: ignore[arg-type]
        _hash_strings(h, b"features_source", [self.features_source])
        return h.hexdigest()

    def _width(self, name: str) -> int | None:
        """Columns of a float64 field (None: the data has none)."""
        if name == "features":
            return self.features_dim
        return len(self.models) if name != "latency" or self.has_latency else None

    def _rows(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        idx = np.asarray(rows)
        if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
            raise DataError(
                f"{self.url}: rows must be a non-empty 1-D array of row indices, got "
                f"{idx.dtype} of shape {idx.shape}"
            )
        idx = idx.astype(np.int64, copy=False)
        if idx[0] < 0 or idx[-1] >= self.n_prompts:
            raise DataError(f"{self.url}: row index out of range for {self.n_prompts} prompts")
        if (idx[1:] <= idx[:-1]).any():
            raise DataError(f"{self.url}: rows must be increasing (sorted, no repeats)")
        return idx

    @contextmanager
    def _file(self) -> Iterator[pq.ParquetFile]:
        """The file opened again, refused when it is no longer the file :meth:`open` read."""
        with _opened(self.url, self.storage_options) as parquet:
            footer = parquet.metadata
            rows = [footer.row_group(i).num_rows for i in range(footer.num_row_groups)]
            same = np.array_equal(np.cumsum([0, *rows]), self.row_group_bounds)
            if not same or dict(parquet.schema_arrow.metadata or {}) != self._meta:
                raise DataError(
                    f"{self.url}: the file changed since it was opened (its row groups or "
                    "metadata differ); open it again"
                )
            yield parquet


def _check_schema(schema: pa.Schema, url: str, m: int, dim: int) -> None:
    """The columns and their types that :func:`io_parse._from_table` requires, checked on the
    schema alone (an empty table of it)."""
    names = schema.names
    unknown = [c for c in names if c not in (*_TABLE_COLUMNS, "features")]
    if unknown:
        raise DataError(f"{url}: unknown column {unknown[0]!r} in a {LAYOUT} file")
    _require(names, url, _TABLE_COLUMNS[:5], LAYOUT)
    if dim > 0:
        _require(names, url, ["features"], LAYOUT)
    empty = schema.empty_table()
    for col in names:
        if col in ("quality", "cost", "latency"):
            _matrix_column(empty, url, col, m)
        elif col == "features":
            if dim > 0:
                _matrix_column(empty, url, col, dim)
        else:
            _text_column(empty, url, col)


def _utf8(table: pa.Table, url: str, column: str) -> tuple[np.ndarray, memoryview]:
    """A text column's values as their UTF-8 byte lengths and their bytes, without decoding
    them: the bytes ``io.load`` would hash after decoding them to ``str``."""
    arr = table.column(column).combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise DataError(f"{url}: column {column!r} must be of type string, found {arr.type}")
    if arr.null_count:
        raise DataError(f"{url}: column {column!r} has {arr.null_count} missing values")
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise DataError(f"{url}: column {column!r} is not valid text ({first_line(exc)})") from None
    _, offsets_buf, data_buf = arr.buffers()
    kind = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=kind)[arr.offset : arr.offset + len(arr) + 1]
    data = memoryview(data_buf if data_buf is not None else b"")
    return np.diff(offsets).astype(np.int64), data[int(offsets[0]) : int(offsets[-1])]
