"""Unpickle pandas/numpy data without running arbitrary code, and without trusting its shapes.

A pickle names the callables that rebuild it (``module.name`` pairs) and the unpickler calls them,
so ``pickle.load`` on a downloaded file runs whatever the file asks for. :func:`safe_load` resolves
only the pairs that a pickled pandas ``DataFrame`` / ``Series`` / ``Index`` and NumPy arrays need,
as written by pandas 1.x, 2.x and 3.x (NumPy 1 and 2, pickle protocols 0 to 5), and refuses any
other pair with a one-line :class:`DataError`.

Admitting a callable is not enough: NumPy and pandas trust the arguments and states they are
given (an object array whose shape is larger than its list, a block placed past the last column
crash the process). So this module runs Python's own unpickler with every call (``REDUCE``,
``INST``, ``OBJ``), ``NEWOBJ``, ``BUILD`` and ``FRAME`` going through a check written for it:

- arrays: ``shape x itemsize`` equals the buffer's length; an object array's list has exactly
  ``prod(shape)`` items, each str, float, int, bool, None, NA or a NumPy number; dtypes are plain
  (bool, integer, float, complex, object, fixed-width text), never structured;
- blocks and managers: placements lie inside the columns and cover each exactly once; every
  block's shape matches its placement and the index;
- frames and series: their state holds a checked manager and plain attributes;
- every object gets its state once and is used only after it; nothing follows ``STOP``; a frame
  holds the bytes it declares.

A pickle that names no callable at all (plain lists, dicts, text and numbers, such as the
original's embedding cache) is read first by Python's C unpickler with every name refused, so
nothing can be called; the checked unpickler reads the others (and anything after ``STOP`` is
refused either way).

The list was taken from ``pickletools``/``find_class`` traces of real frames (object, str, float64
and NaN columns; RangeIndex, integer, float and string indexes; pandas 3 ``str`` columns, which
pickle as pyarrow arrays, fully validated when rebuilt). Pairs that old pandas/NumPy/Python 2 wrote
under another name are mapped to where they live now. Any other failure while reading (truncated,
corrupt, inconsistent) is a one-line :class:`DataError` naming the file, never a traceback.
"""

from __future__ import annotations

import importlib
import math
import pickle
import re
import struct
import warnings
from collections.abc import Callable
from functools import cache
from typing import IO, Any, ClassVar

import numpy as np
import pandas as pd

from routerbench.engine.errors import DataError

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


_ALLOWED = _allowed()
_DTYPE_SPEC = re.compile(r"(b1|[iu][1248]|f[248]|c(8|16)|O[48]|[US][0-9]{1,10})")
_MAX_DIM = 1 << 31  # the largest array dimension accepted
_MAX_COLUMNS = 1 << 22  # the most columns a frame may have
_READ_CHUNK = 1 << 24


