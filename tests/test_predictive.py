"""Predictive routers (KNN, MLP, linear): validation, predictions, decisions, contract."""

from __future__ import annotations

import dataclasses
import pickle
import warnings
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from routerbench.engine import paths
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError, RouterError
from routerbench.engine.evaluate import realised
from routerbench.engine.paths import UPSTREAM_LAMBDAS, lambda_grid_bruteforce
from routerbench.engine.synth_tables import PRICES
from routerbench.routers.base import Fitted, create, params_json
from routerbench.routers.predictive import KNNRouter, LinearRouter, MLPRouter
from routerbench.routers.predictors import decide_lambda, upstream_price
from routerbench.routers.reference import RandomRouter

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi".split()


def make_data(
    n: int = 40,
    m: int = 3,
    d: int = 4,
    seed: int = 0,
    nan_frac: float = 0.0,
    features: bool = True,
    prompts: bool = False,
    models: list[str] | None = None,
) -> RoutingData:
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 5, (n, m)) / 4
    c = rng.uniform(1e-5, 1e-3, (n, m))
    if nan_frac:
        gone = rng.random((n, m)) < nan_frac
        gone[0] = False  # every model keeps a known quality
        q[gone] = np.nan
        c[gone & (rng.random((n, m)) < 0.5)] = np.nan
    text = None
    if prompts:
        text = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 20)))) for _ in range(n)]
    return RoutingData(
        quality=q,
        cost=c,
        models=models or [f"m{j}" for j in range(m)],
        prompt_ids=[f"p{seed}-{i}" for i in range(n)],
        eval_names=["mmlu-x"] * n,
        prompts=text,
        features=rng.standard_normal((n, d)) if features else None,
    )


