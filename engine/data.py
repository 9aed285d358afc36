"""Outcome data: the validated table of every prompt answered by every model.

``RoutingData`` holds aligned NumPy arrays; everything downstream (routers, kernels, sweeps) reads
from it.  Construction validates shapes and values and raises :class:`DataError` with a one-line
message that says what must hold and what was found.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routerbench.engine.errors import DataError, did_you_mean
from routerbench.engine.rng import stable_keys

# The paper's seven task families, as eval_name prefixes (all MMLU subjects pool into "mmlu",
# the three mtbench names pool into "mtbench").
PAPER_FAMILIES: tuple[str, ...] = (
    "grade-school-math",
    "hellaswag",
    "mmlu",
    "arc-challenge",
    "mbpp",
    "winogrande",
    "mtbench",
)


def family_of(eval_name: str) -> str:
    """Map an eval name to its RouterBench family.

    >>> family_of("mmlu-astronomy"), family_of("mtbench-math"), family_of("consensus_summary")
    ('mmlu', 'mtbench', 'consensus_summary')
    """
    for fam in PAPER_FAMILIES:
        if eval_name == fam or eval_name.startswith(fam + "-"):
            return fam
    return eval_name


def families_of(eval_names: Sequence[str] | np.ndarray) -> np.ndarray:
    """Vectorised :func:`family_of` (computed once per distinct name)."""
    fam = {name: family_of(name) for name in set(eval_names)}
    return np.array([fam[name] for name in eval_names], dtype=object)


def _as_str_array(values: Sequence[str] | np.ndarray, what: str, n: int) -> np.ndarray:
    """An object array of ``str`` (no fixed-width copy: one long string must not cost n times)."""
    arr = np.asarray(values, dtype=object)
    if arr.shape != (n,):
        raise DataError(f"{what}: expected {n} values, got shape {arr.shape}")
    if not all(type(x) is str for x in arr):
        arr = np.array([str(x) for x in arr], dtype=object)
    _check_text(arr, what)
    return arr


def _check_text(values: Sequence[str] | np.ndarray, what: str) -> None:
    """Names are text: each must encode as UTF-8 (no lone surrogates), checked in one pass."""
    try:
        "".join(values).encode("utf-8")
    except UnicodeEncodeError:
        for i, x in enumerate(values):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError as e:
                raise DataError(
                    f"{what}: value at row {i} is not valid text ({e.reason} at character "
                    f"{e.start}): expected UTF-8 encodable strings"
                ) from None


_CHUNK = 1 << 16  # strings encoded and hashed at a time
_FINGERPRINT = b"routerbench.RoutingData/2"  # the first bytes hashed (the fingerprint's version)
# The fields hashed after the model names, in this order (each field's name is its tag); the
# streaming fingerprint of a Parquet file (engine.rowgroups) follows the same order.
_HASHED_TEXTS = ("prompt_ids", "eval_names", "families", "prompts")
_HASHED_ARRAYS = ("quality", "cost", "latency", "features")


class _StringsHash:
    """A tagged, length-prefixed list of ``n`` strings added to a hash in pieces of any size.

    The bytes hashed are those of one :func:`_hash_strings` call over the whole list: the tag and
    ``n``, then per chunk of :data:`_CHUNK` strings their UTF-8 lengths (int64) and their bytes.
    At most one chunk is held between calls.
    """

    def __init__(self, h: Any, tag: bytes, n: int) -> None:
        h.update(tag + b":%d;" % n)
        self._h = h
        self._left = n  # strings still to come
        self._lengths: list[np.ndarray] = []  # the strings held (fewer than _CHUNK)
        self._parts: list[memoryview] = []
        self._held = 0

    def add(self, strings: Sequence[str] | np.ndarray) -> None:
        """Add the next strings."""
        enc = [str(x).encode("utf-8", "surrogatepass") for x in strings]
        self.add_encoded(np.array([len(b) for b in enc], dtype=np.int64), b"".join(enc))

    def add_encoded(self, lengths: np.ndarray, data: Any) -> None:
        """Add the next strings as their UTF-8 byte ``lengths`` and their concatenated bytes
        ``data`` (any buffer, kept without a copy until its chunk is hashed)."""
        if len(lengths) > self._left:
            raise ValueError(f"{len(lengths)} more strings than the {self._left} announced")
        self._left -= len(lengths)
        view = memoryview(data).cast("B")
        i = pos = 0
        while i < len(lengths):
            take = min(_CHUNK - self._held, len(lengths) - i)
            end = pos + int(lengths[i : i + take].sum())
            self._lengths.append(lengths[i : i + take])
            self._parts.append(view[pos:end])
            self._held += take
            i, pos = i + take, end
            if self._held == _CHUNK:
                self._flush()

    def close(self) -> None:
        """Hash the last chunk; every announced string must have been added."""
        if self._left:
            raise ValueError(f"{self._left} announced strings were not added")
        if self._held:
            self._flush()

    def _flush(self) -> None:
        self._h.update(np.concatenate(self._lengths).astype("<i8").tobytes())
        for part in self._parts:
            self._h.update(part)
        self._lengths, self._parts, self._held = [], [], 0


def _hash_strings(h: Any, tag: bytes, strings: Sequence[str] | np.ndarray | None) -> None:
    """Add a tagged, length-prefixed list of strings (None: absent) to a hash."""
    if strings is None:
        h.update(tag + b":none;")
        return
    feed = _StringsHash(h, tag, len(strings))
    for lo in range(0, len(strings), _CHUNK):
        feed.add(strings[lo : lo + _CHUNK])
    feed.close()


def _hash_array_head(h: Any, tag: bytes, shape: Sequence[int]) -> None:
    """Add an array's tag and shape to a hash; its float64 values (little-endian, row-major)
    follow, in as many pieces as convenient."""
    h.update(tag + b":" + ",".join(map(str, shape)).encode() + b";")


def _hash_array(h: Any, tag: bytes, arr: np.ndarray | None) -> None:
    """Add a tagged float64 array with its shape (None: absent) to a hash, without a copy."""
    if arr is None:
        h.update(tag + b":none;")
        return
    a = np.ascontiguousarray(arr, dtype="<f8")
    _hash_array_head(h, tag, a.shape)
    if a.size:
        h.update(memoryview(a.reshape(-1)).cast("B"))  # type: ignore[arg-type]


def _outcome_arrays(
    src: str, quality: Any, cost: Any, names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Copies of ``quality`` and ``cost`` as float64 ``[n, m]`` (n, m >= 1) and their m unique
    model names."""
    q = np.array(quality, dtype=np.float64, copy=True)
    c = np.array(cost, dtype=np.float64, copy=True)
    if q.ndim != 2:
        raise DataError(f"{src}: quality must be a 2-D (prompts x models) array, got {q.ndim}-D")
    n, m = q.shape
    if c.shape != q.shape:
        raise DataError(f"{src}: cost shape {c.shape} must equal quality shape {q.shape}")
    if n == 0 or m == 0:
        raise DataError(f"{src}: need at least one prompt and one model, got {n} x {m}")
    models = tuple(str(x) for x in names)
    _check_text(models, f"{src}: model names")
    if len(models) != m:
        raise DataError(f"{src}: {m} model columns but {len(models)} model names")
    if len(set(models)) != m:
        dup = sorted({x for x in models if models.count(x) > 1})
        raise DataError(f"{src}: model names must be unique, repeated: {dup}")
    return q, c, models


