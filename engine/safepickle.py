"""Unpickle pandas/numpy data without running arbitrary code, and without trusting its shapes.

A pickle names the callables that rebuild it (``module.name`` pairs) and the unpickler calls them,
so ``pickle.load`` on a downloaded file runs whatever the file asks for. :func:`safe_load` resolves
only the pairs that a pickled pandas ``DataFrame`` / ``Series`` / ``Index`` and NumPy arrays need,
as written by pandas 1.x, 2.x and 3.x (NumPy 1 and 2, pickle protocols 0 to 5), and refuses any
other pair with a one-line :class:`DataError`.

Admitting a callable is not enough: NumPy and pandas trust the arguments and states they are
given (an object array whose shape is larger than its list, a block placed past the last column
crash the process). So this module runs Python's own unpickler with every call (``REDUCE``,
``INST``, ``OBJ``), ``NEWOBJ``, ``BUILD`` and ``FRAME`` going through a check written for it
(the checks and the allow-list are in :mod:`routerbench.engine.safepickle_rules`):

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

The allow-list was taken from ``pickletools``/``find_class`` traces of real frames (object, str,
float64 and NaN columns; RangeIndex, integer, float and string indexes; pandas 3 ``str`` columns,
which pickle as pyarrow arrays, fully validated when rebuilt). Pairs that old pandas/NumPy/Python 2
wrote under another name are mapped to where they live now. Any other failure while reading
(truncated, corrupt, inconsistent) is a one-line :class:`DataError` naming the file, never a
traceback.
"""

from __future__ import annotations

import pickle
import struct
import warnings
from typing import IO, Any, ClassVar

import numpy as np

from routerbench.engine.errors import DataError, first_line
from routerbench.engine.safepickle_rules import ALLOWED, Bad, dtype_state, lookup, need, rules

_READ_CHUNK = 1 << 24


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
        target = ALLOWED.get((module, name))
        if target is None:
            raise DataError(
                f"{self.name}: refusing to unpickle {module}.{name}: "
                "only pandas/numpy data types are allowed"
            )
        return lookup(*target)

    def pending(self, obj: Any) -> Any:
        """``obj`` was created without its state: nothing may use it before BUILD gives it."""
        self._pending[id(obj)] = obj
        return obj

    def ready(self, obj: object) -> bool:
        return id(obj) not in self._pending

    def new(self, cls: Any, args: Any, kwargs: Any) -> Any:
        what = getattr(cls, "__name__", type(cls).__name__)
        ok = any(cls is c for c in rules()[1]) and args == () and kwargs == {}
        need(ok, f"refusing to create {what}")
        return self.pending(cls.__new__(cls))

    def call(self, func: Any, args: Any) -> Any:
        what = getattr(func, "__name__", type(func).__name__)
        check = rules()[0].get(func)
        need(check is not None and type(args) is tuple, f"refusing to call {what}")
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
        need(type(obj) is kind, f"refusing to add items to a {type(obj).__name__}")
        need(id(obj) not in self._sealed, f"refusing to change a {kind.__name__} already used")
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
        need(self._pending.pop(id(inst), None) is inst, f"refusing to set the state of {what}")
        build = dtype_state if isinstance(inst, np.dtype) else rules()[2].get(type(inst))
        need(build is not None, f"refusing to set the state of {what}")
        self.seal(state)
        build(self, inst, state)  # type: ignore[misc]

    def load_frame(self) -> None:
        (size,) = struct.unpack("<Q", self.read(8))
        self._unframer.load_frame(size)
        got = len(self._unframer.current_frame.getbuffer())
        need(got == size, f"a frame declares {size} bytes, the file has {got}")

    def load_all(self) -> object:
        obj = self.load()
        if self._pending:
            what = type(next(iter(self._pending.values()))).__name__
            raise Bad(f"a {what} was created but never given its state")
        frame = self._unframer.current_frame
        if (frame is not None and frame.read(1)) or self.reader.read(1):
            raise Bad("bytes after the end of the pickle (STOP)")
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
    >>> safe_load(io.BytesIO(pickle.dumps(eval)), name="f.pkl")
    Traceback (most recent call last):
    ...
    routerbench.engine.errors.DataError: f.pkl: refusing to unpickle builtins.eval: only \
pandas/numpy data types are allowed
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain, obj = _plain_data(fileobj)
            return obj if plain else _Unpickler(fileobj, name).load_all()
    except DataError:
        raise
    except Bad as exc:
        raise DataError(f"{name}: not a readable pickle of pandas data ({exc})") from None
    except Exception as exc:  # truncated, corrupt or inconsistent: one line naming the file
        raise DataError(f"{name}: not a readable pickle ({first_line(exc)})") from None