def _get(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


class _Bad(Exception):
    """Well-formed opcodes that do not build a sane pandas/NumPy object (message: what)."""


def _need(ok: object, what: str) -> None:
    if not ok:
        raise _Bad(what)


def _plain() -> tuple[type, ...]:
    return (str, float, int, bool, type(None), type(pd.NA))


def _name(v: object) -> str:
    """A short, safe description of a value from the file."""
    return repr(v[:40]) if type(v) is str else type(v).__name__


def _is_int(v: object) -> bool:
    return type(v) is int


def _size(shape: Any) -> int:
    """The number of items of a valid array shape; refuses anything else."""
    _need(type(shape) is tuple and len(shape) <= 32, "an array shape must be a tuple")
    _need(all(_is_int(d) and 0 <= d <= _MAX_DIM for d in shape), "bad array shape")
    return math.prod(shape)


def _dtype_ok(u: _Unpickler, dt: Any, objects: bool = True) -> Any:
    _need(isinstance(dt, np.dtype) and u.ready(dt), "expected a NumPy dtype")
    ok = dt.kind in "biufcOUS" and dt.names is None and dt.subdtype is None
    _need(ok and dt.metadata is None and (objects or not dt.hasobject), f"bad dtype {dt.str}")
    return dt


# ------------------------------------------------------------------------------ NumPy checks
def _reconstruct(u: _Unpickler, cls: Any, shape: Any, code: Any) -> Any:
    """``_reconstruct(ndarray, (0,), b'b')``: an empty array, given its data by BUILD."""
    _need(cls is np.ndarray and shape == (0,) and code in (b"b", "b"), "bad ndarray rebuild")
    return u.pending(np.ndarray((0,), np.int8))


def _array_state(u: _Unpickler, arr: Any, state: Any) -> None:
    _need(type(state) is tuple and len(state) == 5, "an ndarray state has 5 items")
    version, shape, dtype, fortran, raw = state
    _need(_is_int(version) and version == 1 and type(fortran) is bool, "bad ndarray state")
    n, dt = _size(shape), _dtype_ok(u, dtype)
    if dt.hasobject:
        _need(
            type(raw) is list and len(raw) == n, f"an object array of shape {shape} needs {n} items"
        )
        extra = set(map(type, raw)) - set(_plain())
        ok = all(issubclass(t, np.generic) and np.dtype(t).kind in "biuf" for t in extra)
        _need(ok, "an object array may hold only numbers, text and missing values")
    else:
        size = n * dt.itemsize
        _need(
            type(raw) in (bytes, bytearray) and len(raw) == size,
            f"array {shape} needs {size} bytes",
        )
    arr.__setstate__((1, shape, dt, fortran, raw))


def _frombuffer(u: _Unpickler, buf: Any, dtype: Any, shape: Any, order: Any) -> Any:
    dt = _dtype_ok(u, dtype, objects=False)
    size = _size(shape) * dt.itemsize
    ok = type(buf) in (bytes, bytearray) and order in ("C", "F") and len(buf) == size
    _need(ok, f"array {shape} needs {size} bytes")
    return _get("numpy._core.numeric", "_frombuffer")(buf, dt, shape, order)


def _scalar(u: _Unpickler, dtype: Any, data: Any) -> Any:
    dt = _dtype_ok(u, dtype, objects=False)
    _need(type(data) is bytes and len(data) == dt.itemsize, "bad bytes for a NumPy scalar")
    return _get("numpy._core.multiarray", "scalar")(dt, data)


def _dtype(u: _Unpickler, spec: Any, align: Any = False, copy: Any = True) -> Any:
    ok = type(spec) is str and _DTYPE_SPEC.fullmatch(spec) and align in (False, 0)
    _need(ok and copy in (True, 1), f"unsupported dtype {_name(spec)}")
    return u.pending(np.dtype(spec, False, True))  # a copy: BUILD must not touch a shared one


def _dtype_state(u: _Unpickler, dt: Any, state: Any) -> None:
    """The state a dtype of this spec has (only the byte order may differ)."""
    ref = dt.__reduce__()[2]
    ok = type(state) is tuple and len(state) == len(ref)
    ok = ok and all(type(a) is type(b) for a, b in zip(state, ref, strict=False))
    _need(ok and state[0] == ref[0] and state[2:] == ref[2:], "bad dtype state")
    _need(state[1] == ref[1] or {state[1], ref[1]} <= {"<", ">"}, "bad dtype byte order")
    dt.__setstate__(state)


# ----------------------------------------------------------------------------- pandas checks
def _values(u: _Unpickler, values: Any, ndim: int) -> None:
    """Block or index values: a checked ndarray of ``ndim`` dimensions, or a string array."""
    _need(u.ready(values), "values used before they were given their state")
    if type(values) is np.ndarray:
        _dtype_ok(u, values.dtype)
        _need(values.ndim == ndim, f"expected {ndim}-D values, found {values.ndim}-D")
    else:
        strings = (pd.arrays.ArrowStringArray, pd.arrays.StringArray)
        _need(type(values) in strings, f"unexpected values {type(values).__name__}")


def _placement(loc: Any) -> range | np.ndarray:
    """A block's column positions: a slice of non-negative ints or a 1-D integer array."""
    if type(loc) is slice:
        start, stop, step = loc.start, loc.stop, 1 if loc.step is None else loc.step
        ok = _is_int(start) and _is_int(stop) and _is_int(step)
        _need(ok and 0 <= start <= stop <= _MAX_DIM and step >= 1, "bad block placement")
        return range(start, stop, step)
    ok = type(loc) is np.ndarray and loc.ndim == 1 and loc.dtype.kind in "iu"
    _need(ok, "bad block placement")
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
        _need(n == 1, "a string-array block holds one column")
        want = (values.shape[0] if n_rows is None else n_rows,)
    _need(tuple(values.shape) == want, f"a block of shape {values.shape} does not fit {want}")
    return n


def _unpickle_block(u: _Unpickler, values: Any, loc: Any, ndim: Any) -> Any:
    _need(_is_int(ndim) and ndim in (1, 2), "a block has 1 or 2 dimensions")
    _block(u, values, loc, ndim, None)
    return _get("pandas._libs.internals", "_unpickle_block")(values, loc, ndim)


def _layout(u: _Unpickler, blocks: list[tuple[Any, Any]], axes: Any, ndim: int) -> list[Any]:
    """Blocks ``(values, placement)`` tile the columns exactly and fit the index; the axes."""
    _need(type(axes) is list and len(axes) == ndim, f"a manager needs {ndim} axes")
    _need(all(isinstance(a, pd.Index) and u.ready(a) for a in axes), "axes must be indexes")
    n_items, n_rows = len(axes[0]), len(axes[-1]) if ndim == 2 else None
    _need(ndim == 1 or n_items <= _MAX_COLUMNS, f"more than {_MAX_COLUMNS} columns")
    counts = [_block(u, values, loc, ndim, n_rows) for values, loc in blocks]
    _need(sum(counts) == n_items, "blocks must cover every column exactly once")
    seen = np.zeros(n_items, dtype=np.int64)
    for _, loc in blocks:
        idx = np.asarray(_placement(loc), dtype=np.int64)
        _need(idx.size == 0 or (idx.min() >= 0 and idx.max() < n_items), "block out of range")
        np.add.at(seen, idx, 1)
    _need((seen == 1).all(), "blocks must cover every column exactly once")
    return list(axes)


def _block_manager(u: _Unpickler, blocks: Any, axes: Any) -> Any:
    block = _get("pandas.core.internals.blocks", "Block")
    ok = type(blocks) in (tuple, list) and all(isinstance(b, block) for b in blocks)
    _need(ok, "a manager holds blocks only")
    axes = _layout(u, [(b.values, b.mgr_locs.indexer) for b in blocks], axes, 2)
    return _get("pandas.core.internals.managers", "BlockManager")(tuple(blocks), axes)


def _manager_state(u: _Unpickler, mgr: Any, state: Any) -> None:
    """The pandas >= 0.14.1 state of a (Single)BlockManager: axes and blocks."""
    single = _get("pandas.core.internals.managers", "SingleBlockManager")
    ok = type(state) is tuple and len(state) >= 4 and type(state[3]) is dict
    inner = state[3].get("0.14.1") if ok else None
    _need(type(inner) is dict and set(inner) == {"axes", "blocks"}, "bad manager state")
    blocks = inner["blocks"]  # type: ignore[index]
    ok = type(blocks) is list and all(
        type(b) is dict and set(b) == {"values", "mgr_locs"} for b in blocks
    )
    _need(ok, "bad manager blocks")
    pairs = [(b["values"], b["mgr_locs"]) for b in blocks]
    axes = _layout(u, pairs, inner["axes"], 1 if type(mgr) is single else 2)  # type: ignore[index]
    fresh = [{"values": v, "mgr_locs": loc} for v, loc in pairs]
    mgr.__setstate__(([], [], [], {"0.14.1": {"axes": axes, "blocks": fresh}}))


def _new_index(u: _Unpickler, cls: Any, d: Any) -> Any:
    _need(cls in (pd.Index, pd.RangeIndex) and type(d) is dict, "bad index rebuild")
    _need(type(d.get("name")) in _plain(), "an index name must be a plain value")
    if cls is pd.RangeIndex:
        bounds = [d.get(k, 1) for k in ("start", "stop", "step")]
        ok = set(d) <= {"start", "stop", "step", "name"} and all(map(_is_int, bounds))
        _need(ok and bounds[2] != 0, "bad RangeIndex")
    else:
        _need(set(d) <= {"data", "name"} and "data" in d, "bad Index keys")
        _values(u, d["data"], 1)
    return _get("pandas.core.indexes.base", "_new_Index")(cls, dict(d))


def _frame_state(u: _Unpickler, obj: Any, state: Any) -> None:
    """A DataFrame's or Series' state: a checked manager and plain attributes."""
    series = type(obj) is pd.Series
    kind = "series" if series else "dataframe"
    keys = {"_mgr", "_data", "_typ", "_metadata", "attrs", "_attrs", "_flags"}
    _need(
        type(state) is dict and set(state) <= keys | ({"_name"} if series else set()), "bad state"
    )
    mgr = state.get("_mgr", state.get("_data"))
    want = "SingleBlockManager" if series else "BlockManager"
    ok = type(mgr) is _get("pandas.core.internals.managers", want) and u.ready(mgr)
    _need(ok, f"a {kind} needs a {want}")
    ok = state.get("_typ", kind) == kind and state.get("_metadata", obj._metadata) == obj._metadata
    attrs, flags = state.get("attrs", state.get("_attrs")) or {}, state.get("_flags", {})
    ok = ok and type(attrs) is dict and all(type(v) in _plain() for v in (*attrs, *attrs.values()))
    ok = ok and type(flags) is dict and set(flags) <= {"allows_duplicate_labels"}
    _need(ok and all(type(v) is bool for v in flags.values()), f"bad {kind} state")
    new = {"_mgr": mgr, "_typ": kind, "_metadata": list(obj._metadata), "_attrs": dict(attrs)}
    new["_flags"] = {"allows_duplicate_labels": flags.get("allows_duplicate_labels", True)}
    if series:
        _need(type(state.get("_name")) in _plain(), "a series name must be a plain value")
        new["_name"] = state.get("_name")
    obj.__setstate__(new)


def _arrow_strings_state(u: _Unpickler, arr: Any, state: Any) -> None:
    import pyarrow as pa

    keys = {"_pa_array", "_data", "_dtype", "_cache", "_readonly"}
    _need(type(state) is dict and set(state) <= keys, "bad ArrowStringArray state")
    data, dtype = state.get("_pa_array", state.get("_data")), state.get("_dtype")
    ok = isinstance(data, pa.Array | pa.ChunkedArray)
    ok = ok and (pa.types.is_string(data.type) or pa.types.is_large_string(data.type))
    ok = ok and type(dtype) is pd.StringDtype and dtype.storage == "pyarrow"
    _need(ok and type(state.get("_readonly", False)) is bool, "bad ArrowStringArray state")
    new = {"_pa_array": data, "_dtype": dtype, "_cache": {}}
    arr.__setstate__(new | ({"_readonly": state["_readonly"]} if "_readonly" in state else {}))


def _ndarray_backed(u: _Unpickler, cls: Any, checksum: Any, state: Any) -> Any:
    ok = cls is pd.arrays.StringArray and _is_int(checksum) and state is None
    _need(ok, "only a python-backed StringArray may be rebuilt")
    return u.pending(
        _get("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked")(cls, checksum, None)
    )


def _python_strings_state(u: _Unpickler, arr: Any, state: Any) -> None:
    _need(type(state) is tuple and len(state) in (2, 3), "bad StringArray state")
    dtype, values = state[0], state[1]
    ok = type(dtype) is pd.StringDtype and dtype.storage == "python" and u.ready(values)
    ok = ok and type(values) is np.ndarray and values.dtype == object and values.ndim == 1
    na = (None, pd.NA)
    ok = ok and all(type(v) is str or v is na[0] or v is na[1] or v != v for v in values.tolist())
    _need(ok, "a StringArray holds a 1-D object array of strings and missing values")
    arr.__setstate__((dtype, values))


# ----------------------------------------------------------------------- plain Python values
def _checked(path: str, ok: Callable[..., bool], what: str) -> Callable[..., Any]:
    """A checker that calls ``module.name`` (``path``) when ``ok(*args)`` holds."""

    def check(u: _Unpickler, *args: Any) -> Any:
        _need(ok(*args), what)
        return _get(*path.rsplit(".", 1))(*args)

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
    _need(ok, f"refusing _codecs.encode with encoding {_name(encoding)}")
    return text.encode("latin1")  # type: ignore[no-any-return]


def _slice_args(*a: Any) -> bool:
    return 1 <= len(a) <= 3 and all(_is_int(x) or x is None for x in a)


def _reconstructor(u: _Unpickler, cls: Any, base: Any, state: Any) -> Any:
    _need(base is object and state is None, "bad copyreg._reconstructor arguments")
    return u.new(cls, (), {})


def _restore_arrow_array(u: _Unpickler, state: Any) -> Any:
    arr = _get("pyarrow.lib", "_restore_array")(state)
    arr.validate(full=True)  # buffers must match the declared type and length
    return arr


_Rules = tuple[dict[Any, Callable[..., Any]], tuple[Any, ...], dict[Any, Callable[..., None]]]


@cache
def _rules() -> _Rules:
    """What may be called (and its checker), what NEWOBJ may create, and whose state is set how."""
    managers = importlib.import_module("pandas.core.internals.managers")
    calls: dict[Any, Callable[..., Any]] = {
        _get("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        _get("numpy._core.multiarray", "scalar"): _scalar,
        _get("numpy._core.numeric", "_frombuffer"): _frombuffer,
        np.dtype: _dtype,
        _get("pandas._libs.internals", "_unpickle_block"): _unpickle_block,
        managers.BlockManager: _block_manager,
        _get("pandas.core.indexes.base", "_new_Index"): _new_index,
        _get("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"): _ndarray_backed,
        _get("copyreg", "_reconstructor"): _reconstructor,
        _get("pyarrow.lib", "_restore_array"): _restore_arrow_array,
        pd.StringDtype: _checked("pandas.StringDtype", _strings_dtype_args, "bad string dtype"),
        _get("_codecs", "encode"): _encode,
        slice: _checked("builtins.slice", _slice_args, "bad slice"),
        bytearray: _checked("builtins.bytearray", _bytes_args, "bytearray takes bytes only"),
        _get("pyarrow.lib", "py_buffer"): _checked(
            "pyarrow.lib.py_buffer", lambda d: type(d) in (bytes, bytearray), "bad py_buffer"
        ),
        _get("pyarrow.lib", "type_for_alias"): _checked(
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


class _Reader:
    """A file whose ``read(n)`` allocates no more than the data it returns (a forged frame size
    of 2**60 must not allocate 2**60 bytes)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.readline = f.readline

    def read(self, n: int = -1) -> bytes:
        if n <= _READ_CHUNK:
            return self.f.read(n)
        parts = []
        while n > 0 and (part := self.f.read(min(n, _READ_CHUNK))):
            parts.append(part)
            n -= len(part)
        return b"".join(parts)


_PyUnpickler: Any = pickle._Unpickler  # type: ignore[attr-defined]  # the pure-Python one


class _Unpickler(_PyUnpickler):
    dispatch: ClassVar[dict[int, Any]] = dict(_PyUnpickler.dispatch)

    def __init__(self, file: IO[bytes], name: str) -> None:
        self.reader = _Reader(file)
        super().__init__(self.reader)
        self.name = name
        self._pending: dict[int, Any] = {}  # created, waiting for BUILD (id -> object)
        self._sealed: set[int] = set()  # ids of containers handed to a call or a state
        self._keep: list[Any] = []

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED.get((module, name))
        if target is None:
            raise DataError(
                f"{self.name}: refusing to unpickle {module}.{name}: "
                "only pandas/numpy data types are allowed"
            )
        return _get(*target)

    def pending(self, obj: Any) -> Any:
        """``obj`` was created without its state: nothing may use it before BUILD gives it."""
        self._pending[id(obj)] = obj
        return obj

    def ready(self, obj: object) -> bool:
        return id(obj) not in self._pending

    def new(self, cls: Any, args: Any, kwargs: Any) -> Any:
        what = getattr(cls, "__name__", type(cls).__name__)
        ok = any(cls is c for c in _rules()[1]) and args == () and kwargs == {}
        _need(ok, f"refusing to create {what}")
        return self.pending(cls.__new__(cls))

    def call(self, func: Any, args: Any) -> Any:
        what = getattr(func, "__name__", type(func).__name__)
        check = _rules()[0].get(func)
        _need(check is not None and type(args) is tuple, f"refusing to call {what}")
        self.seal(args)
        return check(self, *args)  # type: ignore[misc]

    def seal(self, value: Any, depth: int = 0) -> None:
        """Containers handed to a call or a state: no opcode may change them afterwards (an
        object built from a list must not see the list change once it was checked)."""
        if type(value) in (list, dict, set, tuple) and depth < 8:
            if type(value) is not tuple:
                self._sealed.add(id(value))
                self._keep.append(value)  # ids stay unique while the pickle is read
            items = value.values() if type(value) is dict else value
            for item in items:
                self.seal(item, depth + 1)

    def target(self, kind: type) -> Any:
        """The container an item opcode changes: a ``kind`` not handed to anything yet."""
        obj = self.stack[-1]
        _need(type(obj) is kind, f"refusing to add items to a {type(obj).__name__}")
        _need(id(obj) not in self._sealed, f"refusing to change a {kind.__name__} already used")
        return obj

    # -- the opcodes that add items to containers: only plain, not yet used ones
    def load_setitem(self) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        self.target(dict)[key] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self.target(dict)
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]

    def load_append(self) -> None:
        value = self.stack.pop()
        self.target(list).append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self.target(list).extend(items)

    def load_additems(self) -> None:
        items = self.pop_mark()
        self.target(set).update(items)

    # -- the opcodes that call or change objects
    def load_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self.call(self.stack[-1], args)

    def _instantiate(self, klass: Any, args: list[Any]) -> None:  # INST and OBJ
        self.append(self.call(klass, tuple(args)))

    def load_newobj(self) -> None:
        args = self.stack.pop()
        self.seal(args)
        self.append(self.new(self.stack.pop(), args, {}))

    def load_newobj_ex(self) -> None:
        kwargs, args = self.stack.pop(), self.stack.pop()
        self.append(self.new(self.stack.pop(), args, kwargs))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        what = type(inst).__name__
        _need(self._pending.pop(id(inst), None) is inst, f"refusing to set the state of {what}")
        build = _dtype_state if isinstance(inst, np.dtype) else _rules()[2].get(type(inst))
        _need(build is not None, f"refusing to set the state of {what}")
        self.seal(state)
        build(self, inst, state)  # type: ignore[misc]

    def load_frame(self) -> None:
        (size,) = struct.unpack("<Q", self.read(8))
        self._unframer.load_frame(size)
        got = len(self._unframer.current_frame.getbuffer())
        _need(got == size, f"a frame declares {size} bytes, the file has {got}")

    def load_all(self) -> object:
        obj = self.load()
        if self._pending:
            what = type(next(iter(self._pending.values()))).__name__
            raise _Bad(f"a {what} was created but never given its state")
        frame = self._unframer.current_frame
        if (frame is not None and frame.read(1)) or self.reader.read(1):
            raise _Bad("bytes after the end of the pickle (STOP)")
        return obj


for _op, _fn in (
    (pickle.SETITEM, _Unpickler.load_setitem),
    (pickle.SETITEMS, _Unpickler.load_setitems),
    (pickle.APPEND, _Unpickler.load_append),
    (pickle.APPENDS, _Unpickler.load_appends),
    (pickle.ADDITEMS, _Unpickler.load_additems),
    (pickle.REDUCE, _Unpickler.load_reduce),
    (pickle.NEWOBJ, _Unpickler.load_newobj),
    (pickle.NEWOBJ_EX, _Unpickler.load_newobj_ex),
    (pickle.BUILD, _Unpickler.load_build),
    (pickle.FRAME, _Unpickler.load_frame),
):
    _Unpickler.dispatch[_op[0]] = _fn


class _HasGlobals(Exception):
    """The pickle names a callable: it needs the checked unpickler."""


class _NoGlobals(pickle.Unpickler):
    """Python's C unpickler admitting no callable at all: what it can build is only plain data
    (lists, dicts, tuples, sets, str, bytes, numbers, None), never a call."""

    def find_class(self, module: str, name: str) -> Any:  # also reached by EXT and INST/OBJ
        raise _HasGlobals

    def persistent_load(self, pid: Any) -> Any:
        raise _HasGlobals


def _plain_data(fileobj: IO[bytes]) -> tuple[bool, object]:
    """``(True, obj)`` where the pickle names no callable (the original's embedding cache: a
    list of dicts of str and float lists), read by the C unpickler, about 4x faster than the
    checked one; ``(False, None)``, with the file rewound, where it names one, fails (the
    checked unpickler says why) or cannot be rewound."""
    if not fileobj.seekable():
        return False, None
    start = fileobj.tell()
    reader = _Reader(fileobj)
    try:
        obj = _NoGlobals(reader).load()
        if not reader.read(1):  # else: bytes after STOP, refused by the checked unpickler
            return True, obj
    except Exception:  # a name, or a damaged file
        pass
    fileobj.seek(start)
    return False, None


def safe_load(fileobj: IO[bytes], *, name: str) -> object:
    """Unpickle ``fileobj`` admitting only pandas/NumPy data types; ``name`` is used in errors.

    >>> import io, pickle, numpy as np, pandas as pd
    >>> df = pd.DataFrame({"gpt-4": pd.Series([1.0, np.nan], dtype=object), "x": ["a", "b"]})
    >>> safe_load(io.BytesIO(pickle.dumps(df, protocol=4)), name="f.pkl").equals(df)
    True
    >>> safe_load(io.BytesIO(pickle.dumps([{"prompt": "hi", "embedding": [0.5]}])), name="c.pkl")
    [{'prompt': 'hi', 'embedding': [0.5]}]
    >>> safe_load(io.BytesIO(pickle.dumps(print)), name="f.pkl")
    Traceback (most recent call last):
    ...
    routerbench.engine.data.DataError: f.pkl: refusing to unpickle builtins.print: only \
pandas/numpy data types are allowed
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain, obj = _plain_data(fileobj)
            return obj if plain else _Unpickler(fileobj, name).load_all()
    except DataError:
        raise
    except _Bad as exc:
        raise DataError(f"{name}: not a readable pickle of pandas data ({exc})") from None
    except Exception as exc:  # truncated, corrupt or inconsistent: one line naming the file
        try:
            text = (str(exc).splitlines() or [""])[0][:200]
        except Exception:  # a message that cannot be shown (recursive, too long an int)
            text = "?"
        raise DataError(f"{name}: not a readable pickle ({type(exc).__name__}: {text})") from None
