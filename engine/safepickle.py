"""Unpickle pandas/numpy data without running arbitrary code.

A pickle names the callables that rebuild it (``module.name`` pairs) and the unpickler calls them,
so ``pickle.load`` on a downloaded file runs whatever the file asks for. :func:`safe_load` resolves
only the pairs that a pickled pandas ``DataFrame`` / ``Series`` / ``Index`` and NumPy arrays need,
as written by pandas 1.x, 2.x and 3.x (NumPy 1 and 2, pickle protocols 0 to 5), and refuses any
other pair with a one-line :class:`DataError`.

The list was taken from ``pickletools``/``find_class`` traces of real frames (object, str, float64
and NaN columns; RangeIndex, integer, float and string indexes; pandas 3 ``str`` columns, which
pickle as pyarrow arrays). Pairs that old pandas/NumPy/Python 2 wrote under another name are
mapped to where they live now. Two callables are wrapped: ``_codecs.encode`` (protocol 2 bytes)
accepts only ``latin1``, and pyarrow's ``_restore_array`` fully validates the rebuilt array.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable
from typing import IO, Any

from routerbench.engine.data import DataError

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
        ("_codecs", "encode"),  # bytes in protocol 2 (wrapped: latin1 only)
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.internals.managers", "BlockManager"),
        ("pandas.core.internals.managers", "SingleBlockManager"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        ("pyarrow.lib", "_restore_array"),  # pandas 3 str columns (wrapped: validated)
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


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _restore_arrow_array(state: Any) -> Any:
    from pyarrow.lib import _restore_array

    arr = _restore_array(state)
    arr.validate(full=True)  # buffers must match the declared type and length
    return arr


_WRAPPED: dict[tuple[str, str], Callable[..., Any]] = {
    ("_codecs", "encode"): _latin1_encode,
    ("pyarrow.lib", "_restore_array"): _restore_arrow_array,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], name: str) -> None:
        super().__init__(file)
        self.name = name

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED.get((module, name))
        if target is None:
            raise DataError(
                f"{self.name}: refusing to unpickle {module}.{name}: "
                "only pandas/numpy data types are allowed"
            )
        if target in _WRAPPED:
            return _WRAPPED[target]
        return getattr(importlib.import_module(target[0]), target[1])


def safe_load(fileobj: IO[bytes], *, name: str) -> object:
    """Unpickle ``fileobj`` admitting only pandas/NumPy data types; ``name`` is used in errors.

    >>> import io, pickle, numpy as np, pandas as pd
    >>> df = pd.DataFrame({"gpt-4": pd.Series([1.0, np.nan], dtype=object), "x": ["a", "b"]})
    >>> safe_load(io.BytesIO(pickle.dumps(df, protocol=4)), name="f.pkl").equals(df)
    True
    >>> safe_load(io.BytesIO(pickle.dumps(print)), name="f.pkl")
    Traceback (most recent call last):
    ...
    routerbench.engine.data.DataError: f.pkl: refusing to unpickle builtins.print: only \
pandas/numpy data types are allowed
    """
    try:
        return _Unpickler(fileobj, name).load()
    except DataError:
        raise
    except Exception as exc:  # truncated, corrupt or inconsistent: one line naming the file
        detail = (str(exc).splitlines() or [""])[0][:200]
        raise DataError(f"{name}: not a readable pickle ({type(exc).__name__}: {detail})") from None
