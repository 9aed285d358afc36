"""Prompt features: TF-IDF + SVD featurizer, vectors read by load_features."""

from __future__ import annotations

import dataclasses
import doctest
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.engine import features
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError
from routerbench.engine.features import (
    TextFeaturizer,
    load_features,
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


# ------------------------------------------------------------------------------ load_features
MODEL = "all-MiniLM-L12-v2"


def routing(n: int, *, prompts: bool = True) -> RoutingData:
    """n prompts p0..p{n-1} whose text is 'prompt i: ...' (None when prompts is False)."""
    text = [f"prompt {i}: {' '.join(WORDS[: i % 5 + 1])}" for i in range(n)] if prompts else None
    return data_with(text) if prompts else data_with(None, features=np.zeros((n, 1)))


def vectors(n: int, d: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def records(prompts: Any, vecs: np.ndarray, model: str = MODEL) -> list[dict[str, Any]]:
    """The original's cache layout: one dict per prompt, embedding as a list of floats."""
    return [
        {
            "prompt": p,
            "embedding": v.tolist(),
            "hash": hashlib.sha256((p + model).encode()).hexdigest(),
            "embedding_model": model,
        }
        for p, v in zip(prompts, vecs, strict=True)
    ]


def shuffled_with_extra(n: int, extra: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """A file's rows: the n data rows plus ``extra`` unknown ones, in a random order; returns
    (vectors of all rows, for each file row the data row it belongs to or -1)."""
    rng = np.random.default_rng(seed)
    owner = rng.permutation([*range(n), *[-1] * extra]).tolist()
    return vectors(n + extra, seed=seed + 1), owner


def expected(vecs: np.ndarray, owner: list[int], n: int) -> np.ndarray:
    """Row i of the result: the vector of the file row owned by data row i (independent of
    the code under test)."""
    return np.array([vecs[owner.index(i)] for i in range(n)])


def write_pickle(path: Path, obj: object) -> str:
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return str(path)


def load_error(url: str, data: RoutingData, match: str) -> str:
    """The DataError of load_features: one line, naming the file, matching ``match``."""
    with pytest.raises(DataError, match=match) as info:
        load_features(url, data)
    text = str(info.value)
    assert "\n" not in text and text.startswith(url), text
    return text


class Evil:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {os.environ.get('EVIL_MARKER', '/nonexistent/x')}",)


class TestLoadFeaturesCache:
    def test_round_trip_shuffled_with_extra_records(self, tmp_path: Path) -> None:
        """Each prompt gets its record's embedding whatever the order, extra records ignored;
        embeddings as lists or float32 arrays."""
        d = routing(12)
        vecs, owner = shuffled_with_extra(12, 5, seed=3)
        prompts = [d.prompts[i] if i >= 0 else f"other {k}" for k, i in enumerate(owner)]
        recs = records(prompts, vecs)
        k = owner.index(0)  # data row 0's record: a float32 array
        recs[k]["embedding"] = np.asarray(vecs[k], dtype=np.float32)
        vecs[k] = vecs[k].astype(np.float32)
        out = load_features(write_pickle(tmp_path / "embedding_cache_x.pkl", recs), d)
        np.testing.assert_array_equal(out.features, expected(vecs, owner, 12))
        assert out.features.dtype == np.float64

    def test_duplicates_take_the_first_record(self, tmp_path: Path) -> None:
        """A prompt cached twice gets its first record's embedding (as the original's lookup)."""
        d = routing(3)
        vecs = vectors(5)
        recs = records([*d.prompts, d.prompts[1], d.prompts[0]], vecs)
        out = load_features(write_pickle(tmp_path / "c.pkl", recs), d)
        np.testing.assert_array_equal(out.features, vecs[:3])

    def test_two_embedding_models(self, tmp_path: Path) -> None:
        """A cache mixing models is refused, naming them."""
        d = routing(2)
        recs = records(d.prompts[:1], vectors(1)) + records(d.prompts[1:], vectors(1), "other-m")
        url = write_pickle(tmp_path / "c.pkl", recs)
        load_error(url, d, r"mixes 2 embedding_model values \['all-MiniLM-L12-v2', 'other-m'\]")

    def test_forbidden_global_not_run(self, tmp_path: Path, monkeypatch: Any) -> None:
        """A pickle calling os.system is refused and the command never runs."""
        marker = tmp_path / "ran"
        monkeypatch.setenv("EVIL_MARKER", str(marker))
        url = write_pickle(tmp_path / "evil.pkl", [{"prompt": "x", "embedding": Evil()}])
        load_error(url, routing(1), r"refusing to unpickle (posix|os)\.system")
        assert not marker.exists()

    def test_not_a_list(self, tmp_path: Path) -> None:
        """Anything but a list of records is refused."""
        url = write_pickle(tmp_path / "d.pkl", {"a": 1})
        load_error(url, routing(1), "expected a pickled list of dicts, got dict")

    def test_record_without_embedding(self, tmp_path: Path) -> None:
        """A record lacking 'embedding' is named by its position."""
        d = routing(2)
        recs = records(d.prompts, vectors(2))
        del recs[1]["embedding"]
        load_error(write_pickle(tmp_path / "r.pkl", recs), d, "record 1 must be a dict")

    def test_empty_cache(self, tmp_path: Path) -> None:
        """An empty list, and a zero-byte file, are refused as empty."""
        load_error(write_pickle(tmp_path / "e.pkl", []), routing(1), "empty file")
        (tmp_path / "z.pkl").write_bytes(b"")
        load_error(str(tmp_path / "z.pkl"), routing(1), "empty file")

    def test_non_numeric_and_non_finite_and_ragged(self, tmp_path: Path) -> None:
        """A non-number, a NaN and a shorter embedding are each named by their record."""
        d = routing(3)
        bad: list[tuple[Any, str]] = [
            ([1.0, "x", 2.0, 3.0], "record 2: 'embedding' must hold at least one number"),
            ([1.0, np.nan, 2.0, 3.0], r"record 2, 'embedding'\[1\]: expected a finite number"),
            ([1.0, 2.0], "different lengths: record 0 has 4, record 2 has 2"),
            ("abcd", "record 2: 'embedding' must be a list of numbers"),
        ]
        for k, (value, match) in enumerate(bad):
            recs = records(d.prompts, vectors(3))
            recs[2]["embedding"] = value
            load_error(write_pickle(tmp_path / f"b{k}.pkl", recs), d, match)

    def test_bad_vector_of_an_unused_record_is_ignored(self, tmp_path: Path) -> None:
        """Only the records the data uses are checked (a cache covers many data sets)."""
        d = routing(2)
        recs = records([*d.prompts, "unused"], vectors(3))
        recs[2]["embedding"] = [np.nan]
        out = load_features(write_pickle(tmp_path / "c.pkl", recs), d)
        np.testing.assert_array_equal(out.features, vectors(3)[:2])

    def test_data_without_prompts(self, tmp_path: Path) -> None:
        """Matching by prompt text needs prompts in the data."""
        url = write_pickle(tmp_path / "c.pkl", records(["a"], vectors(1)))
        load_error(url, routing(1, prompts=False), "keyed by prompt text, but the data")


def write_table(path: Path, columns: dict[str, Any]) -> str:
    """Columns as Parquet (through Arrow) or CSV (through pandas), by the file name."""
    if path.suffix == ".csv":
        pd.DataFrame(columns).to_csv(path, index=False)
    else:
        pq.write_table(pa.table(columns), path)
    return str(path)


def wide(vecs: np.ndarray) -> dict[str, Any]:
    return {f"d{j}": vecs[:, j] for j in range(vecs.shape[1])}


class TestLoadFeaturesTable:
    @pytest.mark.parametrize("name", ["f.parquet", "f.pq", "f.csv"])
    @pytest.mark.parametrize("key", ["prompt_id", "prompt"])
    def test_wide_round_trip(self, tmp_path: Path, name: str, key: str) -> None:
        """One column per dimension, keyed by prompt_id or prompt, shuffled, extra rows."""
        d = routing(9)
        vecs, owner = shuffled_with_extra(9, 4, seed=7)
        names = d.prompt_ids if key == "prompt_id" else d.prompts
        keys = [names[i] if i >= 0 else f"zz{k}" for k, i in enumerate(owner)]
        out = load_features(write_table(tmp_path / name, {key: keys, **wide(vecs)}), d)
        np.testing.assert_array_equal(out.features, expected(vecs, owner, 9))

    @pytest.mark.parametrize("column", ["embedding", "features"])
    @pytest.mark.parametrize("fixed", [False, True])
    def test_list_column_round_trip(self, tmp_path: Path, column: str, fixed: bool) -> None:
        """A (fixed-size) list column holds the vector; other columns are ignored."""
        d = routing(6)
        vecs, owner = shuffled_with_extra(6, 3, seed=11)
        flat = pa.array(vecs.reshape(-1))
        lists = (
            pa.FixedSizeListArray.from_arrays(flat, 4)
            if fixed
            else pa.array(list(vecs), pa.list_(pa.float64()))
        )
        ids = [d.prompt_ids[i] if i >= 0 else f"x{k}" for k, i in enumerate(owner)]
        url = write_table(tmp_path / "f.parquet", {"prompt_id": ids, column: lists, "n": ids})
        np.testing.assert_array_equal(load_features(url, d).features, expected(vecs, owner, 6))

    def test_prompt_id_wins_over_prompt(self, tmp_path: Path) -> None:
        """With both key columns, rows match by prompt_id and the prompt column is no vector."""
        d = routing(4)
        vecs = vectors(4)
        cols = {"prompt_id": d.prompt_ids[::-1], "prompt": d.prompts, **wide(vecs)}
        out = load_features(write_table(tmp_path / "f.csv", cols), d)
        np.testing.assert_array_equal(out.features, vecs[::-1])

    def test_integer_prompt_ids(self, tmp_path: Path) -> None:
        """Integer prompt_ids in Parquet match the data's ids as text."""
        d = dataclasses.replace(routing(3), prompt_ids=np.array(["2", "0", "1"], dtype=object))
        vecs = vectors(3)
        out = load_features(
            write_table(tmp_path / "f.parquet", {"prompt_id": [0, 1, 2], **wide(vecs)}), d
        )
        np.testing.assert_array_equal(out.features, vecs[[2, 0, 1]])

    def test_equal_duplicates_accepted(self, tmp_path: Path) -> None:
        """A key repeated with the same vector is fine."""
        d = routing(2)
        vecs = vectors(2)[[0, 1, 0]]
        url = write_table(tmp_path / "f.csv", {"prompt_id": ["p0", "p1", "p0"], **wide(vecs)})
        np.testing.assert_array_equal(load_features(url, d).features, vecs[:2])

    def test_bad_value_in_an_unused_row_is_ignored(self, tmp_path: Path) -> None:
        """A NaN in a row that matches no prompt does not matter."""
        vecs = vectors(3)
        vecs[2, 1] = np.nan
        url = write_table(tmp_path / "f.parquet", {"prompt_id": ["p0", "p1", "zz"], **wide(vecs)})
        np.testing.assert_array_equal(load_features(url, routing(2)).features, vecs[:2])

    def test_reads_through_fsspec_with_storage_options(self, monkeypatch: Any) -> None:
        """A remote URL is read through fsspec, which gets the storage options."""
        import fsspec

        seen: list[dict[str, Any]] = []
        real = fsspec.core.url_to_fs

        def spy(url: str, **kw: Any) -> Any:
            seen.append(kw)
            return real(url)

        vecs = vectors(2)
        pd.DataFrame({"prompt_id": ["p1", "p0"], **wide(vecs)}).to_csv(
            "memory://feat/f.csv", index=False
        )
        monkeypatch.setattr(fsspec.core, "url_to_fs", spy)
        out = load_features("memory://feat/f.csv", routing(2), {"anon": True})
        np.testing.assert_array_equal(out.features, vecs[::-1])
        assert seen == [{"anon": True}]

    def test_transient_error_retried(self, tmp_path: Path, monkeypatch: Any) -> None:
        """A connection lost on the first try is retried."""
        from routerbench.engine import io

        url = write_table(tmp_path / "f.csv", {"prompt_id": ["p0"], **wide(vectors(1))})
        calls = []
        real = io._open

        def flaky(u: str, so: Any) -> Any:
            calls.append(u)
            if len(calls) == 1:
                raise ConnectionResetError("lost")
            return real(u, so)

        monkeypatch.setattr(io, "_open", flaky)
        assert load_features(url, routing(1)).features.shape == (1, 4)
        assert len(calls) == 2


class TestLoadFeaturesTableErrors:
    def test_missing_vectors_counted(self, tmp_path: Path) -> None:
        """Prompts without a vector are counted and the first one named."""
        d = routing(1500)
        keep = np.arange(1500) % 15 == 3  # 100 rows have a vector
        cols = {"prompt_id": d.prompt_ids[keep], **wide(vectors(100))}
        url = write_table(tmp_path / "f.parquet", cols)
        load_error(
            url, d, r"1,400 of 1,500 prompts have no vector \(matched by prompt_id; first: 'p0'\)"
        )

    def test_missing_prompt_text_cut_to_60(self, tmp_path: Path) -> None:
        """By prompt text, the first missing prompt is shown cut to 60 characters."""
        long = "a" * 70
        d = data_with(["short", long])
        url = write_table(tmp_path / "f.csv", {"prompt": ["short"], "x": [1.0]})
        text = load_error(url, d, "1 of 2 prompts have no vector")
        assert text.endswith(f"first: {'a' * 60!r})")

    def test_no_key_column(self, tmp_path: Path) -> None:
        """A table without prompt_id or prompt is refused."""
        url = write_table(tmp_path / "f.csv", {"id": ["p0"], "x": [1.0]})
        load_error(url, routing(1), "no key column: expected 'prompt_id' or 'prompt'")

    def test_empty(self, tmp_path: Path) -> None:
        """A zero-byte file and a header without rows are empty."""
        (tmp_path / "z.csv").write_bytes(b"")
        load_error(str(tmp_path / "z.csv"), routing(1), "empty file")
        (tmp_path / "h.csv").write_text("prompt_id,x\n")
        load_error(str(tmp_path / "h.csv"), routing(1), "empty file")

    def test_different_lengths(self, tmp_path: Path) -> None:
        """List vectors of different lengths are named by row."""
        emb = pa.array([[1.0, 2.0], [1.0]], pa.list_(pa.float64()))
        url = write_table(tmp_path / "f.parquet", {"prompt_id": ["p0", "p1"], "embedding": emb})
        load_error(url, routing(2), "different lengths: row 0 has 2, row 1 has 1")

    def test_null_vector(self, tmp_path: Path) -> None:
        """A null list is a row without a vector."""
        emb = pa.array([[1.0], None], pa.list_(pa.float64()))
        url = write_table(tmp_path / "f.parquet", {"prompt_id": ["p0", "p1"], "embedding": emb})
        load_error(url, routing(2), "column 'embedding' has no vector at row 1")

    def test_non_numeric_column(self, tmp_path: Path) -> None:
        """A text column among the vector columns is named."""
        url = write_table(tmp_path / "f.csv", {"prompt_id": ["p0"], "x": [1.0], "y": ["abc"]})
        load_error(url, routing(1), "column 'y' must hold numbers")

    @pytest.mark.parametrize("cell", ["nan", "inf", ""])
    def test_non_finite_value(self, tmp_path: Path, cell: str) -> None:
        """NaN, inf or an empty cell in a used row is named by row and column."""
        (tmp_path / "f.csv").write_text(f"prompt_id,x,y\np0,1,2\np1,3,{cell}\n")
        load_error(str(tmp_path / "f.csv"), routing(2), "row 1, column 'y': expected a finite")

    def test_conflicting_duplicates(self, tmp_path: Path) -> None:
        """A key given twice with different vectors is refused, naming both rows."""
        cols = {"prompt_id": ["p0", "p1", "p0"], "x": [1.0, 2.0, 3.0]}
        url = write_table(tmp_path / "f.parquet", cols)
        load_error(url, routing(2), "prompt_id 'p0' has different vectors in rows 0 and 2")

    def test_unknown_extension(self, tmp_path: Path) -> None:
        """Only .pkl/.pickle/.parquet/.pq/.csv are read."""
        load_error(str(tmp_path / "f.json"), routing(1), r"expected one of \['.pkl'")

    def test_file_not_found(self, tmp_path: Path) -> None:
        """A missing file is a one-line error naming it."""
        load_error(str(tmp_path / "no.parquet"), routing(1), "file not found")


class TestLoadFeaturesIdentity:
    def test_source_follows_content_not_path(self, tmp_path: Path) -> None:
        """Equal vectors at two paths (and formats) give one source; other vectors another."""
        d = routing(3)
        vecs = vectors(3)
        cols = {"prompt_id": d.prompt_ids, **wide(vecs)}
        a = load_features(write_table(tmp_path / "a.parquet", cols), d)
        b = load_features(write_table(tmp_path / "b.csv", cols), d)
        c = load_features(write_pickle(tmp_path / "c.pkl", records(d.prompts, vecs)), d)
        assert a.features_source == b.features_source == c.features_source
        digest = hashlib.sha256(str((3, 4)).encode() + vecs.astype("<f8").tobytes())
        assert a.features_source == f"features:{digest.hexdigest()[:16]}"
        other = {**cols, "d0": vecs[:, 0] + 1}
        e = load_features(write_table(tmp_path / "a.parquet", other), d)
        assert e.features_source != a.features_source
        assert e.fingerprint() != a.fingerprint() != d.fingerprint()
        assert a.fingerprint() == b.fingerprint()


class TestDocstrings:
    def test_examples_run(self) -> None:
        """The docstring examples of engine/features.py run and give what they show."""
        result = doctest.testmod(features)
        assert result.attempted >= 11 and result.failed == 0