def sklearn_fit(est: Any, x: np.ndarray, y: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(x, y)


# ------------------------------------------------------------------------------ constants


class TestUpstreamLambdas:
    def test_grid(self) -> None:
        """32 increasing values from 1e-10 to 1e9, with the paper's listed interior values."""
        assert len(UPSTREAM_LAMBDAS) == 32
        assert (np.diff(UPSTREAM_LAMBDAS) > 0).all()
        assert UPSTREAM_LAMBDAS[0] == 1e-10 and UPSTREAM_LAMBDAS[-1] == 1e9
        for v in [*(10.0**e for e in range(-10, -2)), 5e-3, 1.5, 7500, 2.5e4, 7.5e4, 1e6]:
            assert np.isclose(UPSTREAM_LAMBDAS, v, rtol=1e-12, atol=0).sum() == 1

    def test_default_knobs(self) -> None:
        """A fitted router sweeps the upstream grid by default and names its knob lambda."""
        f = KNNRouter(k=2).fit(make_data())
        assert f.knob_name == "lambda"
        np.testing.assert_array_equal(f.default_knobs(), UPSTREAM_LAMBDAS)


class TestUpstreamPrice:
    # USD per 1M tokens (in, out), from the RouterBench table; upstream's per-token term is
    # (in + out) / 1e6, then 10x too small.
    TABLE: ClassVar[dict[str, tuple[float, float]]] = {
        "gpt-4-1106-preview": (10, 30),
        "claude-instant-v1": (0.8, 2.4),
        "meta/code-llama-instruct-34b-chat": (0.776, 0.776),
        "mistralai/mistral-7b-chat": (0.2, 0.2),
    }

    def test_constants(self) -> None:
        """The term is (input + output) per-token price / 10: gpt-4 gives 4e-6."""
        names = list(self.TABLE)
        expected = [(a + b) / 1e6 / 10 for a, b in self.TABLE.values()]
        np.testing.assert_allclose(upstream_price(names), expected, rtol=1e-12)
        assert upstream_price(["gpt-4-1106-preview"])[0] == pytest.approx(4e-6, rel=1e-12)

    def test_unknown_model(self) -> None:
        """A model without a known price is named."""
        with pytest.raises(RouterError, match="no known price for model 'm0'"):
            upstream_price(["m0"])

    def test_scores_use_the_constant(self) -> None:
        """With cost_model='upstream' every row of C is the per-model constant."""
        names = list(self.TABLE)
        d = make_data(m=4, models=names)
        s = KNNRouter(k=3, cost_model="upstream").fit(d).score(d)
        np.testing.assert_array_equal(s.C, np.tile(upstream_price(names), (d.n_prompts, 1)))

    def test_unknown_model_at_fit(self) -> None:
        """cost_model='upstream' on models without a price fails at fit, naming the model."""
        with pytest.raises(RouterError, match="'m0'"):
            LinearRouter(cost_model="upstream").fit(make_data())


# ------------------------------------------------------------------------------ decide


def brute_decide(P: np.ndarray, C: np.ndarray, lams: np.ndarray) -> np.ndarray:
    out = np.zeros((len(lams), P.shape[0]), dtype=np.int64)
    for k, lam in enumerate(lams.tolist()):
        for i in range(P.shape[0]):
            js = range(P.shape[1])
            if lam == np.inf:  # highest P, then lowest C
                keys = [(P[i, j], -C[i, j]) for j in js]
            elif lam > 0:
                keys = [(lam * P[i, j] - C[i, j], 0.0) for j in js]
            else:  # cost ignored
                keys = [(P[i, j], 0.0) for j in js]
            out[k, i] = keys.index(max(keys))  # the first maximum
    return out


LAMS = st.lists(
    st.sampled_from([-1.0, 0.0, 1e-12, 1e-4, 0.5, 1.0, 3.0, 1e3, 1e9, np.inf]),
    min_size=1,
    max_size=6,
)


class TestDecideLambda:
    @settings(max_examples=60, deadline=None)
    @given(st.integers(1, 12), st.integers(1, 5), LAMS, st.integers(0, 2**31))
    def test_matches_brute_force(self, n: int, m: int, lams: list[float], seed: int) -> None:
        """Equals a literal loop (first maximum wins), including ties and λ <= 0."""
        rng = np.random.default_rng(seed)
        P = rng.integers(0, 3, (n, m)) / 2  # coarse values: many ties
        C = rng.integers(0, 3, (n, m)) / 2
        lam = np.array(lams)
        np.testing.assert_array_equal(decide_lambda(P, C, lam), brute_decide(P, C, lam))

    @settings(max_examples=30, deadline=None)
    @given(st.integers(1, 30), st.integers(1, 6), st.integers(0, 2**31))
    def test_agrees_with_the_engine_path_oracle(self, n: int, m: int, seed: int) -> None:
        """At every λ (0, negatives and ±inf too) the outcome sums equal engine.paths'
        brute-force grid oracle."""
        rng = np.random.default_rng(seed)
        P, C = rng.integers(0, 5, (n, m)) / 4, rng.uniform(1e-6, 1e-3, (n, m))
        q, c = rng.random((n, m)), rng.random((n, m))
        group = rng.integers(0, 2, n)
        lams = np.append(UPSTREAM_LAMBDAS, [np.inf, 0.0, -1.0, -np.inf])
        ch = decide_lambda(P, C, lams)
        cs, qs, _ = lambda_grid_bruteforce(P, C, q, c, group, 2, lams)
        for g in range(2):
            sel = group == g
            np.testing.assert_allclose(realised(c[sel], ch[:, sel]).sum(1), cs[g], rtol=1e-12)
            np.testing.assert_allclose(realised(q[sel], ch[:, sel]).sum(1), qs[g], rtol=1e-12)

    def test_chunked_equals_whole(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A tiny memory budget (one λ per chunk) gives the same decisions."""
        rng = np.random.default_rng(1)
        P, C = rng.random((30, 4)), rng.random((30, 4)) * 1e-3
        whole = decide_lambda(P, C, UPSTREAM_LAMBDAS)
        monkeypatch.setattr(paths, "_CHOICE_BUDGET", 1)
        np.testing.assert_array_equal(decide_lambda(P, C, UPSTREAM_LAMBDAS), whole)

    def test_tiny_lambda_picks_cheapest(self) -> None:
        """As λ -> 0+ the cheapest cost term wins."""
        rng = np.random.default_rng(2)
        P, C = rng.random((50, 5)), rng.uniform(1e-6, 1e-3, (50, 5))
        np.testing.assert_array_equal(decide_lambda(P, C, np.array([1e-12]))[0], C.argmin(1))

    def test_zero_lambda_ignores_cost(self) -> None:
        """λ = 0 (and λ < 0) ignores cost: the best predicted quality, as upstream."""
        rng = np.random.default_rng(3)
        P, C = rng.random((50, 5)), rng.random((50, 5))
        out = decide_lambda(P, C, np.array([0.0, -5.0]))
        assert (out == P.argmax(1)).all()

    def test_huge_lambda_picks_best_quality(self) -> None:
        """At a huge λ the highest predicted quality wins."""
        rng = np.random.default_rng(4)
        P, C = rng.random((50, 5)), rng.uniform(1e-6, 1e-3, (50, 5))
        np.testing.assert_array_equal(decide_lambda(P, C, np.array([1e9]))[0], P.argmax(1))

    def test_nan_lambda(self) -> None:
        """A NaN λ is refused."""
        with pytest.raises(RouterError, match="knob 'lambda' must be a number, not NaN"):
            decide_lambda(np.ones((1, 2)), np.ones((1, 2)), np.array([np.nan]))


# ------------------------------------------------------------------------------ validation


class TestValidation:
    @pytest.mark.parametrize(
        ("name", "params", "message"),
        [
            ("knn", {"k": 0}, r"router 'knn': k must be an integer >= 1 \(got 0\)"),
            ("knn", {"metric": "cosinus"}, r"metric must be 'cosine' or 'euclidean'"),
            ("knn", {"cost_model": "exp"}, r"cost_model must be 'expected' or 'upstream'"),
            ("knn", {"feature_dim": 0}, r"feature_dim must be an integer >= 1 \(got 0\)"),
            ("knn", {"seed": -1}, r"seed must be an integer in \[0, 2\*\*32\)"),
            ("mlp", {"hidden": ()}, r"router 'mlp': hidden must be a non-empty list"),
            ("mlp", {"hidden": (10, 0)}, r"hidden must be a non-empty list of integers >= 1"),
            ("mlp", {"hidden": 100}, r"hidden must be .* \(got 100\)"),
            ("mlp", {"alpha": -1e-3}, r"alpha must be >= 0 \(got -0.001\)"),
            ("mlp", {"learning_rate": 0.0}, r"learning_rate must be > 0 \(got 0.0\)"),
            ("mlp", {"max_iter": 0}, r"max_iter must be an integer >= 1 \(got 0\)"),
            ("mlp", {"cost_model": "upstreem"}, r"router 'mlp': cost_model must be 'expected' or"),
            ("linear", {"C": 0.0}, r"router 'linear': C must be > 0 \(got 0.0\)"),
            ("linear", {"feature_dim": -3}, r"router 'linear': feature_dim must be"),
        ],
    )
    def test_messages(self, name: str, params: dict[str, Any], message: str) -> None:
        """Bad hyperparameters give a one-line RouterError naming the value."""
        with pytest.raises(RouterError, match=message) as info:
            create(name, **params)
        assert "\n" not in str(info.value)

    def test_hidden_list_becomes_tuple(self) -> None:
        """A list of hidden sizes (as parsed from a spec) is stored as a tuple."""
        r = create("mlp", hidden=[8, 4])
        assert r.hidden == (8, 4)  # type: ignore[attr-defined]
        assert '"hidden":[8,4]' in params_json(r)

    def test_k_exceeds_training_rows(self) -> None:
        """k larger than the training set is named with the row count."""
        with pytest.raises(RouterError, match="k=6 exceeds the 5 training rows"):
            KNNRouter(k=6).fit(make_data(n=5))

    def test_model_without_known_quality(self) -> None:
        """A model with no known training quality cannot be predicted."""
        d = make_data()
        q = d.quality.copy()
        q[:, 1] = np.nan
        bad = dataclasses.replace(d, quality=q, cost=np.where(np.isnan(q), np.nan, d.cost))
        with pytest.raises(RouterError, match="model 'm1' has no known training quality"):
            MLPRouter(max_iter=5).fit(bad)

    def test_multi_output_needs_a_complete_row(self) -> None:
        """Multi-output fitting without any complete row points to per_model=True."""
        d = make_data(n=4, m=2)
        q = np.array([[1.0, np.nan], [np.nan, 0.0], [0.5, np.nan], [np.nan, 1.0]])
        bad = dataclasses.replace(d, quality=q, cost=np.where(np.isnan(q), np.nan, d.cost))
        with pytest.raises(RouterError, match="use per_model=True"):
            MLPRouter(max_iter=5).fit(bad)

    def test_other_models_at_score(self) -> None:
        """Scoring data with other models is a DataError."""
        f = KNNRouter(k=2).fit(make_data())
        with pytest.raises(DataError, match="differ from the training models"):
            f.score(make_data(models=["x", "y", "z"]))

    def test_feature_width_at_score(self) -> None:
        """Scoring features of another width is a DataError naming the expected width."""
        f = KNNRouter(k=2).fit(make_data(d=4))
        with pytest.raises(DataError, match=r"expected features\[n, 4\], got 5"):
            f.score(make_data(d=5))

    def test_text_router_needs_prompts(self) -> None:
        """A router fitted on prompt text cannot score data without prompts."""
        f = KNNRouter(k=2, feature_dim=3).fit(make_data(features=False, prompts=True))
        with pytest.raises(DataError, match="fitted on prompt text"):
            f.score(make_data())

    def test_nothing_to_learn_from(self) -> None:
        """Training data with neither features nor prompts is a DataError."""
        with pytest.raises(DataError, match="neither features nor prompts"):
            KNNRouter(k=2).fit(make_data(features=False))


# ------------------------------------------------------------------------------ KNN


def brute_knn(
    xtr: np.ndarray, vals: np.ndarray, xte: np.ndarray, k: int, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour nanmean per test row (training mean where all neighbours are NaN), plus the
    gap between the k-th and (k+1)-th distances (ties make the neighbour set ambiguous)."""
    out = np.zeros((len(xte), vals.shape[1]))
    gaps = np.full(len(xte), np.inf)
    for i, x in enumerate(xte):
        if metric == "cosine":
            dist = 1 - xtr @ x / (np.linalg.norm(xtr, axis=1) * np.linalg.norm(x))
        else:
            dist = np.linalg.norm(xtr - x, axis=1)
        order = np.argsort(dist, kind="stable")
        if k < len(dist):
            gaps[i] = dist[order[k]] - dist[order[k - 1]]
        for j in range(vals.shape[1]):
            v = vals[order[:k], j]
            v = v[~np.isnan(v)]
            out[i, j] = v.mean() if len(v) else np.nanmean(vals[:, j])
    return out, gaps


class TestKNN:
    @settings(max_examples=40, deadline=None)
    @given(
        st.integers(2, 25),
        st.integers(1, 4),
        st.integers(2, 5),
        st.data(),
        st.sampled_from(["cosine", "euclidean"]),
        st.integers(0, 2**31),
    )
    def test_matches_brute_force(
        self, n: int, m: int, d: int, data: st.DataObject, metric: str, seed: int
    ) -> None:
        """P̂ and C are the neighbours' NaN-ignoring mean quality and cost."""
        k = data.draw(st.integers(1, n))
        train = make_data(n=n, m=m, d=d, seed=seed, nan_frac=0.4)
        test = make_data(n=6, m=m, d=d, seed=seed + 1)
        s = KNNRouter(k=k, metric=metric).fit(train).score(test)
        bp, gaps = brute_knn(train.features, train.quality, test.features, k, metric)  # type: ignore[arg-type]
        bc, _ = brute_knn(train.features, train.cost, test.features, k, metric)  # type: ignore[arg-type]
        assume((gaps > 1e-9).all())
        np.testing.assert_allclose(s.P, bp, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(s.C, bc, rtol=1e-12, atol=1e-15)
        assert ((s.P >= 0) & (s.P <= 1)).all()

    def test_tiny_hand_example(self) -> None:
        """Two clusters: a test point gets the mean of its own cluster's rows."""
        feats = np.array([[1, 0.1], [1, -0.2], [1, 0.0], [-1, 0.1], [-1, -0.1]])
        q = np.array([[1, 0], [0.5, 0], [1, 0.25], [0, 1], [0, 1]])
        d = dataclasses.replace(make_data(n=5, m=2, d=2), quality=q, features=feats)
        test = dataclasses.replace(make_data(n=2, m=2, d=2), features=np.array([[2, 0], [-3, 0]]))
        s = KNNRouter(k=2).fit(d).score(test)
        np.testing.assert_allclose(s.P, np.array([[1.0, 0.125], [0.0, 1.0]]))

    def test_all_neighbours_missing_uses_training_mean(self) -> None:
        """Where every neighbour lacks a model's score, its training mean is used."""
        feats = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.1]])
        q = np.array([[np.nan, 0.0], [1.0, 1.0], [0.5, 1.0]])
        d = dataclasses.replace(
            make_data(n=3, m=2, d=2), quality=q, cost=np.ones((3, 2)), features=feats
        )
        s = KNNRouter(k=1).fit(d).score(dataclasses.replace(d.take([0]), prompt_ids=["t"]))
        np.testing.assert_allclose(s.P, [[0.75, 0.0]])


