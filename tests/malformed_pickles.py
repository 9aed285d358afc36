"""Malformed and hostile pickles for the ``routerbench`` command (class ``pickles``).

Built from one valid upstream wide pickle written by the project's own writer
(``io.save(synth.generate(60, seed), path, format="upstream-wide")``): truncations, bytes after
STOP, flipped opcodes, length prefixes and frame sizes, text made invalid UTF-8, placements and
costs and qualities mutated into values the README refuses; hand-made pickles that call
``os.system``, ``eval``, ``subprocess`` and friends (each would create ``out`` in the case
folder); pickles that use only admitted callables but lie about shapes, placements, dtypes and
states (the crashes of issue 11); and well-formed frames of the wrong schema. Every mutation is
chosen so that the README says it must be refused; the few valid inputs are ``ok`` cases.
"""

from __future__ import annotations

import builtins
import copyreg
import functools
import importlib
import io as _io
import operator
import os
import pickle
import pickletools
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from malformed_cases import Case, data_verb
from numpy._core.multiarray import _reconstruct, scalar
from pandas._libs.internals import _unpickle_block
from pandas.core.indexes.base import _new_Index  # type: ignore[attr-defined]
from pandas.core.internals.managers import BlockManager, SingleBlockManager

from routerbench.engine import io, synth

SPEC = """[data]
families = ["paper"]

[split]
kind = "upstream"

[[routers]]
name = "single"

[[routers]]
name = "oracle"

[metrics]
bootstrap = 0
"""
README = "README 'Using your own data': the upstream wide pickle is read"
_NO = object()


class Call:
    """Pickles as ``func(*args)`` (REDUCE), then ``BUILD state`` when a state is given."""

    def __init__(self, func: Callable[..., Any], *args: Any, state: Any = _NO) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args) + (() if self.state is _NO else (self.state,))


class New:
    """Pickles as ``cls.__new__(cls)`` (NEWOBJ), then ``BUILD state`` when a state is given."""

    def __init__(self, cls: type, state: Any = _NO) -> None:
        self.cls, self.state = cls, state

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # the pickler checks NEWOBJ's class against the object's
        return self.cls

    def __reduce__(self) -> tuple[Any, ...]:
        rest = () if self.state is _NO else (self.state,)
        return (copyreg.__newobj__, (self.cls,), *rest)  # type: ignore[attr-defined]


def array(shape: tuple[int, ...], dtype: Any, raw: Any, fortran: bool = False, **kw: Any) -> Call:
    """An ndarray as NumPy pickles it, with a state that may lie."""
    state = (1, shape, np.dtype(dtype), fortran, raw)
    return Call(_reconstruct, np.ndarray, (0,), b"b", state=state, **kw)


def frame(blocks: list[Any], items: Any, rows: Any, **extra: Any) -> New:
    """A DataFrame built from blocks ``(values, placement)`` as pandas pickles one."""
    blks = tuple(Call(_unpickle_block, v, loc, 2) for v, loc in blocks)
    state = {"_mgr": Call(BlockManager, blks, [items, rows]), "_typ": "dataframe"}
    state.update({"_metadata": [], "attrs": {}, "_flags": {"allows_duplicate_labels": True}})
    state.update(extra)
    return New(pd.DataFrame, state)


def small_frame(**extra: Any) -> New:
    """One prompt, one model, in the upstream wide layout (valid as it stands)."""
    text = np.array([["s0"], ["['p']"], ["mmlu-x"]], dtype=object)
    blocks = [
        (text, slice(0, 3, 1)),
        (np.array([[1.0]], dtype=object), slice(3, 4, 1)),
        (np.array([[0.5]]), slice(4, 5, 1)),
    ]
    items = pd.Index(["sample_id", "prompt", "eval_name", "m", "m|total_cost"], dtype=object)
    return frame(blocks, items, pd.RangeIndex(1), **extra)


