"""Prompt features for predictive routers: TF-IDF + truncated SVD, or vectors read from a file.

The original embeds prompts with sentence-transformers (``all-MiniLM-L12-v2``), which cannot run
here; :class:`TextFeaturizer` is the offline stand-in.  It is *fitted on training prompts only* and
then transforms any prompts, so test prompts never influence the features (no leakage).  When the
original's embedding cache (or any table of prompt vectors) is at hand, :func:`load_features`
attaches those vectors instead.

scikit-learn, and the readers of :func:`load_features` (pandas, pyarrow, fsspec), are imported
inside the functions that need them (they cost ~1 s and 200 MB; routers import this module).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError, first_line
from routerbench.engine.memo import Bounded

if TYPE_CHECKING:
    import pyarrow as pa

MAX_FEATURES = 20_000  # TF-IDF vocabulary cap (most frequent terms)
_CACHE: Bounded[str, Any] = Bounded(8)  # fitted featurizers, by content digest


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


class TextFeaturizer:
    """TF-IDF (sublinear tf) + ``TruncatedSVD(dim, random_state=seed)``, rows L2-normalised.

    ``fit`` learns the vocabulary and the projection from training prompts; ``transform`` maps any
    prompts to ``[n, dim]`` (zero-padded when the training vocabulary has fewer than ``dim`` terms;
    a prompt with no known word maps to the zero row).  Picklable and deterministic for a seed.

    >>> f = TextFeaturizer(dim=2).fit(["red apple", "green apple", "red car", "blue car"])
    >>> x = f.transform(["red apple pie", "unknown words"])
    >>> x.shape, np.round(np.linalg.norm(x, axis=1), 6).tolist()
    ((2, 2), [1.0, 0.0])
    """

    def __init__(self, *, dim: int = 64, seed: int = 0) -> None:
        if dim < 1:
            raise ValueError(f"TextFeaturizer: dim must be >= 1 (got {dim})")
        self.dim = dim
        self.seed = seed
        self._vectorizer: Any = None
        self._svd: Any = None

    def fit(self, prompts: Sequence[str] | np.ndarray) -> TextFeaturizer:
        """Learn the vocabulary and the SVD projection from ``prompts``; returns ``self``."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(sublinear_tf=True, max_features=MAX_FEATURES, dtype=np.float64)
        try:
            x = vec.fit_transform([str(p) for p in prompts])
        except ValueError as e:  # empty vocabulary: no prompt, or no word in any prompt
            raise DataError(f"text features: cannot fit on the training prompts ({e})") from None
        vec.stop_words_ = None  # the dropped terms are not needed to transform; keeps pickles small
        self._vectorizer = vec
        self._svd = TruncatedSVD(min(self.dim, x.shape[1]), random_state=self.seed).fit(x)
        return self

    def transform(self, prompts: Sequence[str] | np.ndarray) -> np.ndarray:
        """Features ``[n, dim]`` (float64, rows of norm 1 or 0) for any prompts."""
        if self._vectorizer is None:
            raise RuntimeError("TextFeaturizer.transform called before fit")
        z = self._svd.transform(self._vectorizer.transform([str(p) for p in prompts]))
        out = np.zeros((z.shape[0], self.dim))
        out[:, : z.shape[1]] = z
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norm, out=out, where=norm > 0)
        return out


def fitted_featurizer(prompts: np.ndarray, *, dim: int = 64, seed: int = 0) -> TextFeaturizer:
    """A :class:`TextFeaturizer` fitted on ``prompts``, cached in-process by their content."""
    key = _digest("featurizer", str(dim), str(seed), *[str(p) for p in prompts])
    fitted: TextFeaturizer = _CACHE.get(
        key, lambda: TextFeaturizer(dim=dim, seed=seed).fit(prompts)
    )
    return fitted


