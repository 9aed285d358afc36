"""The allow-list of :func:`routerbench.engine.safepickle.safe_load` and its checks.

Which ``module.name`` pairs a pickle may name (:data:`ALLOWED`, with the older spellings mapped
to where they live now), and for every callable, class and state they admit the check that runs
before it (:func:`rules`): the reconstructors that refuse shapes, dtypes, placements and states
NumPy and pandas would trust. The unpickler that applies them is in ``safepickle``.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from routerbench.engine.safepickle import _Unpickler

_NUMPY_CORE = (
    ("multiarray", "_reconstruct"),  # ndarray (protocols < 5, object arrays)
    ("multiarray", "scalar"),  # numpy scalars, e.g. np.float64 cells in object columns
    ("numeric", "_frombuffer"),  # contiguous ndarray, protocol 5
)

_PANDAS_CLASSES = (
    ("pandas.core.frame", "DataFrame", "pandas"),
    ("pandas.core.series", "Series", "pandas"),
    ("pandas.core.indexes.base", "Index", "pandas"),
    ("pandas.core.indexes.range", "RangeIndex", "pandas"),
    ("pandas.core.arrays.string_", "StringDtype", "pandas"),
    ("pandas.core.arrays.string_", "StringArray", "pandas.arrays"),
    ("pandas.core.arrays.string_arrow", "ArrowStringArray", "pandas.arrays"),
    ("pandas._libs.missing", "NA", "pandas"),
)


def _allowed() -> dict[tuple[str, str], tuple[str, str]]:
    """``(module, name)`` as written in a file -> ``(module, name)`` to import it from now."""
    same = [
        ("builtins", "slice"),
        ("builtins", "bytearray"),
        ("builtins", "object"),  # with copyreg._reconstructor: protocols 0 and 1
        ("copyreg", "_reconstructor"),
        ("_codecs", "encode"),  # bytes in protocol 2 (latin1 only)
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.internals.managers", "BlockManager"),
        ("pandas.core.internals.managers", "SingleBlockManager"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        ("pyarrow.lib", "_restore_array"),  # pandas 3 str columns (validated)
        ("pyarrow.lib", "py_buffer"),
        ("pyarrow.lib", "type_for_alias"),
    ]
    table = {pair: pair for pair in same}
    for name in ("slice", "bytearray", "object"):  # Python 2 names (protocols < 3)
        table["__builtin__", name] = ("builtins", name)
    table["copy_reg", "_reconstructor"] = ("copyreg", "_reconstructor")
    for sub, name in _NUMPY_CORE:  # NumPy 1 wrote numpy.core.*, NumPy 2 writes numpy._core.*
        table[f"numpy.core.{sub}", name] = (f"numpy._core.{sub}", name)
        table[f"numpy._core.{sub}", name] = (f"numpy._core.{sub}", name)
    for module, name, public in _PANDAS_CLASSES:  # pandas < 3 wrote modules, 3 the public path
        table[module, name] = (public, name)
        table[public, name] = (public, name)
    for name in ("Int64Index", "UInt64Index", "Float64Index"):  # pandas 1.x, gone in 2.0
        table["pandas.core.indexes.numeric", name] = ("pandas", "Index")
    table["pandas.core.internals.blocks", "new_block"] = (
        "pandas._libs.internals",
        "_unpickle_block",
    )
    return table


ALLOWED = _allowed()
_DTYPE_SPEC = re.compile(r"(b1|[iu][1248]|f[248]|c(8|16)|O[48]|[US][0-9]{1,10})")
_MAX_DIM = 1 << 31  # the largest array dimension accepted
_MAX_COLUMNS = 1 << 22  # the most columns a frame may have


def lookup(module: str, name: str) -> Any:
    """The attribute ``name`` of ``module`` (imported first if need be)."""
    return getattr(importlib.import_module(module), name)


class Bad(Exception):
    """Well-formed opcodes that do not build a sane pandas/NumPy object (message: what)."""


def need(ok: object, what: str) -> None:
    """Raise :class:`Bad` with ``what`` unless ``ok``."""
    if not ok:
        raise Bad(what)


def _plain() -> tuple[type, ...]:
    return (str, float, int, bool, type(None), type(pd.NA))


def _name(v: object) -> str:
    """A short, safe description of a value from the file."""
    return repr(v[:40]) if type(v) is str else type(v).__name__


def _is_int(v: object) -> bool:
    return type(v) is int


def _size(shape: Any) -> int:
    """The number of items of a valid array shape; refuses anything else."""
    need(type(shape) is tuple and len(shape) <= 32, "an array shape must be a tuple")
    need(all(_is_int(d) and 0 <= d <= _MAX_DIM for d in shape), "bad array shape")
    return math.prod(shape)


def _dtype_ok(u: _Unpickler, dt: Any, objects: bool = True) -> Any:
    need(isinstance(dt, np.dtype) and u.ready(dt), "expected a NumPy dtype")
    ok = dt.kind in "biufcOUS" and dt.names is None and dt.subdtype is None
    need(ok and dt.metadata is None and (objects or not dt.hasobject), f"bad dtype {dt.str}")
    return dt


# ------------------------------------------------------------------------------ NumPy checks
def _reconstruct(u: _Unpickler, cls: Any, shape: Any, code: Any) -> Any:
    """``_reconstruct(ndarray, (0,), b'b')``: an empty array, given its data by BUILD."""
    need(cls is np.ndarray and shape == (0,) and code in (b"b", "b"), "bad ndarray rebuild")
    return u.pending(np.ndarray((0,), np.int8))


def _array_state(u: _Unpickler, arr: Any, state: Any) -> None:
    need(type(state) is tuple and len(state) == 5, "an ndarray state has 5 items")
    version, shape, dtype, fortran, raw = state
    need(_is_int(version) and version == 1 and type(fortran) is bool, "bad ndarray state")
    n, dt = _size(shape), _dtype_ok(u, dtype)
    if dt.hasobject:
        need(
            type(raw) is list and len(raw) == n, f"an object array of shape {shape} needs {n} items"
        )
        extra = set(map(type, raw)) - set(_plain())
        ok = all(issubclass(t, np.generic) and np.dtype(t).kind in "biuf" for t in extra)
        need(ok, "an object array may hold only numbers, text and missing values")
    else:
        size = n * dt.itemsize
        need(
            type(raw) in (bytes, bytearray) and len(raw) == size,
            f"array {shape} needs {size} bytes",
        )
    arr.__setstate__((1, shape, dt, fortran, raw))


def _frombuffer(u: _Unpickler, buf: Any, dtype: Any, shape: Any, order: Any) -> Any:
    dt = _dtype_ok(u, dtype, objects=False)
    size = _size(shape) * dt.itemsize
    ok = type(buf) in (bytes, bytearray) and order in ("C", "F") and len(buf) == size
    need(ok, f"array {shape} needs {size} bytes")
    return lookup("numpy._core.numeric", "_frombuffer")(buf, dt, shape, order)


def _scalar(u: _Unpickler, dtype: Any, data: Any) -> Any:
    dt = _dtype_ok(u, dtype, objects=False)
    need(type(data) is bytes and len(data) == dt.itemsize, "bad bytes for a NumPy scalar")
    return lookup("numpy._core.multiarray", "scalar")(dt, data)


def _dtype(u: _Unpickler, spec: Any, align: Any = False, copy: Any = True) -> Any:
    ok = type(spec) is str and _DTYPE_SPEC.fullmatch(spec) and align in (False, 0)
    need(ok and copy in (True, 1), f"unsupported dtype {_name(spec)}")
    return u.pending(np.dtype(spec, False, True))  # a copy: BUILD must not touch a shared one


def dtype_state(u: _Unpickler, dt: Any, state: Any) -> None:
    """The state a dtype of this spec has (only the byte order may differ)."""
    ref = dt.__reduce__()[2]
    ok = type(state) is tuple and len(state) == len(ref)
    ok = ok and all(type(a) is type(b) for a, b in zip(state, ref, strict=False))
    need(ok and state[0] == ref[0] and state[2:] == ref[2:], "bad dtype state")
    need(state[1] == ref[1] or {state[1], ref[1]} <= {"<", ">"}, "bad dtype byte order")
    dt.__setstate__(state)


# ----------------------------------------------------------------------------- pandas checks
def _values(u: _Unpickler, values: Any, ndim: int) -> None:
    """Block or index values: a checked ndarray of ``ndim`` dimensions, or a string array."""
    need(u.ready(values), "values used before they were given their state")
    if type(values) is np.ndarray:
        _dtype_ok(u, values.dtype)
        need(values.ndim == ndim, f"expected {ndim}-D values, found {values.ndim}-D")
    else:
        strings = (pd.arrays.ArrowStringArray, pd.arrays.StringArray)
        need(type(values) in strings, f"unexpected values {type(values).__name__}")


def _placement(loc: Any) -> range | np.ndarray:
    """A block's column positions: a slice of non-negative ints or a 1-D integer array."""
    if type(loc) is slice:
        start, stop, step = loc.start, loc.stop, 1 if loc.step is None else loc.step
        ok = _is_int(start) and _is_int(stop) and _is_int(step)
        need(ok and 0 <= start <= stop <= _MAX_DIM and step >= 1, "bad block placement")
        return range(start, stop, step)
    ok = type(loc) is np.ndarray and loc.ndim == 1 and loc.dtype.kind in "iu"
    need(ok, "bad block placement")
    return loc  # type: ignore[no-any-return]