def structural() -> Iterator[tuple[str, Any]]:
    """Pickles using only admitted callables that lie about shapes, placements and states."""
    items = pd.Index(["sample_id", "prompt", "eval_name", "m", "m|total_cost"], dtype=object)
    rows = pd.RangeIndex(1)
    text = np.array([["s0"], ["['p']"], ["mmlu-x"]], dtype=object)
    q, c = np.array([[1.0]], dtype=object), np.array([[0.5]])

    def with_block(values: Any, loc: Any, at: int = 1) -> New:
        blocks = [(text, slice(0, 3, 1)), (q, slice(3, 4, 1)), (c, slice(4, 5, 1))]
        blocks[at] = (values, loc)
        return frame(blocks, items, rows)

    big = array((1000,), object, [1.0, 2.0])
    yield "object-array-oversized", big
    yield (
        "object-array-oversized-in-frame",
        with_block(array((1, 1000), object, [1.0]), slice(3, 4)),
    )
    yield "object-array-2d-oversized", array((3000, 3000), object, ["x"] * 3)
    yield "object-array-short-by-one", array((1, 3), object, ["s0", "['p']"])
    yield "object-array-too-long", array((2,), object, [1.0, 2.0, 3.0])
    yield "object-array-holds-list", array((1,), object, [[1.0]])
    yield "object-array-holds-dict", array((1,), object, [{"a": 1}])
    yield "object-array-holds-bytes", array((1,), object, [b"x"])
    yield "object-array-holds-array", array((1,), object, [np.zeros(3)])
    yield "object-array-raw-not-list", array((2,), object, b"\x00" * 16)
    yield "float-array-short-buffer", with_block(array((1, 1), "f8", b"\x00" * 4), slice(4, 5), 2)
    yield "float-array-long-buffer", array((2,), "f8", b"\x00" * 24)
    yield "float-array-huge-shape", array((1 << 40, 1 << 20), "f8", b"\x00" * 8)
    yield "float-array-negative-shape", array((-1,), "f8", b"")
    yield "float-array-bool-shape", array((True,), "f8", b"\x00" * 8)
    yield "float-array-list-data", array((1,), "f8", [1.0])
    yield (
        "array-version-7",
        Call(_reconstruct, np.ndarray, (0,), b"b", state=(7, (0,), np.dtype("f8"), False, b"")),
    )
    yield "array-state-short", Call(_reconstruct, np.ndarray, (0,), b"b", state=(1, (0,)))
    yield "reconstruct-huge", Call(_reconstruct, np.ndarray, (1 << 50,), b"b")
    yield "reconstruct-float-dtype", Call(_reconstruct, np.ndarray, (0,), b"f8")
    yield "ndarray-called", Call(np.ndarray, (1 << 45,))
    yield "ndarray-newobj", New(np.ndarray)
    yield "dtype-structured", Call(np.dtype, "V16", False, True)
    yield "dtype-datetime", Call(np.dtype, "M8", False, True)
    yield (
        "dtype-no-copy",
        Call(np.dtype, "f8", False, False, state=(3, ">", None, None, None, -1, -1, 0)),
    )
    yield (
        "dtype-state-elsize",
        Call(np.dtype, "U3", False, True, state=(3, "<", None, None, None, 1 << 30, 4, 8)),
    )
    yield (
        "dtype-state-fields",
        Call(np.dtype, "f8", False, True, state=(3, "<", None, ("a",), {"a": 1}, -1, -1, 0)),
    )
    yield "scalar-short-bytes", Call(scalar, np.dtype("f8"), b"\x00\x01")
    yield "scalar-object", Call(scalar, np.dtype("O"), [1, 2])
    yield "block-placement-out-of-range", with_block(q, slice(100000000, 100000001))
    yield "block-placement-negative", with_block(q, np.array([-100000000]))
    yield "block-placement-duplicate", with_block(q, slice(0, 1))
    yield "block-placement-gap", with_block(q, slice(7, 8))
    yield "block-placement-float", with_block(q, np.array([3.0]))
    yield "block-placement-step-0", with_block(q, slice(3, 4, 0))
    yield "block-shape-mismatch", with_block(np.array([[1.0, 0.5]], dtype=object), slice(3, 4))
    yield "block-ndim-3", Call(_unpickle_block, q, slice(3, 4), 3)
    yield "block-values-int", with_block(7, slice(3, 4))
    yield "block-values-index", with_block(pd.Index([1.0]), slice(3, 4))
    yield (
        "manager-one-axis",
        New(pd.DataFrame, {"_mgr": Call(BlockManager, (), [items]), "_typ": "dataframe"}),
    )
    yield "manager-axes-not-index", frame([(q, slice(0, 1))], [1, 2, 3], rows)
    yield (
        "manager-rows-mismatch",
        frame([(text, slice(0, 3)), (q, slice(3, 4)), (c, slice(4, 5))], items, pd.RangeIndex(5)),
    )
    yield (
        "manager-rows-huge",
        frame([(np.empty((5, 0)), slice(0, 5))], items, pd.RangeIndex(10**18)),
    )
    yield (
        "manager-columns-huge",
        frame([(np.empty((0, 1)), slice(0, 0))], pd.RangeIndex(1 << 40), rows),
    )
    yield "bare-reconstructor-frame", Call(copyreg._reconstructor, pd.DataFrame, object, None)  # type: ignore[attr-defined]
    yield "bare-newobj-frame", New(pd.DataFrame)
    yield (
        "bare-newobj-manager-in-frame",
        New(pd.DataFrame, {"_mgr": New(BlockManager), "_typ": "dataframe"}),
    )
    yield (
        "single-manager-in-frame",
        New(pd.DataFrame, {"_mgr": New(SingleBlockManager), "_typ": "dataframe"}),
    )
    yield "frame-mgr-is-int", New(pd.DataFrame, {"_mgr": 5, "_typ": "dataframe"})
    yield "frame-mgr-is-list", New(pd.DataFrame, {"_mgr": [1, 2], "_typ": "dataframe"})
    yield "frame-state-extra-key", small_frame(_evil=1)
    yield "frame-metadata-mgr", small_frame(_metadata=["_mgr"])
    yield "frame-attrs-hold-frame", small_frame(attrs={"x": New(pd.DataFrame)})
    yield "frame-flags-unknown", small_frame(_flags={"evil": True})
    yield "array-used-before-build", _used_before_build()
    yield "bytearray-huge", Call(bytearray, 1 << 40)
    yield "slice-of-floats", with_block(q, Call(slice, 3.0, 4.0, 1.0))
    yield "codecs-rot13", Call(_codecs_encode(), "abc", "rot13")
    yield "index-of-frame-class", Call(_new_Index, pd.DataFrame, {"data": np.zeros(2)})
    yield "index-bad-keys", Call(_new_Index, pd.Index, {"data": np.zeros(2), "copy": object})
    yield "rangeindex-float", Call(_new_Index, pd.RangeIndex, {"start": 0.5, "stop": 3, "step": 1})
    yield "rangeindex-step-0", Call(_new_Index, pd.RangeIndex, {"start": 0, "stop": 3, "step": 0})
    yield "index-2d-data", Call(_new_Index, pd.Index, {"data": np.zeros((2, 2))})
    yield "string-dtype-bogus", Call(pd.StringDtype, "bogus")
    yield "series-top-level", pd.Series([1.0, 2.0])
    yield "index-top-level", pd.Index(["a", "b"])
    yield "list-top-level", [1, 2, 3]
    yield "dict-top-level", {"sample_id": ["s0"]}
    yield "array-top-level", np.zeros((2, 3))
    yield "none-top-level", None