def text_features(
    prompts: Sequence[str] | np.ndarray,
    *,
    dim: int = 64,
    seed: int = 0,
    fit_on: np.ndarray | None = None,
) -> np.ndarray:
    """TF-IDF + SVD features ``[n, dim]`` of ``prompts``, fitted on the rows where ``fit_on``.

    ``fit_on`` is a boolean mask of the rows to fit on (the training prompts; all rows if None);
    the fitted transform is applied to every row, so the other rows never influence the features.

    >>> p = ["solve for x", "solve for y", "poem about spring", "zzz qqq"]
    >>> x = text_features(p, dim=2, fit_on=np.array([True, True, True, False]))
    >>> x.shape, float(np.abs(x[3]).sum())
    ((4, 2), 0.0)
    """
    arr = np.asarray(prompts, dtype=object)
    train = arr if fit_on is None else arr[np.asarray(fit_on, dtype=bool)]
    return TextFeaturizer(dim=dim, seed=seed).fit(train).transform(arr)


# ------------------------------------------------------------------------ vectors from a file
_KEYS = ("prompt_id", "prompt")  # the key columns, in order of preference
_LIST_COLUMNS = ("embedding", "features")  # a list column holding the whole vector


def load_features(
    url: str, data: RoutingData, storage_options: dict[str, Any] | None = None
) -> RoutingData:
    """``data`` with one vector per prompt read from ``url`` (any fsspec URL), the extension
    telling the format:

    - ``.pkl``/``.pickle``: the original RouterBench embedding cache, a pickled list of
      ``{prompt, embedding, hash, embedding_model}`` dicts (read with the restricted unpickler),
      matched by prompt text; a prompt cached twice takes its first record, as the original does;
      one ``embedding_model`` per file.
    - ``.parquet``/``.pq``/``.csv``: a table keyed by ``prompt_id`` (else by ``prompt`` text), the
      vector in a list column ``embedding`` or ``features`` (Parquet), else all other columns.

    Rows matching no prompt are ignored; a prompt without a vector is an error.  The features'
    source is ``"features:"`` + the first 16 hex digits of the sha256 of the matrix's shape and
    float64 bytes, so the data fingerprint follows the vectors, never the path.

    >>> import pandas as pd
    >>> pd.DataFrame({"prompt_id": ["p1", "p0", "p9"], "a": [1.0, 2.0, 3.0],
    ...               "b": [4.0, 5.0, 6.0]}).to_csv("memory://doc/f.csv", index=False)
    >>> d = RoutingData(quality=[[1.0], [0.0]], cost=[[0.1], [0.1]], models=["m"],
    ...                 prompt_ids=["p0", "p1"], eval_names=["x", "x"])
    >>> e = load_features("memory://doc/f.csv", d)
    >>> e.features.tolist(), e.features_source
    ([[2.0, 5.0], [1.0, 4.0]], 'features:a7d6bfb978a2e5b8')
    """
    from routerbench.engine.io import SUFFIXES  # pandas and pyarrow: not at router import

    kind = SUFFIXES.get(os.path.splitext(url.rstrip("/"))[1].lower())
    if kind is None:
        raise DataError(
            f"{url}: cannot tell the features' format; expected one of {list(SUFFIXES)}"
        )
    obj = _read(url, kind, storage_options)
    try:
        matrix = _aligned(obj, url, kind, data)
    except (DataError, NameError, ImportError):  # ours, or a bug in this code: not the file's
        raise
    except Exception as exc:  # a value no check foresaw: still one line naming the file
        raise DataError(f"{url}: cannot use the features ({first_line(exc)})") from None
    h = hashlib.sha256(f"{matrix.shape}".encode())
    h.update(memoryview(np.ascontiguousarray(matrix, "<f8").reshape(-1)).cast("B"))  # type: ignore[arg-type]
    return data.with_features(matrix, source=f"features:{h.hexdigest()[:16]}")