def _block(u: _Unpickler, values: Any, loc: Any, ndim: int, n_rows: int | None) -> int:
    """Checks one block (``n_rows``: the index length, if known); returns its column count."""
    _values(u, values, ndim if type(values) is np.ndarray else 1)
    n = len(_placement(loc))
    if ndim == 1:
        want: tuple[int, ...] = (n,)
    elif type(values) is np.ndarray:
        want = (n, values.shape[1] if n_rows is None else n_rows)
    else:
        need(n == 1, "a string-array block holds one column")
        want = (values.shape[0] if n_rows is None else n_rows,)
    need(tuple(values.shape) == want, f"a block of shape {values.shape} does not fit {want}")
    return n


def _unpickle_block(u: _Unpickler, values: Any, loc: Any, ndim: Any) -> Any:
    need(_is_int(ndim) and ndim in (1, 2), "a block has 1 or 2 dimensions")
    _block(u, values, loc, ndim, None)
    return lookup("pandas._libs.internals", "_unpickle_block")(values, loc, ndim)


def _layout(u: _Unpickler, blocks: list[tuple[Any, Any]], axes: Any, ndim: int) -> list[Any]:
    """Blocks ``(values, placement)`` tile the columns exactly and fit the index; the axes."""
    need(type(axes) is list and len(axes) == ndim, f"a manager needs {ndim} axes")
    need(all(isinstance(a, pd.Index) and u.ready(a) for a in axes), "axes must be indexes")
    n_items, n_rows = len(axes[0]), len(axes[-1]) if ndim == 2 else None
    need(ndim == 1 or n_items <= _MAX_COLUMNS, f"more than {_MAX_COLUMNS} columns")
    counts = [_block(u, values, loc, ndim, n_rows) for values, loc in blocks]
    need(sum(counts) == n_items, "blocks must cover every column exactly once")
    seen = np.zeros(n_items, dtype=np.int64)
    for _, loc in blocks:
        idx = np.asarray(_placement(loc), dtype=np.int64)
        need(idx.size == 0 or (idx.min() >= 0 and idx.max() < n_items), "block out of range")
        np.add.at(seen, idx, 1)
    need((seen == 1).all(), "blocks must cover every column exactly once")
    return list(axes)


