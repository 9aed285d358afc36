"""Counter-based randomness: values keyed by (seed, prompt, ...) instead of a stateful stream.

A draw for prompt ``p`` never depends on which other prompts are in the batch, their order, or how
the prompts are sharded across workers, so every result is reproducible under any parallelism.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def stable_keys(values: Iterable[object], domain: bytes = b"") -> np.ndarray:
    """A stable 64-bit key per string (blake2b), the same on every machine and Python run;
    ``domain`` separates kinds of keys (a prompt and a model spelled alike differ).

    >>> k = stable_keys(["a", "b", "a"]); bool(k[0] == k[2]), bool(k[0] != k[1])
    (True, True)
    """
    out = [
        int.from_bytes(
            hashlib.blake2b(str(v).encode(), digest_size=8, person=domain).digest(), "little"
        )
        for v in values
    ]
    return np.array(out, dtype=np.uint64)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, vectorised over uint64 (wrapping arithmetic)."""
    out = np.array(x, dtype=np.uint64)  # a copy, also of a scalar
    mix64_inplace(out)
    return out if out.ndim else out[()]


def mix64_inplace(x: np.ndarray) -> None:
    """:func:`mix64` overwriting a uint64 array (no temporaries beyond one of its size)."""
    tmp = np.empty_like(x)
    with np.errstate(over="ignore"):
        for shift, mult in ((30, _M1), (27, _M2), (31, None)):
            np.right_shift(x, np.uint64(shift), out=tmp)
            x ^= tmp
            if mult is not None:
                x *= mult


def keyed_bits(seed: int, *keys: np.ndarray | int) -> np.ndarray:
    """The 64-bit hash of (seed, key1, key2, ...), broadcast over the key arrays."""
    h = mix64(np.asarray(seed & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64) + GOLDEN)
    with np.errstate(over="ignore"):
        for k in keys:
            h = mix64(h ^ (np.asarray(k, dtype=np.uint64) + GOLDEN))
    return np.asarray(h)


def keyed_uniforms(seed: int, *keys: np.ndarray | int) -> np.ndarray:
    """Uniforms in [0, 1) from (seed, key1, key2, ...), broadcast over the key arrays.

    >>> u = keyed_uniforms(7, stable_keys(["p1", "p2"]))
    >>> v = keyed_uniforms(7, stable_keys(["p1", "p2"]))
    >>> bool(((0 <= u) & (u < 1)).all()), bool((u == v).all())
    (True, True)
    """
    h = keyed_bits(seed, *keys)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
