"""The restricted unpickler: real pandas/NumPy pickles load, anything else is refused."""

from __future__ import annotations

import base64
import builtins
import copyreg
import doctest
import functools
import io
import os
import pickle
import pickletools
import shlex
import subprocess
import zlib
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.engine import safepickle
from routerbench.engine.errors import DataError
from routerbench.engine.safepickle import safe_load

# Written by `DataFrame.to_pickle` with pandas 2.1.2 / NumPy 1.26.1 (the versions behind the
# published files), default protocol 5, RangeIndex named "idx"; and with pandas 1.5.3 / NumPy
# 1.24.4, protocol 2 (Python 2 names, _codecs.encode), Int64Index [10, 11, 12]. Both hold
# `_expected_upstream()` (zlib + base64 of the pickle bytes).
PANDAS_2_1_PROTOCOL_5 = """
eNp1VFtr3EYU3l3v2l47jR3TXAxJ2dKE3RCk2CFJ+1BQEpduW2EHAm0CJoiRNLsztaQRMyNvDLk+xHFg3jLNf+gP6EOh
P6L0F5QW+tKX5s2UQHNmJDfr2JkHnTNH5zbfuTxu/fBzq2aPOpajLEbCjRjH7oCjFGvV/gJJ9KXlX+jzT/QD3VPNIB1y
rT4aV6eZxDxDiXBTlKEh5kKrIzcSFm2slncwVycqiyChoXhrotVcUGQ5jTYSHITGxigvZEWab5XegcWcRlrNBgPO0rAY
DKzH3sulMvfavw+//0W+IF552330+sdXv62GufeK/Lnz027Tc1ZO//3H1RmPnvl2db6Y87RqWf9AY7mVm9epxuAz/Xzn
mb6le/6Eqn+u19bWvvkPjv34NalDv+FPbGtVX9ES1NR0WNBE0gye0BIJjYwbf8pv+3XjxW+YL5lVx8eekhZggDhHEPpI
wHHEMiF5EUkwJfNqCgCyP8FR7aleqYe6TKjuT5vQZEE1bu5L8/47aXqQ5vO7UKYP0zQpHATeWcbSLXcTJe4VrU4OOYqx
IyLCWOKkSBI3xpvuklYfpDLEWVTel7VaXO9ez8QI886IStJBnQRLKJnbvavV/Hr3NkGyQ0Xn0oVLnhEdAxGnEoNiznBq
1Y7uzwGUDkTXaqqKq/veP2X9+o92K8b7a2BPv6ozSH4tGfKJmhQRSpBpBHJ8ZboU/+7pbVOaFiRvMgB62dD2epczgUUl
u1HRK4bOrnc3KYPX2b8Lw1w6l53l5aWrTs7xJsUjwCKl8AiIRi9WnPNp6EQAgSZ9DJCTo72X12r7T72ijYpOVLRZ0Wrw
apMVbVfUVpmOVZmcOKQVp59qsij/77NtbYp+av9QxvgeFm6IBIzyTJDhUfC1kRnEvlOtPd4OdQyDrsk50jV9R87vdd0M
XC7afmoLlOYwoTTWajKHMcwlwIqhrYLM7AfSJ1+pjw+Cdz9lMU6g1UUOvQ6J9N6L5QHVM4e4k0xCyIgJCH/2/a7G1U4x
jiJIvXQvWcBZITEw2pRONW3+a4VpHHJHLR6GIUfZ0IB4y9Ax4MiGmqDxPbMAJOISplY1hWS5htkEBgNTt46xbctmANsG
YDNo763YIMUSWfhNTyIpYXk+AIyDQYKGlj2JkoSNRBAXOWwZBKknKMSwOXdEEbpvAD65HK4=
"""
PANDAS_1_5_PROTOCOL_2 = """
eNp9VUt3FEUUnkxepMMjYBRQooMiGcRpkpiEqGiHgAQYE7QVaY2xre6ppJr063ZVZ4gyootMkq3+AY+uPK5YeA7Hwyrz
B/wVrl2601vVPUZIoBdzb91Hzb3f/fr2t0U3JmGNcN2NEqovJSSg2mUiyBWlQeHMd9DRgGLZ6ioUCnawnEDnIxleKGgS
Ep/rAQnJMk24NuNH7spcdtKgqx1u+57Dd+I1Ow1jz13xqe3IBA263TAN4rXs3iD1hUeShKxpdkLdKOQiSV2hQU8WpeGd
ygu91cI67HNtN6pRl2s0lIoGfVYHVuyAZvWg9InwwlHob8J+Ew5swEETDpWrHdVitbMJA/mVNbEWY+Zhq4gZS1NwZGtz
A54xYbBc7VS3XYBn5+fnr/+Dj/qpFgQ852yxPstAb+v3b25vPxTbPzB5koYH91oPt39p3W99P+fERus+a/28vbn9W+tB
l1G5dKL1a+unSc3whm7ODaSHDDjKsLxjJhwX8Lzj2raTeohBaNsa9z0XC3uh2lvtq3ZswAkThqrFDXjRhJdYN+thCoMS
w8ZOmvCybGyfbOwVlvVyYwpOyV5eNeF0u5e7MPxoL4aAsrO1CGfK1iD6g8BPKwRRj8IoWNNXia9PwGvWUXQtJ6RGK9xl
UeRXAiKYXqOr+gictQ7IROHgDDLbKLxuHUfbwvDFkNdpUqp7gpVIyacCaaAPL0LFGlD+W4yIksdLY2fHDDTr1uHMnHiC
YkIc0UCGn7MO7qoNRlTwrqpg1OrdqQfGZo2/srnM3vs7V4w/l9QzWyi0LX9kyhO4yF3iE2T1G2wQp97XTiu0fjRgXM5v
woTJJpw3YcrqzhrHqt/M9XHU31JZC8NJxCnH89u5bwb1C7k+gfo7Vr/SV70I0ZKR71pHZJuxqIxXRkdHJitxQlc9WgdD
YRx4CAhW553Ltcp5p+IirDDNDCrgotMmyowkyiUTLiuirMN7OU28KbgiaTJrwlWkCdtN9muK7NOFnacjl8VcduayK5fd
uezJZRsyuC7RqprwvoA5R5J53oQbTfhgET4sP7ZhavQO5bpDONXskNbta9KigfnksDziowZ8nG2uGq40uNkG4BMJwC0T
LAmAtg6fstNI/M/KajScBDEuJa8GC2p1xEkUxAI+V06K74Ed4mqERWawaevknhO5G+AK8nFv8RgXF4UvrPLTBvR4uG0N
7X2tiAT+vRtxAV9ap5565f9CiXUMQ6OEuNhW9lcispMoFRQVcJAbrqNQUo3V5tMmUBOW2N4A44tBE89FjMXkeA70cgNY
mf2HryfxvW3CisS3cx18dlXyRpah5fPvz+X+Nh8CyYfQhEhA7DBVBJiQ0CZwE0T2+cH9DKmag5yn+ljBqjrbARVEDbm+
CHfUa0SESDisNeArNUZ7ySfLHL5uwF21xIjvR3Vu19IYlytBKHziUJ9DY5Onjv4vqlk0TQ==
"""