def _used_before_build() -> Call:
    """An array whose state holds a block made from the array itself, before its BUILD."""
    arr = Call(_reconstruct, np.ndarray, (0,), b"b")
    arr.state = (1, (1, 1), np.dtype(object), False, [Call(_unpickle_block, arr, slice(0, 1), 2)])
    return arr


def _fragment(obj: Any) -> bytes:
    """The opcodes of ``obj`` (protocol 4, no memo), to splice into a hand-made pickle."""
    body = pickletools.optimize(pickle.dumps(obj, protocol=4))
    body = body[2:]  # PROTO
    if body[:1] == pickle.FRAME:
        body = body[9:]
    assert body.endswith(pickle.STOP)
    return body[:-1]


def built_twice() -> bytes:
    """An array given a valid state, then (by a memo reference) a second, lying one."""
    first = (1, (2,), np.dtype("f8"), False, b"\x00" * 16)
    second = (1, (1000,), np.dtype(object), False, [1.0])
    head = _fragment(Call(_reconstruct, np.ndarray, (0,), b"b"))
    return (
        b"\x80\x04"
        + head
        + pickle.MEMOIZE
        + _fragment(first)
        + pickle.BUILD
        + pickle.BINGET
        + b"\x00"
        + _fragment(second)
        + pickle.BUILD
        + pickle.STOP
    )