# ------------------------------------------------------------------------------ MLP, linear


class TestMLP:
    def test_per_model_matches_sklearn(self) -> None:
        """per_model=True: one MLPRegressor per model on its known rows, predictions unclipped."""
        from sklearn.neural_network import MLPRegressor

        train, test = make_data(n=60, nan_frac=0.3, seed=5), make_data(n=10, seed=6)
        s = MLPRouter(hidden=(7,), max_iter=30, per_model=True).fit(train).score(test)
        for j in range(train.n_models):
            ok = ~np.isnan(train.quality[:, j])
            est = MLPRegressor(hidden_layer_sizes=(7,), max_iter=30, random_state=1234)
            est = sklearn_fit(est, train.features[ok], train.quality[ok, j])  # type: ignore[index]
            np.testing.assert_allclose(s.P[:, j], est.predict(test.features), rtol=1e-6)

    def test_multi_output_on_complete_rows(self) -> None:
        """per_model=False: one multi-output network on the rows with every score known."""
        from sklearn.neural_network import MLPRegressor

        train, test = make_data(n=60, nan_frac=0.2, seed=7), make_data(n=10, seed=8)
        r = MLPRouter(hidden=(5, 3), alpha=0.01, learning_rate=0.01, max_iter=20, seed=9)
        s = r.fit(train).score(test)
        rows = ~np.isnan(train.quality).any(axis=1)
        est = MLPRegressor(
            hidden_layer_sizes=(5, 3), alpha=0.01, learning_rate_init=0.01, max_iter=20,
            random_state=9,
        )  # fmt: skip
        est = sklearn_fit(est, train.features[rows], train.quality[rows])  # type: ignore[index]
        np.testing.assert_allclose(s.P, est.predict(test.features), rtol=1e-6)