def _block_manager(u: _Unpickler, blocks: Any, axes: Any) -> Any:
    block = lookup("pandas.core.internals.blocks", "Block")
    ok = type(blocks) in (tuple, list) and all(isinstance(b, block) for b in blocks)
    need(ok, "a manager holds blocks only")
    axes = _layout(u, [(b.values, b.mgr_locs.indexer) for b in blocks], axes, 2)
    return lookup("pandas.core.internals.managers", "BlockManager")(tuple(blocks), axes)


def _manager_state(u: _Unpickler, mgr: Any, state: Any) -> None:
    """The pandas >= 0.14.1 state of a (Single)BlockManager: axes and blocks."""
    single = lookup("pandas.core.internals.managers", "SingleBlockManager")
    ok = type(state) is tuple and len(state) >= 4 and type(state[3]) is dict
    inner = state[3].get("0.14.1") if ok else None
    need(type(inner) is dict and set(inner) == {"axes", "blocks"}, "bad manager state")
    blocks = inner["blocks"]  # type: ignore[index]
    ok = type(blocks) is list and all(
        type(b) is dict and set(b) == {"values", "mgr_locs"} for b in blocks
    )
    need(ok, "bad manager blocks")
    pairs = [(b["values"], b["mgr_locs"]) for b in blocks]
    axes = _layout(u, pairs, inner["axes"], 1 if type(mgr) is single else 2)  # type: ignore[index]
    fresh = [{"values": v, "mgr_locs": loc} for v, loc in pairs]
    mgr.__setstate__(([], [], [], {"0.14.1": {"axes": axes, "blocks": fresh}}))