def _codecs_encode() -> Callable[..., Any]:
    return importlib.import_module("_codecs").encode  # type: ignore[no-any-return]


MARKER = "<nested list here>"


def nested(depth: int) -> bytes:
    """Opcodes of a list nested ``depth`` levels deep (too deep for the recursive pickler)."""
    return pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1)


def splice_nested(payload: bytes, depth: int) -> bytes:
    """``payload`` (protocol 2) with the string :data:`MARKER` replaced by a nested list."""
    text = MARKER.encode()
    op = pickle.BINUNICODE + struct.pack("<I", len(text)) + text
    assert payload.count(op) == 1
    return payload.replace(op, nested(depth))


def hostile(target: str) -> Iterator[tuple[str, Any]]:
    """Callables that would run code or touch ``target`` if the unpickler called them."""
    cmd = f"touch {target}"
    yield "os.system", Call(os.system, cmd)
    yield "posix.system", Call(importlib.import_module("posix").system, cmd)
    yield "subprocess.call", Call(subprocess.call, ["touch", target])
    yield "subprocess.Popen", Call(subprocess.Popen, ["touch", target])
    yield "subprocess.check_output", Call(subprocess.check_output, ["touch", target])
    yield "subprocess.run", Call(subprocess.run, ["touch", target])
    yield "builtins.eval", Call(builtins.eval, f"open({target!r}, 'w')")
    yield "builtins.exec", Call(builtins.exec, f"open({target!r}, 'w')")
    yield "builtins.open", Call(builtins.open, target, "w")
    yield "io.open", Call(_io.open, target, "w")
    yield "builtins.__import__", Call(builtins.__import__, "os")
    yield "builtins.getattr", Call(builtins.getattr, Call(importlib.import_module, "os"), "system")
    yield "builtins.compile", Call(builtins.compile, "1", "x", "eval")
    yield "importlib.import_module", Call(importlib.import_module, "os")
    yield "pickle.loads", Call(pickle.loads, pickle.dumps(Call(os.system, cmd)))
    yield "functools.partial", Call(functools.partial, os.system, cmd)
    yield "operator.methodcaller", Call(operator.methodcaller, "system", cmd)
    yield "os.mkdir", Call(os.mkdir, target)
    yield "os.makedirs", Call(os.makedirs, target)
    yield "shutil.copy", Call(shutil.copy, sys.executable, target)
    yield "sys.exit", Call(sys.exit, 0)
    yield "pandas.read_pickle", Call(pd.read_pickle, "evil.pkl")
    yield "numpy.load", Call(np.load, "evil.npy", None, True)
    yield (
        "inside-a-frame",
        pd.DataFrame({"q": pd.Series([1.0, Call(os.system, cmd)], dtype=object)}),
    )
    yield "reconstructor-of-popen", Call(copyreg._reconstructor, subprocess.Popen, object, None)  # type: ignore[attr-defined]


