"""Prompt features: TF-IDF + SVD featurizer, ensure_features, the upstream embedding cache."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.engine.data import DataError, RoutingData
from routerbench.engine.features import (
    TextFeaturizer,
    ensure_features,
    features_from_cache,
    load_embedding_cache,
    text_features,
)

WORDS = "apple banana car dog engine forest guitar house island jungle kite lemon".split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 8)))) for _ in range(n)]


def data_with(prompts: list[str] | None, features: np.ndarray | None = None) -> RoutingData:
    n = len(prompts) if prompts is not None else len(features)  # type: ignore[arg-type]
    rng = np.random.default_rng(n)
    return RoutingData(
        quality=rng.random((n, 2)),
        cost=rng.random((n, 2)),
        models=["a", "b"],
        prompt_ids=[f"p{i}" for i in range(n)],
        eval_names=["mmlu-x"] * n,
        prompts=prompts,
        features=features,
    )


class TestTextFeaturizer:
    def test_shape_and_unit_rows(self) -> None:
        """Rows have norm 1, or 0 for a prompt with no known word; the shape is [n, dim]."""
        f = TextFeaturizer(dim=4, seed=0).fit(sentences(30))
        x = f.transform([*sentences(5, seed=1), "nothing known here"])
        assert x.shape == (6, 4)
        norms = np.linalg.norm(x, axis=1)
        np.testing.assert_allclose(norms[:5], 1.0, rtol=1e-12)
        assert norms[5] == 0.0

    def test_zero_padded_when_vocabulary_is_small(self) -> None:
        """With fewer terms than dim, the output still has dim columns, the extra ones zero."""
        x = TextFeaturizer(dim=10).fit(["red apple", "green apple"]).transform(["red apple"])
        assert x.shape == (1, 10)
        assert (x[:, 3:] == 0).all()

    def test_deterministic_for_a_seed(self) -> None:
        """Two fits with the same seed give identical features."""
        p = sentences(40)
        a = TextFeaturizer(dim=5, seed=3).fit(p).transform(p)
        b = TextFeaturizer(dim=5, seed=3).fit(p).transform(p)
        assert (a == b).all()

    def test_similar_prompts_are_closer(self) -> None:
        """Prompts sharing words are nearer (cosine) than prompts sharing none."""
        train = ["solve the equation for x", "solve the equation for y", "a poem about spring"]
        train += ["a poem about autumn", "write python code", "write rust code"]
        x = (
            TextFeaturizer(dim=4)
            .fit(train)
            .transform(["solve the equation for z", "solve equation", "a poem about winter"])
        )
        assert x[0] @ x[1] > x[0] @ x[2]

    def test_pickle_round_trip(self) -> None:
        """A pickled featurizer transforms exactly as the original."""
        p = sentences(30)
        f = TextFeaturizer(dim=3).fit(p)
        g = pickle.loads(pickle.dumps(f))
        assert (f.transform(p) == g.transform(p)).all()

    def test_transform_before_fit(self) -> None:
        """Transforming with an unfitted featurizer is an error."""
        with pytest.raises(RuntimeError, match="before fit"):
            TextFeaturizer().transform(["x"])

    def test_no_words_is_a_data_error(self) -> None:
        """Training prompts without a single word give a one-line DataError."""
        with pytest.raises(DataError, match="cannot fit on the training prompts"):
            TextFeaturizer().fit(["!", "?"])

    def test_dim_must_be_positive(self) -> None:
        """dim < 1 is refused."""
        with pytest.raises(ValueError, match="dim must be >= 1"):
            TextFeaturizer(dim=0)


class TestTextFeatures:
    @settings(max_examples=15, deadline=None)
    @given(st.integers(4, 30), st.integers(1, 6), st.integers(0, 10_000))
    def test_test_prompts_do_not_change_train_features(self, n: int, dim: int, seed: int) -> None:
        """Replacing the rows outside fit_on leaves the fitted rows' features unchanged."""
        p = np.array(sentences(n, seed), dtype=object)
        mask = np.random.default_rng(seed).random(n) < 0.6
        mask[0] = True
        other = p.copy()
        other[~mask] = sentences(int((~mask).sum()), seed + 1)
        a = text_features(p, dim=dim, fit_on=mask)
        b = text_features(other, dim=dim, fit_on=mask)
        assert (a[mask] == b[mask]).all()

    def test_equals_featurizer_fitted_on_the_mask(self) -> None:
        """fit_on fits on exactly the masked rows and transforms all rows."""
        p = np.array(sentences(20), dtype=object)
        mask = np.arange(20) % 3 != 0
        expected = TextFeaturizer(dim=4, seed=2).fit(p[mask]).transform(p)
        np.testing.assert_array_equal(text_features(p, dim=4, seed=2, fit_on=mask), expected)

    def test_fits_on_all_rows_by_default(self) -> None:
        """Without fit_on every row is used for fitting."""
        p = sentences(15)
        expected = TextFeaturizer(dim=3).fit(p).transform(p)
        np.testing.assert_array_equal(text_features(p, dim=3), expected)