CHECK_ROWS = 65_536  # rows checked at a time: the checks' scratch stays small for any table


def _check_outcomes(src: str, q: np.ndarray, c: np.ndarray, models: tuple[str, ...]) -> None:
    """Quality in [0, 1] (or NaN) and not subnormal; cost finite, >= 0, NaN only where quality
    is NaN, and small enough that any sum of costs stays finite. Checked ``CHECK_ROWS`` rows at
    a time."""
    largest = 0.0
    for lo in range(0, len(q), CHECK_ROWS):
        part = slice(lo, lo + CHECK_ROWS)
        largest = max(largest, _check_rows(src, q[part], c[part], models, lo))
    if largest * c.size >= np.finfo(np.float64).max:  # any sum of costs must stay finite
        raise DataError(
            f"{src}: costs up to {largest:.3g} over {c.size} outcomes can sum past float64's "
            "range; expected costs in USD per prompt"
        )


def _check_rows(
    src: str, q: np.ndarray, c: np.ndarray, models: tuple[str, ...], first: int
) -> float:
    """:func:`_check_outcomes` on rows ``first, first + 1, ...``; their largest known cost."""
    with np.errstate(invalid="ignore"):
        if (np.nanmin(q, initial=0.0) < 0.0) or (np.nanmax(q, initial=1.0) > 1.0):
            bad = np.argwhere((q < 0) | (q > 1))[0]
            raise DataError(
                f"{src}: quality must lie in [0, 1], model {models[bad[1]]!r} has "
                f"{q[bad[0], bad[1]]!r} at prompt row {first + bad[0]}"
            )
    if np.isinf(c).any():
        bad = np.argwhere(np.isinf(c))[0]
        raise DataError(
            f"{src}: cost must be finite, model {models[bad[1]]!r} row {first + bad[0]}"
        )
    neg = c < 0
    if neg.any():
        bad = np.argwhere(neg)[0]
        raise DataError(
            f"{src}: cost must be >= 0, model {models[bad[1]]!r} has {c[bad[0], bad[1]]!r} "
            f"at prompt row {first + bad[0]}"
        )
    tiny = (q > 0) & (q < np.finfo(np.float64).tiny)
    if tiny.any():
        bad = np.argwhere(tiny)[0]
        raise DataError(
            f"{src}: quality {q[bad[0], bad[1]]!r} of model {models[bad[1]]!r} at prompt row "
            f"{first + bad[0]} is subnormal: expected a score in [0, 1] (a damaged file?)"
        )
    nan_cost = np.isnan(c) & ~np.isnan(q)
    if nan_cost.any():
        bad = np.argwhere(nan_cost)[0]
        raise DataError(
            f"{src}: cost is NaN where quality is known, model {models[bad[1]]!r} "
            f"row {first + bad[0]} (NaN cost is allowed only for a missing outcome)"
        )
    return 0.0 if np.isnan(c).all() else float(np.nanmax(c))


