"""The blocked top-k neighbour search (engine/neighbours.py) and its sharing across k."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_predictive import make_data

from routerbench.engine import neighbours
from routerbench.engine.neighbours import SHARE_K, SHARED, Index, top_k
from routerbench.routers.predictive import KNNRouter

METRICS = ["cosine", "euclidean"]


def brute_distances(train: np.ndarray, test: np.ndarray, metric: str) -> np.ndarray:
    """The full distance matrix by the documented definition, one pair at a time: cosine from
    ``sklearn.preprocessing.normalize``'s rows, each dot product summed by ``np.einsum``;
    euclidean squared (exact on the integer features the tests use for ties)."""
    from sklearn.preprocessing import normalize

    if metric == "cosine":
        x, y = normalize(test), normalize(train)
    else:
        x, y = test, train
    out = np.empty((len(test), len(train)))
    xsq, ysq = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
    for i in range(len(test)):
        dot = np.einsum("ij,ij->i", np.tile(x[i], (len(y), 1)), y)
        if metric == "cosine":
            out[i] = np.clip(1 - dot, 0, 2)
        else:
            out[i] = np.maximum(xsq[i] - 2 * dot + ysq, 0)
    return out


def brute_top_k(train: np.ndarray, test: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Every training row sorted by (distance, index); the first k."""
    dist = brute_distances(train, test, metric)
    order = [np.lexsort((np.arange(len(train)), row)) for row in dist]
    return np.array(order, dtype=np.intp).reshape(len(test), len(train))[:, :k]


def small_ints(rows: st.SearchStrategy[int], d: int) -> st.SearchStrategy[np.ndarray]:
    """Integer-valued features in [-2, 2]: distances tie often (exactly, for euclidean)."""
    return rows.flatmap(
        lambda n: hnp.arrays(np.float64, (n, d), elements=st.integers(-2, 2).map(float))
    )


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, str, int | None]:
    d = draw(st.integers(1, 4))
    train = draw(small_ints(st.integers(1, 25), d))
    test = draw(small_ints(st.integers(1, 8), d))
    k = draw(st.integers(1, len(train)))
    return train, test, k, draw(st.sampled_from(METRICS)), draw(st.none() | st.integers(1, 5))


def continuous(seed: int, n: int, m: int, d: int, copies: bool = False) -> tuple[np.ndarray, ...]:
    """Random normal training and test rows; ``copies``: training rows repeat 60 distinct rows
    (exact ties, whose screened distances differ with the product's shape)."""
    rng = np.random.default_rng(seed)
    train = rng.standard_normal((n, d))
    if copies:
        train = train[rng.integers(0, 60, n)]
    return train, rng.standard_normal((m, d))