def _read(url: str, kind: str, storage_options: dict[str, Any] | None) -> Any:
    """The unpickled records, or the table, at ``url``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def read_csv(f: Any) -> Any:
        options = pacsv.ConvertOptions(column_types=dict.fromkeys(_KEYS, pa.string()))
        return pacsv.read_csv(
            f, read_options=pacsv.ReadOptions(use_threads=False), convert_options=options
        )

    from routerbench.engine.io import read_file

    return read_file(url, kind, storage_options, read_csv, "prompt vectors")


def _aligned(obj: Any, url: str, kind: str, data: RoutingData) -> np.ndarray:
    """The float64 matrix ``[n_prompts, d]`` of ``data``'s prompts, in its row order."""
    if kind != "pickle":
        key, keys, table_matrix, dim = _from_table(obj, url)
        _check_duplicates(url, key, keys, table_matrix)
        rows = _rows(url, data, key, keys)
        unit, matrix = "row", table_matrix[rows]
    else:
        prompts, vectors = _from_cache(obj, url)
        rows = _rows(url, data, "prompt", prompts)
        unit, matrix = "record", _stack(url, [vectors[r] for r in rows], rows)
        dim = "'embedding'[{}]".format
    bad = ~np.isfinite(matrix)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(
            f"{url}: {unit} {rows[i]}, {dim(j)}: expected a finite number, got {matrix[i, j]}"
        )
    return matrix


def _from_cache(obj: object, url: str) -> tuple[list[str], list[Any]]:
    """Prompts and raw embeddings of the original's cache, checked for its layout."""
    if type(obj) is not list:
        raise DataError(f"{url}: expected a pickled list of dicts, got {type(obj).__name__}")
    if not obj:
        raise DataError(f"{url}: empty file: the embedding cache holds no records")
    prompts, vectors, models = [], [], set()
    for i, rec in enumerate(obj):
        if (
            type(rec) is not dict
            or not isinstance(rec.get("prompt"), str)
            or "embedding" not in rec
        ):
            raise DataError(
                f"{url}: record {i} must be a dict with a text 'prompt' and 'embedding'"
            )
        prompts.append(rec["prompt"])
        vectors.append(rec["embedding"])
        models.add(str(rec.get("embedding_model")))
    if len(models) > 1:
        raise DataError(
            f"{url}: the cache mixes {len(models)} embedding_model values {sorted(models)}; "
            "expected one model per file"
        )
    return prompts, vectors


def _same_lengths(url: str, lengths: np.ndarray, what: str, where: Callable[[int], str]) -> None:
    """Every vector as long as the first, or one line naming the first that is not."""
    other = np.flatnonzero(lengths != lengths[0])
    if other.size:
        i = int(other[0])
        raise DataError(
            f"{url}: {what} of different lengths: {where(0)} has {lengths[0]}, "
            f"{where(i)} has {lengths[i]}"
        )


def _stack(url: str, vectors: list[Any], rows: np.ndarray) -> np.ndarray:
    """The cache's embeddings (lists of numbers or 1-D arrays) as one float64 matrix."""
    from routerbench.engine.io_parse import _show

    for i, v in enumerate(vectors):
        if type(v) not in (list, tuple) and not (isinstance(v, np.ndarray) and v.ndim == 1):
            raise DataError(
                f"{url}: record {rows[i]}: 'embedding' must be a list of numbers or a 1-D array, "
                f"got {_show(v, 40)}"
            )
    lengths = np.fromiter(map(len, vectors), np.int64, len(vectors))
    _same_lengths(url, lengths, "embeddings", lambda i: f"record {rows[i]}")
    try:
        matrix = np.array(vectors)
    except ValueError:  # a nested list
        matrix = np.array([])
    if matrix.ndim != 2 or matrix.dtype.kind not in "iuf" or matrix.shape[1] == 0:
        i = next((i for i, v in enumerate(vectors) if not _numbers_1d(v)), 0)
        raise DataError(
            f"{url}: record {rows[i]}: 'embedding' must hold at least one number and only "
            f"numbers, got {_show(vectors[i], 60)}"
        )
    return matrix.astype(np.float64, copy=False)


def _numbers_1d(v: Any) -> bool:
    try:
        a = np.asarray(v)
    except ValueError:
        return False
    return a.ndim == 1 and a.size > 0 and a.dtype.kind in "iuf"