def _new_index(u: _Unpickler, cls: Any, d: Any) -> Any:
    need(cls in (pd.Index, pd.RangeIndex) and type(d) is dict, "bad index rebuild")
    need(type(d.get("name")) in _plain(), "an index name must be a plain value")
    if cls is pd.RangeIndex:
        bounds = [d.get(k, 1) for k in ("start", "stop", "step")]
        ok = set(d) <= {"start", "stop", "step", "name"} and all(map(_is_int, bounds))
        need(ok and bounds[2] != 0, "bad RangeIndex")
    else:
        need(set(d) <= {"data", "name"} and "data" in d, "bad Index keys")
        _values(u, d["data"], 1)
    return lookup("pandas.core.indexes.base", "_new_Index")(cls, dict(d))


def _frame_state(u: _Unpickler, obj: Any, state: Any) -> None:
    """A DataFrame's or Series' state: a checked manager and plain attributes."""
    series = type(obj) is pd.Series
    kind = "series" if series else "dataframe"
    keys = {"_mgr", "_data", "_typ", "_metadata", "attrs", "_attrs", "_flags"}
    need(type(state) is dict and set(state) <= keys | ({"_name"} if series else set()), "bad state")
    mgr = state.get("_mgr", state.get("_data"))
    want = "SingleBlockManager" if series else "BlockManager"
    ok = type(mgr) is lookup("pandas.core.internals.managers", want) and u.ready(mgr)
    need(ok, f"a {kind} needs a {want}")
    ok = state.get("_typ", kind) == kind and state.get("_metadata", obj._metadata) == obj._metadata
    attrs, flags = state.get("attrs", state.get("_attrs")) or {}, state.get("_flags", {})
    ok = ok and type(attrs) is dict and all(type(v) in _plain() for v in (*attrs, *attrs.values()))
    ok = ok and type(flags) is dict and set(flags) <= {"allows_duplicate_labels"}
    need(ok and all(type(v) is bool for v in flags.values()), f"bad {kind} state")
    new = {"_mgr": mgr, "_typ": kind, "_metadata": list(obj._metadata), "_attrs": dict(attrs)}
    new["_flags"] = {"allows_duplicate_labels": flags.get("allows_duplicate_labels", True)}
    if series:
        need(type(state.get("_name")) in _plain(), "a series name must be a plain value")
        new["_name"] = state.get("_name")
    obj.__setstate__(new)


def _arrow_strings_state(u: _Unpickler, arr: Any, state: Any) -> None:
    import pyarrow as pa

    keys = {"_pa_array", "_data", "_dtype", "_cache", "_readonly"}
    need(type(state) is dict and set(state) <= keys, "bad ArrowStringArray state")
    data, dtype = state.get("_pa_array", state.get("_data")), state.get("_dtype")
    ok = isinstance(data, pa.Array | pa.ChunkedArray)
    ok = ok and (pa.types.is_string(data.type) or pa.types.is_large_string(data.type))
    ok = ok and type(dtype) is pd.StringDtype and dtype.storage == "pyarrow"
    need(ok and type(state.get("_readonly", False)) is bool, "bad ArrowStringArray state")
    new = {"_pa_array": data, "_dtype": dtype, "_cache": {}}
    arr.__setstate__(new | ({"_readonly": state["_readonly"]} if "_readonly" in state else {}))


def _ndarray_backed(u: _Unpickler, cls: Any, checksum: Any, state: Any) -> Any:
    ok = cls is pd.arrays.StringArray and _is_int(checksum) and state is None
    need(ok, "only a python-backed StringArray may be rebuilt")
    return u.pending(
        lookup("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked")(cls, checksum, None)
    )


def _python_strings_state(u: _Unpickler, arr: Any, state: Any) -> None:
    need(type(state) is tuple and len(state) in (2, 3), "bad StringArray state")
    dtype, values = state[0], state[1]
    ok = type(dtype) is pd.StringDtype and dtype.storage == "python" and u.ready(values)
    ok = ok and type(values) is np.ndarray and values.dtype == object and values.ndim == 1
    na = (None, pd.NA)
    ok = ok and all(type(v) is str or v is na[0] or v is na[1] or v != v for v in values.tolist())
    need(ok, "a StringArray holds a 1-D object array of strings and missing values")
    arr.__setstate__((dtype, values))