class TestTopK:
    @settings(max_examples=300)
    @given(problems())
    def test_matches_brute_force(
        self, problem: tuple[np.ndarray, np.ndarray, int, str, int | None]
    ) -> None:
        """Nearest first, ties to the lower training index, any k (n_train too), any chunking."""
        train, test, k, metric, rows = problem
        got = top_k(train, test, k, metric, chunk_rows=rows)
        np.testing.assert_array_equal(got, brute_top_k(train, test, k, metric))

    @settings(max_examples=100)
    @given(problems())
    def test_prefix(self, problem: tuple[np.ndarray, np.ndarray, int, str, int | None]) -> None:
        """The first k of the K nearest are the k nearest (the tie rule is a total order)."""
        train, test, k, metric, rows = problem
        full = top_k(train, test, len(train), metric, chunk_rows=rows)
        np.testing.assert_array_equal(top_k(train, test, k, metric), full[:, :k])

    @pytest.mark.parametrize("metric", METRICS)
    @pytest.mark.parametrize("d", [3, 8, 64, 384])
    def test_chunking_does_not_matter(self, metric: str, d: int) -> None:
        """A row's neighbours are the same whatever the chunk size and whatever rows it is
        searched with (BLAS's bits vary with the product's shape: exact copies of a training row
        are screened at different distances; they are re-measured)."""
        train, test = continuous(d, 300, 50, d, copies=True)
        whole = top_k(train, test, SHARE_K, metric)
        for rows in (1, 2, 3, 7, 64):
            np.testing.assert_array_equal(
                top_k(train, test, SHARE_K, metric, chunk_rows=rows), whole
            )
        for a, b in ((0, 1), (3, 4), (5, 12), (17, 50)):
            np.testing.assert_array_equal(top_k(train, test[a:b], SHARE_K, metric), whole[a:b])
        np.testing.assert_array_equal(top_k(train, test, 5, metric), whole[:, :5])

    @pytest.mark.parametrize("metric", METRICS)
    @pytest.mark.parametrize("d", [5, 64, 384])
    def test_same_sets_as_sklearn(self, metric: str, d: int) -> None:
        """The neighbour sets of scikit-learn's brute-force search, on continuous data (rows
        whose k-th and (k+1)-th distances are within 1e-9 are skipped: none in practice)."""
        from sklearn.neighbors import NearestNeighbors

        train, test = continuous(d + 1, 500, 80, d)
        dist = np.sort(brute_distances(train, test, metric), axis=1)
        for k in (1, 5, 10, 40):
            ref = NearestNeighbors(metric=metric, algorithm="brute").fit(train)
            want = ref.kneighbors(test, n_neighbors=k, return_distance=False)
            got = top_k(train, test, k, metric)
            clear = dist[:, k] - dist[:, k - 1] > 1e-9
            assert clear.mean() > 0.95
            same = [set(g) == set(w) for g, w, c in zip(got, want, clear, strict=True) if c]
            assert all(same), (metric, d, k)

    def test_rows_are_normalised_as_sklearn(self) -> None:
        """Cosine reads ``sklearn.preprocessing.normalize``'s rows bit for bit: tiny and zero
        rows are left as they are, so a zero row is at distance 1 from every row."""
        from sklearn.preprocessing import normalize

        scaled = continuous(7, 20, 1, 6)[0] * 10.0 ** np.arange(-8, 12)[:, None]
        x = np.vstack([scaled, np.zeros((1, 6)), np.full((1, 6), 1e-17)])
        np.testing.assert_array_equal(neighbours._rows(x, "cosine")[0], normalize(x))
        np.testing.assert_array_equal(top_k(x, np.zeros((1, 6)), 4, "cosine"), [[0, 1, 2, 3]])

    def test_parallel_rows(self) -> None:
        """Multiples of one row: their cosine similarity rounds to either side of 1, and the
        distance is clipped at 0 (a tie, to the lower index) as scikit-learn clips it."""
        base = np.array([[-3.0, -3.0, 0.0], [-2.0, -2.0, -2.0], [1.0, 2.0, 3.0]])
        train = np.vstack([c * base for c in range(1, 8)])
        test = np.vstack([c * base for c in (1, 3, 5)])
        np.testing.assert_array_equal(
            top_k(train, test, 10, "cosine"), brute_top_k(train, test, 10, "cosine")
        )

    def test_near_copies(self) -> None:
        """Rows a few ulps from the test rows: their squared distances round to either side of
        0, and are clipped at 0 (a tie, to the lower index)."""
        test = continuous(8, 1, 4, 6)[1]
        train = np.vstack([test * (1 + e * 2.0**-52) for e in (3, -1, 0, 2, -2, 1)])
        np.testing.assert_array_equal(
            top_k(train, test, 12, "euclidean"), brute_top_k(train, test, 12, "euclidean")
        )

    @pytest.mark.parametrize(
        ("k", "metric", "dims", "match"),
        [
            (0, "cosine", 2, r"k must be an integer in \[1, 3\], got 0"),
            (4, "cosine", 2, r"k must be an integer in \[1, 3\], got 4"),
            (1, "cosinus", 2, r"metric must be one of \['cosine', 'euclidean'\], got 'cosinus'"),
            (1, "euclidean", 3, "3 test features, 2 training features"),
        ],
    )
    def test_refuses(self, k: int, metric: str, dims: int, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            top_k(np.ones((3, 2)), np.ones((1, dims)), k, metric)

    def test_no_test_rows(self) -> None:
        assert top_k(np.ones((3, 2)), np.ones((0, 2)), 2, "cosine").shape == (0, 2)


class TestShared:
    def test_one_search_for_every_k(self) -> None:
        """k = 5, 10 and 40 on the same content search once; a larger k, other test rows or
        another metric search again; equal content in another array is a hit."""
        SHARED.clear()
        train, test = continuous(3, 200, 30, 16)
        index = Index.of(train, "cosine")
        first = index.top_k(test, 5)
        assert (SHARED.searches, SHARED.hits) == (1, 0)
        for k in (10, SHARE_K, 5):
            got = index.top_k(test.copy(), k)
            np.testing.assert_array_equal(got, top_k(train, test, k, "cosine"))
        np.testing.assert_array_equal(first, got)
        assert (SHARED.searches, SHARED.hits) == (1, 3)
        index.top_k(test, SHARE_K + 1)
        index.top_k(test[:10], 5)
        Index.of(train, "euclidean").top_k(test, 5)
        assert (SHARED.searches, SHARED.hits) == (4, 3)
        assert not got.flags.writeable
        with pytest.raises(ValueError, match=r"k must be an integer in \[1, 200\]"):
            index.top_k(test, 201)

    def test_fewer_training_rows_than_share_k(self) -> None:
        SHARED.clear()
        train, test = continuous(4, 12, 5, 3)
        index = Index.of(train, "euclidean")
        np.testing.assert_array_equal(index.top_k(test, 12), top_k(train, test, 12, "euclidean"))
        np.testing.assert_array_equal(index.top_k(test, 3), top_k(train, test, 3, "euclidean"))
        assert (SHARED.searches, SHARED.hits) == (1, 1)

    def test_bounded(self) -> None:
        """At most MEMO_SIZE searches are kept."""
        SHARED.clear()
        train, test = continuous(5, 50, 40, 4)
        index = Index.of(train, "cosine")
        for i in range(neighbours.MEMO_SIZE + 5):
            index.top_k(test[i : i + 1], 1)
        assert len(SHARED.memo) == neighbours.MEMO_SIZE

    def test_index_pickles(self) -> None:
        """An index travels to workers as its training rows and key; it finds the same rows."""
        train, test = continuous(6, 30, 4, 5)
        index = Index.of(train, "cosine")
        back = pickle.loads(pickle.dumps(index))
        assert back.key == index.key
        np.testing.assert_array_equal(back.top_k(test, 7), index.top_k(test, 7))


class TestKNNRouter:
    def test_k_shares_one_search(self) -> None:
        """Fitted KNN routers that differ only in k score one data set with one search."""
        SHARED.clear()
        train, test = make_data(n=60, seed=1), make_data(n=20, seed=2)
        for k in (5, 10, 40):
            KNNRouter(k=k).fit(train).score(test)
        assert (SHARED.searches, SHARED.hits) == (1, 2)

    def test_work_group(self) -> None:
        """KNN cells that differ in k or metric, and MLP or linear cells with the same features
        (feature_dim, seed), are one work group; other features are another."""
        from routerbench.routers.predictive import LinearRouter, MLPRouter

        group = KNNRouter(k=5).work_group()
        assert group == KNNRouter(k=40, metric="euclidean").work_group()
        assert group == MLPRouter(seed=0).work_group() == LinearRouter(seed=0).work_group()
        assert KNNRouter(k=5, seed=1).work_group() != group
        assert KNNRouter(k=5, feature_dim=8).work_group() != group