G4, M7 = "gpt-4-1106-preview", "mistralai/mistral-7b-chat"


def _expected_upstream(index: pd.Index) -> pd.DataFrame:
    """The frame the two embedded pickles were made from (upstream wide layout, 2 models)."""
    frame = pd.DataFrame(
        {
            "sample_id": ["mmlu-astronomy.val.5", "grade-school-math.dev.0", "mtbench.dev.1"],
            "prompt": ["['Answer with a letter.']", "['What is 2+2?']", "['Write a poem.']"],
            "eval_name": ["mmlu-astronomy", "grade-school-math", "mtbench"],
            G4: pd.Series([1.0, np.nan, 0.7], dtype=object),
            M7: pd.Series([0.0, 0.25, 0.5], dtype=object),
            f"{G4}|model_response": ["['A']", "['4']", "['roses']"],
            f"{M7}|model_response": ["['B']", "['5']", "['violets']"],
            f"{G4}|total_cost": [0.003, np.nan, 0.004],
            f"{M7}|total_cost": [0.00004, 0.00005, 0.00006],
            "oracle_model_to_route_to": [G4, M7, G4],
        }
    )
    frame.index = index
    return frame


def _blob(text: str) -> bytes:
    return zlib.decompress(base64.b64decode("".join(text.split())))


def _load(payload: bytes, name: str = "f.pkl") -> Any:
    return safe_load(io.BytesIO(payload), name=name)