# ----------------------------------------------------------------------- plain Python values
def _checked(path: str, ok: Callable[..., bool], what: str) -> Callable[..., Any]:
    """A checker that calls ``module.name`` (``path``) when ``ok(*args)`` holds."""

    def check(u: _Unpickler, *args: Any) -> Any:
        need(ok(*args), what)
        return lookup(*path.rsplit(".", 1))(*args)

    return check


def _bytes_args(*a: Any) -> bool:
    latin1 = len(a) == 2 and type(a[0]) is str and a[1] in ("latin1", "latin-1")
    return a == () or (len(a) == 1 and type(a[0]) in (bytes, bytearray)) or latin1


def _strings_dtype_args(storage: Any = None, na: Any = pd.NA) -> bool:
    return storage in (None, "python", "pyarrow") and (
        na is pd.NA or (type(na) is float and na != na)
    )


def _encode(u: _Unpickler, text: Any, encoding: Any = "utf-8") -> bytes:
    """``_codecs.encode(text, "latin1")``: how protocol 2 writes bytes."""
    ok = type(text) is str and encoding == "latin1"
    need(ok, f"refusing _codecs.encode with encoding {_name(encoding)}")
    return text.encode("latin1")  # type: ignore[no-any-return]


def _slice_args(*a: Any) -> bool:
    return 1 <= len(a) <= 3 and all(_is_int(x) or x is None for x in a)


def _reconstructor(u: _Unpickler, cls: Any, base: Any, state: Any) -> Any:
    need(base is object and state is None, "bad copyreg._reconstructor arguments")
    return u.new(cls, (), {})


def _restore_arrow_array(u: _Unpickler, state: Any) -> Any:
    arr = lookup("pyarrow.lib", "_restore_array")(state)
    arr.validate(full=True)  # buffers must match the declared type and length
    return arr


Rules = tuple[dict[Any, Callable[..., Any]], tuple[Any, ...], dict[Any, Callable[..., None]]]


@cache
def rules() -> Rules:
    """What may be called (and its checker), what NEWOBJ may create, and whose state is set how."""
    managers = importlib.import_module("pandas.core.internals.managers")
    calls: dict[Any, Callable[..., Any]] = {
        lookup("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        lookup("numpy._core.multiarray", "scalar"): _scalar,
        lookup("numpy._core.numeric", "_frombuffer"): _frombuffer,
        np.dtype: _dtype,
        lookup("pandas._libs.internals", "_unpickle_block"): _unpickle_block,
        managers.BlockManager: _block_manager,
        lookup("pandas.core.indexes.base", "_new_Index"): _new_index,
        lookup("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"): _ndarray_backed,
        lookup("copyreg", "_reconstructor"): _reconstructor,
        lookup("pyarrow.lib", "_restore_array"): _restore_arrow_array,
        pd.StringDtype: _checked("pandas.StringDtype", _strings_dtype_args, "bad string dtype"),
        lookup("_codecs", "encode"): _encode,
        slice: _checked("builtins.slice", _slice_args, "bad slice"),
        bytearray: _checked("builtins.bytearray", _bytes_args, "bytearray takes bytes only"),
        lookup("pyarrow.lib", "py_buffer"): _checked(
            "pyarrow.lib.py_buffer", lambda d: type(d) in (bytes, bytearray), "bad py_buffer"
        ),
        lookup("pyarrow.lib", "type_for_alias"): _checked(
            "pyarrow.lib.type_for_alias", lambda n: type(n) is str, "bad type name"
        ),
    }
    new: tuple[Any, ...] = (pd.DataFrame, pd.Series, pd.arrays.ArrowStringArray)
    new += (managers.BlockManager, managers.SingleBlockManager)
    builds: dict[Any, Callable[..., None]] = {
        np.ndarray: _array_state,
        pd.DataFrame: _frame_state,
        pd.Series: _frame_state,
        managers.BlockManager: _manager_state,
        managers.SingleBlockManager: _manager_state,
        pd.arrays.ArrowStringArray: _arrow_strings_state,
        pd.arrays.StringArray: _python_strings_state,
    }
    return calls, new, builds
