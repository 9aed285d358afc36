"""Prompt features for predictive routers: TF-IDF + truncated SVD, or an upstream embedding cache.

The original embeds prompts with sentence-transformers (``all-MiniLM-L12-v2``), which cannot run
here; :class:`TextFeaturizer` is the offline stand-in.  It is *fitted on training prompts only* and
then transforms any prompts, so test prompts never influence the features (no leakage).  When the
upstream embedding cache is at hand, :func:`load_embedding_cache` and :func:`features_from_cache`
give the original's embeddings instead.

scikit-learn is imported inside the functions that need it (it costs ~1 s and 200 MB).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from routerbench.engine.data import DataError, RoutingData

MAX_FEATURES = 20_000  # TF-IDF vocabulary cap (most frequent terms)
_CACHE_SIZE = 8  # entries kept by the in-process cache
_cache: dict[str, Any] = {}
T = TypeVar("T")


def _memo(key: str, make: Callable[[], T]) -> T:
    """A small in-process cache (oldest entry evicted first)."""
    if key not in _cache:
        if len(_cache) >= _CACHE_SIZE:
            del _cache[next(iter(_cache))]
        _cache[key] = make()
    return _cache[key]  # type: ignore[no-any-return]


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
    return _memo(key, lambda: TextFeaturizer(dim=dim, seed=seed).fit(prompts))


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


def ensure_features(
    data: RoutingData, *, dim: int = 64, seed: int = 0, train_mask: np.ndarray | None = None
) -> RoutingData:
    """``data`` itself if it has features, else ``data`` with :func:`text_features` of its prompts.

    The featurizer is fitted on the rows where ``train_mask`` (all rows if None).  Results are
    cached in-process by (data fingerprint, prompts, dim, seed, mask).
    """
    if data.features is not None:
        return data
    if data.prompts is None:
        raise DataError(f"{data.source}: the data has neither features nor prompts to embed")
    prompts = data.prompts
    mask = np.ones(data.n_prompts, dtype=bool) if train_mask is None else np.asarray(train_mask)
    if mask.dtype != bool or mask.shape != (data.n_prompts,):
        raise DataError(
            f"{data.source}: train_mask must be a boolean array of shape ({data.n_prompts},), "
            f"got {mask.dtype} {mask.shape}"
        )
    parts: list[str | bytes] = [
        data.fingerprint(),
        str(dim),
        str(seed),
        np.packbits(mask).tobytes(),
    ]
    key = _digest("features", *parts, *[str(p) for p in prompts])
    feats = _memo(key, lambda: text_features(prompts, dim=dim, seed=seed, fit_on=mask))
    return data.with_features(feats)


def load_embedding_cache(url: str) -> dict[str, np.ndarray]:
    """Read the upstream embedding cache (a pickled list of ``{prompt, embedding, hash,
    embedding_model}`` dicts) from any fsspec URL into ``{prompt: embedding}``.

    The pickle is read with :func:`routerbench.engine.safepickle.safe_load`, which admits plain
    containers and NumPy/pandas types only (embeddings as NumPy arrays or lists of floats).
    """
    import fsspec

    from routerbench.engine.safepickle import safe_load

    with fsspec.open(url, "rb") as f:
        records = safe_load(f, name=url)
    if not isinstance(records, list):
        raise DataError(f"{url}: expected a pickled list of dicts, got {type(records).__name__}")
    out: dict[str, np.ndarray] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or "prompt" not in rec or "embedding" not in rec:
            raise DataError(f"{url}: record {i} must be a dict with 'prompt' and 'embedding'")
        out[str(rec["prompt"])] = np.asarray(rec["embedding"], dtype=np.float64).ravel()
    return out


def features_from_cache(data: RoutingData, cache: dict[str, np.ndarray]) -> RoutingData:
    """``data`` with features looked up by prompt string in an embedding cache.

    >>> d = RoutingData(quality=[[1.0], [0.0]], cost=[[0.1], [0.1]], models=["a"],
    ...                 prompt_ids=["p0", "p1"], eval_names=["x", "x"], prompts=["hi", "yo"])
    >>> features_from_cache(d, {"hi": np.ones(3), "yo": np.zeros(3)}).features.shape
    (2, 3)
    """
    if data.prompts is None:
        raise DataError(f"{data.source}: the data has no prompts to look up in the embedding cache")
    rows = []
    for p in data.prompts:
        if p not in cache:
            raise DataError(f"{data.source}: prompt {p[:80]!r} is missing from the embedding cache")
        rows.append(cache[p])
    dims = {len(r) for r in rows}
    if len(dims) != 1:
        raise DataError(f"{data.source}: cached embeddings have different lengths {sorted(dims)}")
    return data.with_features(np.vstack(rows))