def _frames() -> dict[str, pd.DataFrame]:
    obj_quality = pd.Series([1.0, 0.0, np.nan, np.float64(0.5)], dtype=object)
    return {
        "object": pd.DataFrame(
            {"q": obj_quality, "s": pd.Series(["a", "b", "c", "d"], dtype=object)}
        ),
        "str": pd.DataFrame({"s": ["a", None, "c", "d"], "f": [1.0, np.nan, 2.0, 3.0]}),
        "float-int-bool": pd.DataFrame(
            {"f": [0.1, np.nan, 0.3, 0.4], "i": [1, 2, 3, 4], "b": [True, False, True, False]}
        ),
        "string-index": pd.DataFrame({"f": [1.0, 2.0, 3.0, 4.0]}, index=["w", "x", "y", "z"]),
        "int-index": pd.DataFrame({"f": [1.0, 2.0, 3.0, 4.0]}, index=[7, 3, 5, 1]),
        "named-axes": pd.DataFrame({"q": obj_quality}).rename_axis("idx", axis=0),
        "python-string": pd.DataFrame({"s": pd.array(["a", None, "c", "d"], dtype="string")}),
    }


class _Touch:
    """Unpickling this runs `touch <path>` through os.system (if the unpickler allows it)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {shlex.quote(self.path)}",)


class _Reduce:
    """Unpickling this calls `func(*args)`."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


class _Plain:
    """An arbitrary class of ours."""


def _refused(module: str, name: str) -> str:
    return f"f.pkl: refusing to unpickle {module}.{name}: only pandas/numpy data types are allowed"