class TestLinear:
    def test_per_model_matches_linear_svr(self) -> None:
        """per_model=True: LinearSVR(C, random_state=1234) per model on its known rows."""
        from sklearn.svm import LinearSVR

        train, test = make_data(n=50, nan_frac=0.3, seed=10), make_data(n=10, seed=11)
        s = LinearRouter(C=0.5).fit(train).score(test)
        for j in range(train.n_models):
            ok = ~np.isnan(train.quality[:, j])
            est = LinearSVR(C=0.5, random_state=1234)
            est = sklearn_fit(est, train.features[ok], train.quality[ok, j])  # type: ignore[index]
            np.testing.assert_allclose(s.P[:, j], est.predict(test.features), rtol=1e-9)

    def test_ridge_on_complete_rows(self) -> None:
        """per_model=False: one Ridge(alpha=1/C) on the complete rows."""
        train, test = make_data(n=50, nan_frac=0.2, seed=12), make_data(n=10, seed=13)
        s = LinearRouter(C=2.0, per_model=False).fit(train).score(test)
        rows = ~np.isnan(train.quality).any(axis=1)
        x, y = train.features[rows], train.quality[rows]  # type: ignore[index]
        xa = np.column_stack([x, np.ones(len(x))])
        reg = np.diag([0.5] * x.shape[1] + [0.0])  # alpha = 1/C, intercept not penalised
        w = np.linalg.solve(xa.T @ xa + reg, xa.T @ y)
        expected = np.column_stack([test.features, np.ones(10)]) @ w  # type: ignore[list-item]
        np.testing.assert_allclose(s.P, expected, rtol=1e-8, atol=1e-10)