def _raw_hostile(target: str) -> Iterator[tuple[str, bytes]]:
    """Hand-written opcodes: INST/OBJ, GLOBAL of two-line names, STACK_GLOBAL built at run time."""
    t = target.encode()
    yield "inst-os-system", b"(S'touch " + t + b"'\nios\nsystem\n."
    yield "global-posix-system", b"cposix\nsystem\n(S'touch " + t + b"'\ntR."
    yield "obj-subprocess", b"(csubprocess\ncall\n(S'touch'\nS'" + t + b"'\nlo."
    su = lambda s: b"\x8c" + bytes([len(s)]) + s  # noqa: E731  # SHORT_BINUNICODE
    code = f"open({target!r}, 'w')".encode()
    yield (
        "stack-global-builtins-eval",
        b"\x80\x04" + su(b"builtins") + su(b"eval") + b"\x93" + su(code) + b"\x85R.",
    )
    yield "array-built-twice", built_twice()
    yield "ext-code", b"\x80\x02\x82\x01."
    yield "persistent-id", b"\x80\x02X\x01\x00\x00\x00xQ."
    yield "memo-missing", b"\x80\x02h\x05."
    yield "frame-2-to-60", b"\x80\x04\x95" + struct.pack("<Q", 1 << 60) + b"N."
    yield "long-100k-digits", b"L" + b"9" * 100_000 + b"L\n."


def _ops(payload: bytes) -> list[tuple[str, Any, int, int]]:
    """(opcode name, argument, start, end) of each opcode of our own valid pickle."""
    ops = list(pickletools.genops(payload))
    ends = [pos for _, _, pos in ops[1:]] + [len(payload)]
    return [
        (op.name, arg, pos or 0, end or 0) for (op, arg, pos), end in zip(ops, ends, strict=True)
    ]