class TestSafeLoad:
    @pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
    @pytest.mark.parametrize("kind", list(_frames()))
    def test_real_frames_round_trip(self, kind: str, protocol: int) -> None:
        """Frames with object, str, float, NaN columns and several indexes load unchanged."""
        df = _frames()[kind]
        out = _load(pickle.dumps(df, protocol=protocol))
        assert isinstance(out, pd.DataFrame)
        pd.testing.assert_frame_equal(out, df)

    @pytest.mark.parametrize("protocol", [2, 4, 5])
    def test_series_and_index(self, protocol: int) -> None:
        """A Series and an Index load unchanged."""
        s = pd.Series([0.5, np.nan], index=pd.Index(["a", "b"], dtype=object), name="m")
        pd.testing.assert_series_equal(_load(pickle.dumps(s, protocol=protocol)), s)
        idx = pd.Index([3, 1, 2])
        pd.testing.assert_index_equal(_load(pickle.dumps(idx, protocol=protocol)), idx)

    def test_numpy_arrays(self) -> None:
        """Plain, object and non-contiguous NumPy arrays load unchanged."""
        a = np.arange(12.0).reshape(3, 4)
        for arr in (a, a.T, np.array([1.0, "x", None], dtype=object)):
            for protocol in (2, 5):
                out = _load(pickle.dumps(arr, protocol=protocol))
                assert isinstance(out, np.ndarray) and out.dtype == arr.dtype
                assert out.tolist() == arr.tolist()

    def test_to_pickle_file(self, tmp_path: os.PathLike[str]) -> None:
        """A file written by DataFrame.to_pickle (pandas' default protocol) loads unchanged."""
        path = os.path.join(tmp_path, "f.pkl")
        df = _frames()["object"]
        df.to_pickle(path)
        with open(path, "rb") as f:
            out: Any = safe_load(f, name=path)
        pd.testing.assert_frame_equal(out, df)

    def test_pandas_2_1_pickle(self) -> None:
        """A pickle written by pandas 2.1.2 / NumPy 1.26 (the published files' versions) loads."""
        out = _load(_blob(PANDAS_2_1_PROTOCOL_5))
        expected = _expected_upstream(pd.RangeIndex(3, name="idx"))
        pd.testing.assert_frame_equal(
            out, expected, check_dtype=False, check_column_type=False, check_index_type=False
        )
        assert out[G4].dtype == object

    def test_pandas_1_5_pickle(self) -> None:
        """A protocol-2 pickle by pandas 1.5.3 / NumPy 1.24 (Int64Index, Python 2 names) loads."""
        out = _load(_blob(PANDAS_1_5_PROTOCOL_2))
        expected = _expected_upstream(pd.Index([10, 11, 12]))
        pd.testing.assert_frame_equal(
            out, expected, check_dtype=False, check_column_type=False, check_index_type=False
        )

    def test_os_system_is_not_run(self, tmp_path: os.PathLike[str]) -> None:
        """A __reduce__ calling os.system is refused before it runs: the file is not created."""
        target = os.path.join(tmp_path, "pwned")
        payload = pickle.dumps(_Touch(target))
        with pytest.raises(DataError) as err:
            _load(payload)
        assert str(err.value) == _refused(os.system.__module__, "system")
        assert not os.path.exists(target)

    def test_control_check_the_payload_works(self, tmp_path: os.PathLike[str]) -> None:
        """The same payload under plain pickle does create the file (the test above is real)."""
        target = os.path.join(tmp_path, "pwned")
        pickle.loads(pickle.dumps(_Touch(target)))  # our own payload, in a temp folder
        assert os.path.exists(target)

    def test_payload_inside_a_frame(self, tmp_path: os.PathLike[str]) -> None:
        """A malicious object in an object column of a real frame is refused too."""
        target = os.path.join(tmp_path, "pwned")
        df = pd.DataFrame({"q": pd.Series([1.0, _Touch(target)], dtype=object)})
        with pytest.raises(DataError, match="refusing to unpickle"):
            _load(pickle.dumps(df, protocol=4))
        assert not os.path.exists(target)

    @pytest.mark.parametrize(
        ("func", "args"),
        [
            (builtins.eval, ("1 + 1",)),
            (builtins.exec, ("x = 1",)),
            (builtins.getattr, (str, "join")),
            (subprocess.call, (["true"],)),
            (functools.partial, (len, "x")),
            (builtins.__import__, ("os",)),
        ],
    )
    def test_dangerous_callables_refused(self, func: object, args: tuple[object, ...]) -> None:
        """eval, exec, getattr, subprocess, functools.partial and __import__ are refused."""
        module, name = func.__module__, func.__name__  # type: ignore[attr-defined]
        with pytest.raises(DataError) as err:
            _load(pickle.dumps(_Reduce(func, *args)))
        assert str(err.value) == _refused(module, name)

    def test_arbitrary_class_refused(self) -> None:
        """An instance of an arbitrary class is refused, naming the class."""
        with pytest.raises(DataError) as err:
            _load(pickle.dumps(_Plain()))
        assert str(err.value) == _refused(__name__, "_Plain")

    def test_hand_written_global_refused(self) -> None:
        """A protocol-0 GLOBAL opcode for builtins.getattr is refused."""
        payload = b"cbuiltins\ngetattr\n(cos\nsystem\nS'x'\ntR."
        with pytest.raises(DataError) as err:
            _load(payload)
        assert str(err.value) == _refused("builtins", "getattr")

    def test_codecs_encode_only_latin1(self) -> None:
        """_codecs.encode (used by protocol 2 for bytes) is allowed only with latin1."""
        ok = b"\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00abX\x06\x00\x00\x00latin1\x86R."
        assert _load(ok) == b"ab"
        bad = ok.replace(b"X\x06\x00\x00\x00latin1", b"X\x05\x00\x00\x00rot13")
        with pytest.raises(DataError, match=r"^f\.pkl: not a readable pickle .*rot13"):
            _load(bad)

    @pytest.mark.parametrize("payload", [b"", b"\x80\x04\x95", b"not a pickle at all"])
    def test_corrupt_is_one_line_error(self, payload: bytes) -> None:
        """Empty, truncated or garbage input is a one-line DataError naming the file."""
        with pytest.raises(DataError) as err:
            _load(payload, name="s3://bucket/x.pkl")
        msg = str(err.value)
        assert msg.startswith("s3://bucket/x.pkl: not a readable pickle") and "\n" not in msg

    @settings(max_examples=25, deadline=None)
    @given(cut=st.floats(0.0, 0.999), protocol=st.sampled_from([2, 4, 5]))
    def test_truncated_always_data_error(self, cut: float, protocol: int) -> None:
        """A real frame's pickle cut anywhere gives a DataError, never another exception."""
        payload = pickle.dumps(_frames()["object"], protocol=protocol)
        # cut inside a class name, the name's prefix is refused by the allow-list
        with pytest.raises(DataError, match=r"^f\.pkl: (not a readable pickle|refusing to)"):
            _load(payload[: int(cut * len(payload))])

    @settings(max_examples=30, deadline=None)
    @given(
        values=st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=1, max_size=20),
        text=st.text(max_size=5),
        protocol=st.integers(0, pickle.HIGHEST_PROTOCOL),
    )
    def test_random_frames_round_trip(self, values: list[float], text: str, protocol: int) -> None:
        """Random object/float/str frames load exactly as pickled."""
        n = len(values)
        df = pd.DataFrame(
            {
                "q": pd.Series(values, dtype=object),
                "c": np.asarray(values, dtype=np.float64) * 2,
                "s": [text + str(i) for i in range(n)],
            }
        )
        pd.testing.assert_frame_equal(_load(pickle.dumps(df, protocol=protocol)), df)