class TestExpectedCost:
    def test_length_line(self) -> None:
        """MLP/linear expected cost: per-model least-squares line in prompt length, clipped at 0."""
        train = make_data(n=50, nan_frac=0.2, seed=14, prompts=True)
        test = make_data(n=12, seed=15, prompts=True)
        s = LinearRouter(per_model=False).fit(train).score(test)
        ltr = np.array([len(p) for p in train.prompts])  # type: ignore[union-attr]
        lte = np.array([len(p) for p in test.prompts])  # type: ignore[union-attr]
        for j in range(train.n_models):
            ok = ~np.isnan(train.cost[:, j])
            slope, icpt = np.polyfit(ltr[ok], train.cost[ok, j], 1)
            np.testing.assert_allclose(s.C[:, j], np.maximum(icpt + slope * lte, 0), rtol=1e-9)

    def test_mean_without_prompts(self) -> None:
        """Without prompts the expected cost is the training mean cost per model."""
        train, test = make_data(n=30, nan_frac=0.2, seed=16), make_data(n=5, seed=17)
        s = MLPRouter(hidden=(3,), max_iter=5).fit(train).score(test)
        np.testing.assert_allclose(s.C, np.tile(np.nanmean(train.cost, axis=0), (5, 1)))


# ------------------------------------------------------------------------------ contract