def _check_unique(src: str, pids: np.ndarray) -> None:
    """Prompt ids must be unique: a DataError naming the first repeated one."""
    if len(set(pids)) != len(pids):
        seen: set[str] = set()
        dup = next(p for p in pids if p in seen or seen.add(p))  # type: ignore[func-returns-value]
        raise DataError(f"{src}: prompt ids must be unique, {dup!r} is repeated")


def _check_strings(
    src: str,
    n: int,
    prompt_ids: Any,
    eval_names: Any,
    families: Any,
    prompts: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Prompt ids (unique), eval names, families (derived from the eval names if None) and
    prompts (if any) as object arrays of n texts."""
    pids = _as_str_array(prompt_ids, f"{src}: prompt_ids", n)
    _check_unique(src, pids)
    evals = _as_str_array(eval_names, f"{src}: eval_names", n)
    fams = (
        families_of(evals) if families is None else _as_str_array(families, f"{src}: families", n)
    )
    if prompts is not None:
        prompts = _as_str_array(prompts, f"{src}: prompts", n)
    return pids, evals, fams, prompts


def _check_optional(
    src: str, shape: tuple[int, int], features: Any, latency: Any
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``features[n, d]`` (finite) and ``latency`` of the outcomes' shape (finite, >= 0, or
    NaN), each None if not given."""
    n = shape[0]
    feats = None
    if features is not None:
        feats = np.asarray(features, dtype=np.float64)
        if feats.ndim != 2 or feats.shape[0] != n:
            raise DataError(f"{src}: features must be (n={n}, d), got shape {feats.shape}")
        if not np.isfinite(feats).all():
            raise DataError(f"{src}: features must be finite")
    lat = None
    if latency is not None:
        lat = np.array(latency, dtype=np.float64, copy=True)
        if lat.shape != shape:
            raise DataError(f"{src}: latency shape {lat.shape} must equal {shape}")
        known = lat[~np.isnan(lat)]
        if (known < 0).any() or np.isinf(known).any():
            raise DataError(f"{src}: latency must be finite and >= 0")
    return feats, lat


@dataclass(frozen=True, eq=False)
class RoutingData:
    """Every prompt answered by every model: ``quality[n, m]`` and ``cost[n, m]``.

    - ``quality`` in [0, 1], float64; NaN marks a missing outcome (as in the 5-shot file).
    - ``cost`` in USD per prompt and model, finite and >= 0; NaN only where quality is NaN too.
    - ``models``: m unique names, in the data's model order (which breaks ties everywhere).
    - ``prompt_ids``: n unique strings; ``eval_names``: n strings; ``families`` derived from
      ``eval_names`` by :func:`family_of` unless given.
    - optional ``prompts`` (n strings), ``features[n, d]``, ``latency[n, m]``.
    - ``source`` says where the data came from; ``synthetic`` labels generated data;
      ``features_source`` says how the features were made (part of the fingerprint).

    >>> d = RoutingData(quality=[[1.0, 0.0]], cost=[[0.1, 0.01]], models=["a", "b"],
    ...                 prompt_ids=["p0"], eval_names=["mmlu-x"])
    >>> d.n_prompts, d.n_models, d.families.tolist()
    (1, 2, ['mmlu'])
    """

    quality: np.ndarray
    cost: np.ndarray
    models: tuple[str, ...]
    prompt_ids: np.ndarray
    eval_names: np.ndarray
    families: np.ndarray = field(default=None)  # type: ignore[assignment,arg-type]
    prompts: np.ndarray | None = None
    features: np.ndarray | None = None
    latency: np.ndarray | None = None
    source: str = "<memory>"
    synthetic: bool = False
    features_source: str = ""

    _keys: dict[bytes, np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )  # prompt keys per domain (:meth:`keys`), carried by :meth:`take`

    def __post_init__(self) -> None:
        src = self.source
        q, c, models = _outcome_arrays(src, self.quality, self.cost, self.models)
        _check_outcomes(src, q, c, models)
        pids, evals, fams, prompts = _check_strings(
            src, q.shape[0], self.prompt_ids, self.eval_names, self.families, self.prompts
        )
        feats, lat = _check_optional(src, q.shape, self.features, self.latency)
        for arr in (q, c, feats, lat):
            if arr is not None:
                arr.setflags(write=False)
        s = object.__setattr__
        s(self, "quality", q)
        s(self, "cost", c)
        s(self, "models", models)
        s(self, "prompt_ids", pids)
        s(self, "eval_names", evals)
        s(self, "families", fams)
        s(self, "prompts", prompts)
        s(self, "features", feats)
        s(self, "latency", lat)

    # ------------------------------------------------------------------ views
    @property
    def n_prompts(self) -> int:
        return int(self.quality.shape[0])

    @property
    def n_models(self) -> int:
        return int(self.quality.shape[1])

    @property
    def missing(self) -> np.ndarray:
        """Boolean ``[n, m]``: True where the outcome is missing (NaN quality)."""
        return np.asarray(np.isnan(self.quality))

    def family_names(self) -> list[str]:
        """Families in order of first appearance."""
        return list(dict.fromkeys(self.families))

    def model_index(self, name: str) -> int:
        """Column of model ``name``; a :class:`DataError` with a suggestion if unknown."""
        try:
            return self.models.index(name)
        except ValueError:
            raise DataError(
                f"unknown model {name!r}: expected one of {list(self.models)}"
                + did_you_mean(name, self.models)
            ) from None

    def take(self, rows: np.ndarray | Sequence[int] | Sequence[bool]) -> RoutingData:
        """A new RoutingData with the given prompt rows (indices or boolean mask), in that order.

        Rows of validated data need no second validation, only distinct indices; prompt keys
        already computed (:meth:`keys`) come along.
        """
        idx = np.asarray(rows)
        if idx.dtype == bool:
            if idx.shape != (self.n_prompts,):
                raise DataError(
                    f"{self.source}: a row mask needs {self.n_prompts} values, got {idx.shape}"
                )
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.intp, copy=False).reshape(-1)
        if len(idx) == self.n_prompts and (idx == np.arange(len(idx))).all():
            return self
        if len(idx) == 0:
            raise DataError(f"{self.source}: need at least one prompt row, got none")
        if idx.min() < -self.n_prompts or idx.max() >= self.n_prompts:
            raise DataError(f"{self.source}: row index out of range for {self.n_prompts} prompts")
        idx = idx % self.n_prompts
        increasing = bool((idx[1:] > idx[:-1]).all())  # the usual case: no sort needed
        if not increasing and len(np.unique(idx)) != len(idx):
            raise DataError(f"{self.source}: rows must be distinct (prompt ids must stay unique)")

        def sel(a: np.ndarray | None) -> np.ndarray | None:
            if a is None:
                return None
            out = a[idx]
            if a.dtype != object:
                out.setflags(write=False)
            return out

        new = object.__new__(RoutingData)
        for f in dataclasses.fields(self):
            if f.init:
                value = getattr(self, f.name)
                out = sel(value) if isinstance(value, np.ndarray) else value
                object.__setattr__(new, f.name, out)
        object.__setattr__(new, "_keys", {d: k[idx] for d, k in self._keys.items()})
        return new

    @classmethod
    def joined(cls, like: RoutingData, arrays: dict[str, np.ndarray]) -> RoutingData:
        """Rows of several validated parts with ``like``'s models and labels, given as ``arrays``
        (field -> every part's rows filled into one array, taken, not copied): the checks each
        part passed hold for the whole except that prompt ids stay unique, which is checked
        here. Reads a large table piece by piece in little extra memory."""
        _check_unique(like.source, arrays["prompt_ids"])
        new = object.__new__(cls)
        for f in dataclasses.fields(like):
            if f.init:
                value = getattr(like, f.name)
                if isinstance(value, np.ndarray):  # a per-prompt array: the joined rows
                    value = arrays[f.name]
                    if value.dtype != object:
                        value.setflags(write=False)
                object.__setattr__(new, f.name, value)
        object.__setattr__(new, "_keys", {})
        return new

    def keys(self, domain: bytes = b"") -> np.ndarray:
        """Stable 64-bit keys of the prompt ids (:func:`routerbench.engine.rng.stable_keys` with
        ``domain``), computed once per domain and kept by :meth:`take`; read-only."""
        if domain not in self._keys:
            keys = stable_keys(self.prompt_ids, domain)
            keys.setflags(write=False)
            self._keys[domain] = keys
        return self._keys[domain]

    def complete(self) -> RoutingData:
        """The prompts with no missing outcome (every model has a quality)."""
        keep = np.asarray(~self.missing.any(axis=1))
        return self if keep.all() else self.take(keep)

    def with_features(self, features: np.ndarray, source: str = "") -> RoutingData:
        """The same prompts with ``features[n, d]`` attached; ``source`` says how they were made
        (a file, an embedding model) and is part of the :meth:`fingerprint`."""
        return dataclasses.replace(self, features=features, features_source=source)

    def fingerprint(self) -> str:
        """sha256 of everything a result can depend on, computed once per instance.

        Covered: model names and their order, prompt ids, eval names, families, prompt text,
        quality, cost, latency, features and ``features_source``; each part is tagged and
        length-prefixed, so no two different data sets share a byte stream (an absent part
        differs from an empty one). Not covered: ``source`` (the same content read from another
        path is the same data) and ``synthetic`` (a label, not content). Large arrays are hashed
        in place and strings in chunks, so the cost is one pass over the data.
        """
        return self._fingerprint

    @functools.cached_property
    def _fingerprint(self) -> str:
        h = hashlib.sha256(_FINGERPRINT)
        _hash_strings(h, b"models", self.models)
        for name in _HASHED_TEXTS:
            _hash_strings(h, name.encode(), getattr(self, name))
        for name in _HASHED_ARRAYS:
            _hash_array(h, name.encode(), getattr(self, name))
        _hash_strings(h, b"features_source", [self.features_source])
        return h.hexdigest()

    def __repr__(self) -> str:  # short: arrays can be large
        tag = ", synthetic" if self.synthetic else ""
        return (
            f"RoutingData({self.n_prompts} prompts x {self.n_models} models, "
            f"{len(self.family_names())} families, source={self.source!r}{tag})"
        )