# ------------------------------------------------------------------ lying states (issue 11)
class _Built:
    """Unpickling this calls ``func(*args)``, then gives the result ``state`` (BUILD)."""

    def __init__(self, func: object, args: tuple[object, ...], state: object) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> tuple[object, ...]:
        return self.func, self.args, self.state


def _array(shape: tuple[int, ...], dtype: str, raw: object) -> _Built:
    """An ndarray pickled as NumPy does it, with a state that may lie about its shape."""
    from numpy._core.multiarray import _reconstruct

    return _Built(_reconstruct, (np.ndarray, (0,), b"b"), (1, shape, np.dtype(dtype), False, raw))


def _frame_with_block(values: object, loc: object) -> bytes:
    """A 3-column frame ``a, b, c`` whose middle block is ``(values, loc)``, as pandas writes it."""
    from pandas._libs.internals import _unpickle_block
    from pandas.core.internals.managers import BlockManager

    blocks = (
        _Reduce(_unpickle_block, np.array([[1.0, 2.0]]), slice(0, 1, 1), 2),
        _Reduce(_unpickle_block, values, loc, 2),
        _Reduce(_unpickle_block, np.array([[5.0, 6.0]]), slice(2, 3, 1), 2),
    )
    items, rows = pd.Index(["a", "b", "c"], dtype=object), pd.RangeIndex(2)
    state = {"_mgr": _Reduce(BlockManager, blocks, [items, rows]), "_typ": "dataframe"}
    frame = _Built(copyreg._reconstructor, (pd.DataFrame, object, None), state)  # type: ignore[attr-defined]
    return pickle.dumps(frame, protocol=4)