ROUTERS = [
    KNNRouter(k=3),
    KNNRouter(k=5, cost_model="upstream", metric="euclidean"),
    MLPRouter(hidden=(6,), max_iter=20),
    MLPRouter(hidden=(4,), max_iter=10, per_model=True),
    LinearRouter(),
    LinearRouter(per_model=False),
]
PRICED = list(PRICES)[:3]  # three models with known prices


@pytest.fixture(params=["features", "text"])
def split(request: pytest.FixtureRequest) -> tuple[RoutingData, RoutingData]:
    text = request.param == "text"
    kw: dict[str, Any] = {"features": not text, "prompts": text, "models": PRICED}
    return make_data(n=50, nan_frac=0.1, **kw), make_data(n=20, seed=1, **kw)


@pytest.mark.parametrize("router", ROUTERS, ids=repr)
class TestContract:
    def test_decisions_in_range(self, router: Any, split: tuple[RoutingData, RoutingData]) -> None:
        """decide gives an int matrix [k, n] of valid model columns; the fitted router is Fitted."""
        train, test = split
        f = router.fit(train)
        assert isinstance(f, Fitted)
        s = f.score(test)
        assert s.P.shape == s.C.shape == (test.n_prompts, test.n_models)
        assert np.isfinite(s.P).all() and (s.C >= 0).all()
        ch = f.decide(s, f.default_knobs())
        assert ch.shape == (32, test.n_prompts) and ch.dtype == np.int64
        assert ((ch >= 0) & (ch < test.n_models)).all()

    def test_pickle_round_trip(self, router: Any, split: tuple[RoutingData, RoutingData]) -> None:
        """A pickled fitted router (as sent to a Ray worker) decides identically."""
        train, test = split
        f = router.fit(train)
        g = pickle.loads(pickle.dumps(f))
        a, b = f.score(test), g.score(test)
        np.testing.assert_array_equal(a.P, b.P)
        np.testing.assert_array_equal(f.decide(a, UPSTREAM_LAMBDAS), g.decide(b, UPSTREAM_LAMBDAS))

    def test_deterministic(self, router: Any, split: tuple[RoutingData, RoutingData]) -> None:
        """Two fits with the same settings give identical scores."""
        train, test = split
        a, b = router.fit(train).score(test), router.fit(train).score(test)
        np.testing.assert_array_equal(a.P, b.P)
        np.testing.assert_array_equal(a.C, b.C)

    def test_scores_do_not_depend_on_batch(
        self, router: Any, split: tuple[RoutingData, RoutingData]
    ) -> None:
        """A prompt's scores do not depend on the other prompts scored with it."""
        train, test = split
        f = router.fit(train)
        whole, part = f.score(test), f.score(test.take(np.arange(5, 12)))
        np.testing.assert_allclose(part.P, whole.P[5:12], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(part.C, whole.C[5:12], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------ synthetic


@pytest.fixture(scope="module")
def mmlu() -> tuple[RoutingData, RoutingData]:
    from routerbench.engine.synth import generate

    d = generate(2000, seed=3)
    d = d.take(d.families == "mmlu")
    rows = np.random.default_rng(0).permutation(d.n_prompts)
    cut = int(0.7 * d.n_prompts)
    return d.take(np.sort(rows[:cut])), d.take(np.sort(rows[cut:]))


class TestOnSyntheticData:
    @pytest.mark.parametrize("use_text", [False, True])
    def test_knn_beats_random(self, mmlu: tuple[RoutingData, RoutingData], use_text: bool) -> None:
        """KNN beats the random router: better quality at no more cost, and at λ -> ∞."""
        train, test = mmlu
        if use_text:
            train = dataclasses.replace(train, features=None)
            test = dataclasses.replace(test, features=None)
        f = KNNRouter(k=10).fit(train)
        ch = f.decide(f.score(test), UPSTREAM_LAMBDAS)
        q, c = realised(test.quality, ch).mean(axis=1), realised(test.cost, ch).mean(axis=1)
        fr = RandomRouter(seed=0).fit(train)
        rch = fr.decide(fr.score(test), fr.default_knobs())
        rq, rc = realised(test.quality, rch).mean(), realised(test.cost, rch).mean()
        assert q[-1] > np.mean(test.quality) + 0.1  # uniform random choice, in expectation
        assert (q[c <= rc] > rq + 0.05).any()