def _from_table(table: pa.Table, url: str) -> tuple[str, list[str], np.ndarray, Any]:
    """Key column, keys, the float64 matrix of every row, and a namer of matrix columns."""
    import pyarrow as pa

    names = table.column_names
    key = next((k for k in _KEYS if k in names), None)
    if key is None:
        raise DataError(f"{url}: no key column: expected 'prompt_id' or 'prompt', got {names[:8]}")
    if table.num_rows == 0:
        raise DataError(f"{url}: empty file: the table has no rows")
    column = table.column(key)
    if pa.types.is_integer(column.type):
        column = column.cast(pa.string())
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise DataError(f"{url}: column {key!r} must hold text, got {column.type}")
    if column.null_count:
        i = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{url}: column {key!r} is empty at row {i}")
    keys = column.to_pylist()
    lists = [c for c in _LIST_COLUMNS if c in names and _is_list(table.schema.field(c).type)]
    if lists:
        return (
            key,
            keys,
            _list_matrix(table.column(lists[0]), url, lists[0]),
            f"{lists[0]!r}[{{}}]".format,
        )
    cols = [c for c in names if c not in _KEYS]
    if not cols:
        raise DataError(
            f"{url}: no vector: expected a list column 'embedding' or 'features', or numeric "
            "columns besides prompt_id and prompt"
        )
    matrix = np.column_stack([_floats(table.column(c), url, repr(c)) for c in cols])
    return key, keys, matrix, lambda j: f"column {cols[j]!r}"


def _is_list(t: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _floats(values: pa.ChunkedArray | pa.Array, url: str, name: str) -> np.ndarray:
    """Numeric Arrow values as float64 (nulls as NaN); anything else names ``name``."""
    import pyarrow as pa

    t = values.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)):
        raise DataError(f"{url}: column {name} must hold numbers, got {t}")
    return np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _list_matrix(column: pa.ChunkedArray, url: str, name: str) -> np.ndarray:
    """A list column of equally long numeric vectors as a float64 matrix ``[rows, d]``."""
    import pyarrow.compute as pc

    arr = column.combine_chunks()
    if arr.null_count:
        i = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{url}: column {name!r} has no vector at row {i}")
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    _same_lengths(url, lengths, f"column {name!r}: vectors", lambda i: f"row {i}")
    if lengths[0] == 0:
        raise DataError(f"{url}: column {name!r}: the vectors are empty")
    return _floats(arr.flatten(), url, f"{name!r}'s values").reshape(len(arr), int(lengths[0]))


def _check_duplicates(url: str, key: str, keys: list[str], matrix: np.ndarray) -> None:
    """A key given twice must carry the same vector both times."""
    from routerbench.engine.io_parse import _show

    k = np.array(keys, dtype=object)
    order = np.argsort(k, kind="stable")
    same = k[order[1:]] == k[order[:-1]]
    a, b = order[:-1][same], order[1:][same]
    x, y = matrix[a], matrix[b]
    differ = ~((x == y) | (np.isnan(x) & np.isnan(y))).all(axis=1)
    if differ.any():
        i = int(differ.argmax())
        raise DataError(
            f"{url}: {key} {_show(keys[a[i]], 60)} has different vectors in rows {a[i]} and "
            f"{b[i]}; expected one vector per {key}"
        )


def _rows(url: str, data: RoutingData, key: str, keys: list[str]) -> np.ndarray:
    """For each of ``data``'s prompts, the first file row whose key is its ``key``."""
    if key == "prompt_id":
        want = data.prompt_ids
    elif data.prompts is None:
        raise DataError(
            f"{url}: vectors are keyed by prompt text, but the data ({data.source}) has no "
            "prompts; key the vectors by prompt_id"
        )
    else:
        want = data.prompts
    first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
    rows = np.fromiter((first.get(p, -1) for p in want), np.int64, len(want))
    missing = np.flatnonzero(rows < 0)
    if missing.size:
        raise DataError(
            f"{url}: {missing.size:,} of {len(want):,} prompts have no vector (matched by {key}; "
            f"first: {str(want[missing[0]])[:60]!r})"
        )
    return rows