def _in_child(payload: bytes) -> str:
    """``safe_load(payload)`` in a forked child: its DataError message, "loaded", or the signal
    that killed it (a crash must fail the test, not end the test run)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            _load(payload)
            out = "loaded"
        except DataError as exc:
            out = str(exc)
        except BaseException as exc:  # anything else is a finding
            out = f"{type(exc).__name__}: {exc}"
        with os.fdopen(w, "w") as f:
            f.write(out)
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    return f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else out


def _valid_frame_pickle() -> bytes:
    df = pd.DataFrame({"q": pd.Series([1.0, 0.5], dtype=object), "c": [0.1, 0.2]})
    return pickle.dumps(df, protocol=4)


class TestSafeLoadLyingStates:
    def test_object_array_longer_than_its_list(self) -> None:
        """An object array whose shape exceeds its pickled list (a SIGSEGV in NumPy) is refused."""
        out = _in_child(pickle.dumps(_array((100_000,), "O", [1.0, 2.0]), protocol=4))
        assert out.endswith("(an object array of shape (100000,) needs 100000 items)"), out

    def test_float_array_shorter_than_its_shape(self) -> None:
        """A float array whose buffer is shorter than shape x itemsize is refused."""
        out = _in_child(pickle.dumps(_array((1000,), "f8", b"\0" * 16), protocol=4))
        assert out.endswith("(array (1000,) needs 8000 bytes)")

    def test_object_array_holds_only_scalars(self) -> None:
        """A list (or any container) inside an object array is refused, however deep."""
        out = _in_child(pickle.dumps(_array((1,), "O", [[[1.0]]]), protocol=4))
        assert "may hold only numbers, text and missing values" in out

    @pytest.mark.parametrize("loc", [slice(100_000_000, 100_000_001), np.array([-100_000_000])])
    def test_block_placed_outside_the_columns(self, loc: object) -> None:
        """A block placed past the last column (a SIGSEGV in pandas) is refused."""
        out = _in_child(_frame_with_block(np.array([[3.0, 4.0]]), loc))
        assert out.endswith("(block out of range)"), out

    @pytest.mark.parametrize("loc", [slice(0, 1), np.array([2])])
    def test_blocks_cover_each_column_once(self, loc: object) -> None:
        """Two blocks on one column and a gap (pandas' "Gaps in blk ref_locs") are refused."""
        out = _in_child(_frame_with_block(np.array([[3.0, 4.0]]), loc))
        assert out.endswith("(blocks must cover every column exactly once)"), out

    def test_block_shape_must_fit_the_index(self) -> None:
        """A block with more rows than the index is refused."""
        out = _in_child(_frame_with_block(np.array([[3.0, 4.0, 5.0]]), slice(1, 2)))
        assert "does not fit (1, 2)" in out

    def test_control_the_hand_made_frame_loads(self) -> None:
        """The hand-made frame above loads when nothing lies (the tests above are real)."""
        out = _load(_frame_with_block(np.array([[3.0, 4.0]]), slice(1, 2, 1)))
        expected = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5.0, 6.0]})
        pd.testing.assert_frame_equal(out, expected, check_column_type=False)

    def test_bare_reconstructor_frame(self) -> None:
        """``copyreg._reconstructor(DataFrame)`` without a state (no ``_mgr``) is refused."""
        payload = pickle.dumps(_Reduce(copyreg._reconstructor, pd.DataFrame, object, None), 2)  # type: ignore[attr-defined]
        out = _in_child(payload)
        assert out.endswith("(a DataFrame was created but never given its state)")

    def test_state_given_once(self) -> None:
        """An array given a second state through a memo reference is refused."""
        from numpy._core.multiarray import _reconstruct

        head = pickle.dumps(_Reduce(_reconstruct, np.ndarray, (0,), b"b"), 4)
        head = pickletools.optimize(head)[2:-1]  # no PROTO, no STOP, no memo
        state = lambda s: pickletools.optimize(pickle.dumps(s, 4))[2:-1]  # noqa: E731
        payload = (
            b"\x80\x04" + head + pickle.MEMOIZE
            + state((1, (2,), np.dtype("f8"), False, b"\0" * 16)) + pickle.BUILD
            + pickle.BINGET + b"\0" + state((1, (9,), np.dtype("O"), False, [1.0])) + pickle.BUILD
            + pickle.STOP
        )  # fmt: skip
        assert _in_child(payload).endswith("(refusing to set the state of ndarray)")

    @pytest.mark.parametrize("tail", [b"\n", b"\0", b".", pickle.dumps(None)])
    def test_bytes_after_stop(self, tail: bytes) -> None:
        """Bytes after STOP (inside the last frame or after it) are refused."""
        with pytest.raises(DataError, match=r"bytes after the end of the pickle"):
            _load(_valid_frame_pickle() + tail)
        with pytest.raises(DataError, match=r"bytes after the end of the pickle"):
            _load(pickle.dumps(_frames()["object"], protocol=2) + tail)

    def test_frame_larger_than_the_file(self) -> None:
        """A frame that declares more bytes than the file holds is refused."""
        payload = bytearray(_valid_frame_pickle())
        assert payload[2] == pickle.FRAME[0]
        payload[3 + 2] ^= 1  # + 65536 bytes
        with pytest.raises(DataError, match=r"a frame declares \d+ bytes, the file has \d+"):
            _load(bytes(payload))

    @pytest.mark.parametrize(
        ("args", "state"),
        [
            (("f8", False, False), (3, ">", None, None, None, -1, -1, 0)),  # the shared dtype
            (("U3", False, True), (3, "<", None, None, None, 1 << 30, 4, 8)),  # its size
            (("f8", False, True), (3, "<", None, ("a",), {"a": 1}, -1, -1, 0)),  # fields
            (("V16", False, True), None),  # structured
        ],
    )
    def test_dtype_is_plain(self, args: tuple[object, ...], state: object) -> None:
        """A dtype must be plain and its state the one its spec has (byte order aside)."""
        obj = _Reduce(np.dtype, *args) if state is None else _Built(np.dtype, args, state)
        with pytest.raises(DataError, match=r"not a readable pickle of pandas data \(.*dtype"):
            _load(pickle.dumps(obj, protocol=4))

    def test_big_endian_dtype_is_fine(self) -> None:
        """A big-endian float column (written on another machine) loads with its values."""
        df = pd.DataFrame({"c": np.array([0.25, 0.5], dtype=">f8")})
        out = _load(pickle.dumps(df, protocol=2))
        assert out["c"].tolist() == [0.25, 0.5]

    @pytest.mark.parametrize(
        "obj",
        [
            _Reduce(np.ndarray, (1 << 45,)),  # an admitted class, called directly
            _Reduce(bytearray, 1 << 40),
            _Reduce(slice, 3.0, 4.0),
        ],
    )
    def test_admitted_callables_checked(self, obj: object) -> None:
        """Admitted names are called only with the arguments pandas/NumPy pickles use."""
        with pytest.raises(DataError, match=r"not a readable pickle of pandas data"):
            _load(pickle.dumps(obj, protocol=4))

    @settings(max_examples=40, deadline=None)
    @given(pos=st.integers(0, 10**6), bit=st.integers(0, 7), protocol=st.sampled_from([2, 4, 5]))
    def test_bit_flips_never_crash(self, pos: int, bit: int, protocol: int) -> None:
        """A frame's pickle with one bit flipped loads or is a DataError: no crash, no other
        exception."""
        payload = bytearray(pickle.dumps(_frames()["object"], protocol=protocol))
        payload[pos % len(payload)] ^= 1 << bit
        out = _in_child(bytes(payload))
        assert out == "loaded" or out.startswith("f.pkl: "), out