def mutations(payload: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Mutations of a valid pickle that the README says must be refused."""
    ops = _ops(payload)
    for i in range(30):  # truncated anywhere
        yield f"truncated-{i}", payload[: rng.randrange(len(payload))]
    tails = [b"\n", b"\x00", b".", b"junk", pickle.dumps(None), payload, os.urandom(64)]
    for i in range(15):
        yield (
            f"trailing-{i}",
            payload + (tails[i] if i < len(tails) else rng.randbytes(rng.randint(1, 99))),
        )
    skip = {"NEWTRUE", "NEWFALSE"}  # one bit apart: a flip is a valid other flag
    opcodes = [pos for name, _, pos, _ in ops if name not in skip]
    for i in range(40):
        yield f"opcode-flip-{i}", _flip(payload, rng.choice(opcodes), rng.randrange(8))
    prefixes = [
        pos + 1
        for name, _, pos, _ in ops
        if name in ("SHORT_BINUNICODE", "BINUNICODE", "SHORT_BINBYTES", "BINBYTES")
    ]
    for i in range(15):
        yield f"length-prefix-flip-{i}", _flip(payload, rng.choice(prefixes), rng.randrange(8))
    frame, size = next((pos + 1, arg) for name, arg, pos, _ in ops if name == "FRAME")
    # Only flips that enlarge the frame past the file: a smaller frame that ends where the
    # unpickler reads anyway (an opcode, a length prefix) is read on from the file, unharmed.
    flips = [(b, k) for b in range(3) for k in range(8) if not size & (1 << 8 * b + k)]
    for i, (byte, bit) in enumerate(rng.sample(flips, 5)):
        yield f"frame-size-flip-{i}", _flip(payload, frame + byte, bit)
    texts = [
        (pos, end)
        for name, arg, pos, end in ops
        if name == "SHORT_BINUNICODE" and arg.isascii() and arg
    ]
    for i in range(20):  # bit 7 of an ASCII character: never valid UTF-8
        pos, end = rng.choice(texts)
        yield f"text-invalid-utf8-{i}", _flip(payload, rng.randrange(pos + 2, end), 7)
    yield from _value_mutations(payload, ops, rng)


def _value_mutations(
    payload: bytes, ops: list[tuple[str, Any, int, int]], rng: random.Random
) -> Iterator[tuple[str, bytes]]:
    i8 = next(i for i, op in enumerate(ops) if op[:2] == ("SHORT_BINUNICODE", "i8"))
    locs = next(op for op in ops[i8:] if op[0] in ("SHORT_BINBYTES", "BINBYTES"))
    for i in range(10):  # a block placement changed: out of range or a column twice
        start = locs[3] - len(locs[1])
        yield (
            f"placement-flip-{i}",
            _flip(payload, start + rng.randrange(len(locs[1])), rng.randrange(8)),
        )
    f8 = next(i for i, op in enumerate(ops) if op[:2] == ("SHORT_BINUNICODE", "f8"))
    costs = next(op for op in ops[f8:] if op[0] in ("SHORT_BINBYTES", "BINBYTES"))
    start, n = costs[3] - len(costs[1]), len(costs[1]) // 8
    bad_costs = [-1.0, -1e-3, -5e-324, float("nan"), float("inf"), float("-inf"), -1e300]
    for i in range(18):
        cell = start + 8 * rng.randrange(n)
        yield (
            f"cost-{i}",
            payload[:cell] + struct.pack("<d", bad_costs[i % len(bad_costs)]) + payload[cell + 8 :],
        )
    yield (
        "cost-1e308-every-row",
        payload[:start] + struct.pack("<d", 1e308) * n + payload[costs[3] :],
    )
    yield (
        "cost-1e306-every-row",
        payload[:start] + struct.pack("<d", 1e306) * n + payload[costs[3] :],
    )
    floats = [pos + 1 for name, _, pos, _ in ops if name == "BINFLOAT"]  # the quality cells
    bad_q = [1.5, -0.25, 2.0, float("inf"), float("-inf"), 6.95e-310, 5e-324, 1e-310, 1e300, -0.5]
    for i in range(20):
        at = rng.choice(floats)
        yield (
            f"quality-{i}",
            payload[:at] + struct.pack(">d", bad_q[i % len(bad_q)]) + payload[at + 8 :],
        )


def _flip(payload: bytes, pos: int, bit: int) -> bytes:
    out = bytearray(payload)
    out[pos] ^= 1 << bit
    return bytes(out)


def wrong_schema(data: Any, rng: random.Random) -> Iterator[tuple[str, Any]]:
    """Well-formed pickled frames that are not valid outcome data."""
    base = io.to_upstream_wide_frame(data)
    model = data.models[0]
    cost = f"{model}|total_cost"

    def edit(fn: Callable[[pd.DataFrame], Any]) -> pd.DataFrame:
        f = base.copy()
        out = fn(f)
        return f if out is None else out

    def cell(col: str, value: Any, row: int = 0) -> pd.DataFrame:
        f = base.copy()
        f[col] = f[col].astype(object)
        f.at[row, col] = value
        return f

    yield "no-rows", base.iloc[:0]
    for col in ("sample_id", "eval_name", "prompt", model, cost):
        yield f"missing-{col}", base.drop(columns=col)
    yield "duplicate-columns", pd.concat([base, base[[model]]], axis=1)
    yield "int-column-names", base.set_axis(range(base.shape[1]), axis=1)
    yield "unexpected-bar-column", edit(lambda f: f.insert(3, f"{model}|latency", 0.1))
    yield "cost-without-quality", edit(lambda f: f.insert(3, "ghost|total_cost", 0.1))
    yield "quality-text", cell(model, "high")
    yield "quality-bool", edit(lambda f: f.assign(**{model: True}))
    yield "quality-complex", cell(model, 1 + 2j)
    yield "quality-nested-list", cell(model, MARKER)
    yield "quality-list", cell(model, [0.5])
    yield "quality-above-1", cell(model, 1.0001)
    yield "quality-negative", cell(model, -0.0001)
    yield "quality-denormal", cell(model, 6.95e-310)
    yield "quality-int-huge", cell(model, 10**400)
    yield "cost-int-huge", cell(cost, 10**400)
    yield "cost-negative", cell(cost, -0.01)
    yield "cost-inf", cell(cost, float("inf"))
    yield "cost-nan-known-quality", cell(cost, float("nan"))
    yield "cost-text", cell(cost, "cheap")
    yield "cost-1e308-every-row", edit(lambda f: f.assign(**{cost: 1e308}))
    yield (
        "cost-1e307-two-models",
        edit(lambda f: f.assign(**{cost: 1e307, f"{data.models[1]}|total_cost": 1e307})),
    )
    yield "sample-id-duplicate", cell("sample_id", base.at[1, "sample_id"])
    yield "sample-id-missing", cell("sample_id", None)
    yield "sample-id-empty", cell("sample_id", "")
    yield "sample-id-list", cell("sample_id", ["a"])
    yield "sample-id-lone-surrogate", cell("sample_id", "id\ud800")
    yield "eval-name-missing", cell("eval_name", None)
    yield "eval-name-lone-surrogate", cell("eval_name", "mmlu-\udfff")
    renamed = {model: "m\ud800", cost: "m\ud800|total_cost"}
    names = pd.Index([renamed.get(c, c) for c in base.columns], dtype=object)
    yield "model-name-lone-surrogate", base.set_axis(names, axis=1)
    yield "prompt-dict", cell("prompt", {"a": 1})
    yield "prompt-bytes", cell("prompt", b"\xff")
    yield (
        "multiindex-columns",
        base.set_axis(pd.MultiIndex.from_arrays([base.columns, base.columns]), axis=1),
    )
    yield (
        "categorical-column",
        edit(lambda f: f.assign(eval_name=f["eval_name"].astype("category"))),
    )
    yield "datetime-column", edit(lambda f: f.assign(eval_name=pd.Timestamp("2024-01-01")))
    yield "only-keys", base[["sample_id", "prompt", "eval_name"]]


def valid(data: Any) -> Iterator[tuple[str, Any, int]]:
    """Odd but valid pickles: other protocols, attrs, a big-endian cost block, the long layout."""
    base = io.to_upstream_wide_frame(data)
    for protocol in (0, 2, 5):
        yield f"valid-protocol-{protocol}", base, protocol
    with_attrs = base.copy()
    with_attrs.attrs = {"source": "routerbench", "rows": 60}
    yield "valid-with-attrs", with_attrs, 4
    yield "valid-big-endian-costs", base.astype({f"{m}|total_cost": ">f8" for m in data.models}), 4
    yield "valid-long-layout", io.to_upstream_long_frame(data), 4


def cases(seed: int, folder: Path) -> list[Case]:
    """At least 250 pickle cases, every file written under ``folder``."""
    rng = random.Random(seed)
    data = synth.generate(60, seed)
    valid_path = folder / "valid.pkl"
    io.save(data, str(valid_path), format="upstream-wide")
    payload = valid_path.read_bytes()
    spec = folder / "spec.toml"
    spec.write_text(SPEC)
    out: list[Case] = []

    def add(name: str, blob: bytes, ok: bool = False, why: str = "") -> None:
        path = folder / f"{len(out):03d}-{name}.pkl"
        path.write_bytes(blob)
        argv, writes = data_verb(rng, str(path), str(spec))
        out.append(Case("pickles", name, argv, writes=writes, ok=ok, why=why))

    add("valid", payload, ok=True, why=README)
    for name, obj, protocol in valid(data):
        add(name, pickle.dumps(obj, protocol=protocol), ok=True, why=README)
    for name, blob in mutations(payload, rng):
        add(name, blob)
    for name, obj in hostile("out"):
        for protocol in (0, 2, 4, 5):
            add(f"hostile-{name}-p{protocol}", pickle.dumps(obj, protocol=protocol))
    for name, blob in _raw_hostile("out"):
        add(f"hostile-{name}", blob)
    for name, obj in structural():
        add(f"structural-{name}", pickle.dumps(obj, protocol=rng.choice([2, 4, 5])))
    for name, obj in wrong_schema(data, rng):
        if name == "quality-nested-list":
            add(f"schema-{name}", splice_nested(pickle.dumps(obj, protocol=2), 100_000))
            continue
        add(f"schema-{name}", pickle.dumps(obj, protocol=rng.choice([2, 4, 5])))
    add("structural-deep-nested-list", b"\x80\x02" + nested(100_000) + pickle.STOP)
    return out