class TestEnsureFeatures:
    def test_existing_features_kept(self) -> None:
        """Data that has features is returned unchanged."""
        d = data_with(sentences(5), features=np.ones((5, 2)))
        assert ensure_features(d) is d

    def test_computed_from_prompts_with_mask(self) -> None:
        """Without features, text features fitted on the training mask are attached."""
        p = sentences(25)
        mask = np.arange(25) < 18
        out = ensure_features(data_with(p), dim=4, seed=1, train_mask=mask)
        expected = text_features(np.array(p, dtype=object), dim=4, seed=1, fit_on=mask)
        np.testing.assert_array_equal(out.features, expected)

    def test_cached(self) -> None:
        """A second call with the same data and settings reuses the cached features."""
        d = data_with(sentences(12))
        assert ensure_features(d, dim=3).features is ensure_features(d, dim=3).features

    def test_cache_tells_prompts_apart(self) -> None:
        """Same outcomes but other prompts give other features (and another fingerprint: the
        prompt text is part of the data's identity)."""
        a = data_with(sentences(12, seed=0))
        b = data_with(sentences(12, seed=5))
        assert a.fingerprint() != b.fingerprint()
        fa, fb = ensure_features(a, dim=3).features, ensure_features(b, dim=3).features
        assert fa is not None and fb is not None and fa.shape == fb.shape
        assert not np.array_equal(fa, fb)

    def test_neither_features_nor_prompts(self) -> None:
        """Data with nothing to embed gives a one-line DataError."""
        d = dataclasses.replace(data_with(None, features=np.ones((3, 2))), features=None)
        with pytest.raises(DataError, match="neither features nor prompts"):
            ensure_features(d)

    def test_bad_mask(self) -> None:
        """A mask of the wrong shape or dtype is a DataError naming what was expected."""
        with pytest.raises(DataError, match=r"train_mask must be a boolean array of shape \(4,\)"):
            ensure_features(data_with(sentences(4)), train_mask=np.array([1, 0, 1, 0]))


def write_pickle(path: Path, obj: object) -> str:
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return str(path)


class TestLoadEmbeddingCache:
    def test_reads_upstream_layout(self, tmp_path: Path) -> None:
        """A pickled list of {prompt, embedding, hash, embedding_model} maps prompt -> vector."""
        emb = {"hash": "h", "embedding_model": "all-MiniLM-L12-v2"}
        records = [
            {"prompt": "a", "embedding": np.array([1, 2], np.float32), **emb},
            {"prompt": "b", "embedding": [0.5, -1.0], **emb},  # upstream's .tolist() form
        ]
        cache = load_embedding_cache(write_pickle(tmp_path / "c.pkl", records))
        assert sorted(cache) == ["a", "b"]
        np.testing.assert_array_equal(cache["a"], [1.0, 2.0])
        np.testing.assert_array_equal(cache["b"], [0.5, -1.0])

    def test_refuses_code(self, tmp_path: Path) -> None:
        """A pickle that names a non-data callable is refused with a DataError."""
        url = write_pickle(tmp_path / "evil.pkl", [{"prompt": "a", "embedding": print}])
        with pytest.raises(DataError, match="refusing to unpickle"):
            load_embedding_cache(url)

    def test_not_a_list(self, tmp_path: Path) -> None:
        """Anything but a list of records is a DataError."""
        with pytest.raises(DataError, match="expected a pickled list of dicts, got dict"):
            load_embedding_cache(write_pickle(tmp_path / "d.pkl", {"a": 1}))

    def test_record_without_embedding(self, tmp_path: Path) -> None:
        """A record lacking 'embedding' is named by its position."""
        url = write_pickle(tmp_path / "r.pkl", [{"prompt": "a"}])
        with pytest.raises(
            DataError, match="record 0 must be a dict with 'prompt' and 'embedding'"
        ):
            load_embedding_cache(url)


class TestFeaturesFromCache:
    def test_looks_up_by_prompt(self) -> None:
        """Row i gets the cached embedding of prompt i."""
        d = data_with(["x", "y", "x"])
        out = features_from_cache(d, {"x": np.array([1.0, 0.0]), "y": np.array([0.0, 1.0])})
        np.testing.assert_array_equal(out.features, [[1, 0], [0, 1], [1, 0]])

    def test_missing_prompt_named(self) -> None:
        """The first prompt missing from the cache is named."""
        with pytest.raises(DataError, match="prompt 'y' is missing from the embedding cache"):
            features_from_cache(data_with(["x", "y"]), {"x": np.ones(2)})

    def test_no_prompts(self) -> None:
        """Data without prompts cannot be looked up."""
        d = data_with(None, features=np.ones((2, 2)))
        with pytest.raises(DataError, match="no prompts"):
            features_from_cache(d, {})

    def test_ragged_embeddings(self) -> None:
        """Embeddings of different lengths are a DataError."""
        with pytest.raises(DataError, match="different lengths"):
            features_from_cache(data_with(["x", "y"]), {"x": np.ones(2), "y": np.ones(3)})