class TestItemOpcodes:
    """SETITEM(S), APPEND(S) and ADDITEMS change only plain containers not yet handed on."""

    def test_no_item_set_on_an_array(self) -> None:
        """An array's element cannot be changed after it was built and checked."""
        good = pickle.dumps(np.array([1.0, 2.0, 3.0]), protocol=2)
        np.testing.assert_array_equal(_load(good), [1.0, 2.0, 3.0])
        with pytest.raises(DataError, match="refusing to add items to a ndarray"):
            _load(good[:-1] + b"K\x00K\x05s.")  # arr[0] = 5 after BUILD


class _Unseekable(io.RawIOBase):
    """A readable stream that cannot seek (a pipe, a socket)."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        chunk = self._f.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


class TestPlainData:
    """Pickles that name no callable (the original's embedding cache) take the C unpickler."""

    CACHE: ClassVar[list[dict[str, Any]]] = [
        {"prompt": "['hi']", "embedding": [0.25, -1.0], "hash": "ab", "embedding_model": "m"}
    ]

    @pytest.mark.parametrize("protocol", [0, 2, 4, 5])
    def test_cache_loads_equal(self, protocol: int) -> None:
        """A list of dicts of text and float lists loads equal, seekable or not."""
        blob = pickle.dumps(self.CACHE, protocol=protocol)
        assert safe_load(io.BytesIO(blob), name="c.pkl") == self.CACHE
        assert safe_load(io.BufferedReader(_Unseekable(blob)), name="c.pkl") == self.CACHE

    def test_bytes_after_stop_refused(self) -> None:
        """Plain data followed by more bytes is refused, as for any pickle."""
        blob = pickle.dumps(self.CACHE, protocol=4) + b"x"
        with pytest.raises(DataError, match="bytes after the end of the pickle"):
            safe_load(io.BytesIO(blob), name="c.pkl")

    def test_callable_after_plain_data_not_run(self, tmp_path: Any) -> None:
        """A call hidden after plain records is refused by name, and never runs."""
        marker = tmp_path / "ran"

        class Evil:
            def __reduce__(self) -> Any:
                return (os.system, (f"touch {shlex.quote(str(marker))}",))

        blob = pickle.dumps([*self.CACHE * 50, Evil()], protocol=4)
        with pytest.raises(DataError, match=r"refusing to unpickle (posix|os|nt)\.system"):
            safe_load(io.BytesIO(blob), name="c.pkl")
        assert not marker.exists()

    def test_damaged_plain_data_names_the_checked_reason(self) -> None:
        """A truncated plain pickle is refused in one line naming the file."""
        blob = pickle.dumps(self.CACHE, protocol=4)[:-5]
        with pytest.raises(DataError, match=r"^c\.pkl: not a readable pickle"):
            safe_load(io.BytesIO(blob), name="c.pkl")


class TestDocstrings:
    def test_examples_run(self) -> None:
        """The docstring examples of engine/safepickle.py run and give what they show."""
        result = doctest.testmod(safepickle)
        assert result.attempted >= 5 and result.failed == 0
