"""Tests for routerbench.engine.synth, the embedded synthetic RouterBench-shaped data set."""

from __future__ import annotations

import ast
import dataclasses
import doctest
import re
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.engine import synth, synth_tables
from routerbench.engine.data import PAPER_FAMILIES, family_of

# RouterBench 0-shot table (ROUTERBENCH.md section 1): model -> (in, out, mean quality, mean cost).
TABLE = {
    "gpt-3.5-turbo-1106": (1, 2, 0.6193, 0.000243),
    "claude-instant-v1": (0.8, 2.4, 0.5984, 0.000233),
    "claude-v1": (8, 24, 0.6301, 0.002145),
    "claude-v2": (8, 24, 0.6358, 0.002419),
    "gpt-4-1106-preview": (10, 30, 0.7814, 0.003293),
    "meta/llama-2-70b-chat": (0.9, 0.9, 0.3287, 0.000203),
    "mistralai/mixtral-8x7b-chat": (0.6, 0.6, 0.5471, 0.000135),
    "zero-one-ai/Yi-34B-Chat": (0.8, 0.8, 0.6475, 0.000186),
    "WizardLM/WizardLM-13B-V1.2": (0.3, 0.3, 0.4311, 0.000073),
    "meta/code-llama-instruct-34b-chat": (0.776, 0.776, 0.2022, 0.000172),
    "mistralai/mistral-7b-chat": (0.2, 0.2, 0.3061, 0.000046),
}
RESPONSE_ORDER = tuple(TABLE)  # the table above is written in response order
BINARY = {0.0, 1.0}
QUARTERS = {0.0, 0.25, 0.5, 0.75, 1.0}
TENTHS = {k / 10 for k in range(11)}


@pytest.fixture(scope="module")
def default():
    return synth.generate()


@pytest.fixture(scope="module")
def by_seed():
    return {s: synth.generate(seed=s, with_text=False, features_dim=0) for s in (0, 1, 2)}


def hamilton(total: int, weights: list[int]) -> list[int]:
    """Brute-force largest remainder with exact fractions; ties go to the earlier item."""
    quotas = [Fraction(total * w, sum(weights)) for w in weights]
    counts = [int(q) for q in quotas]
    by_rem = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in by_rem[: total - sum(counts)]:
        counts[i] += 1
    return counts


def oracle_labels(q: np.ndarray, c: np.ndarray, models: tuple[str, ...]) -> list[str]:
    """Row-by-row oracle: best score, then cheapest, then first; none when every score is 0."""
    out = []
    for qi, ci in zip(q, c, strict=True):
        if qi.max() == 0:
            out.append("no_model_correct")
            continue
        best = [j for j in range(len(qi)) if qi[j] == qi.max()]
        out.append(models[min(best, key=lambda j: (ci[j], j))])
    return out


def knn_routed_quality(x: np.ndarray, q: np.ndarray) -> tuple[float, float, float]:
    """(routed, best single, random) mean test quality of a KNN (k=10) router on a 70/30 split."""
    from sklearn.neighbors import KNeighborsRegressor

    x = x / np.linalg.norm(x, axis=1, keepdims=True)  # euclidean on unit rows == cosine ranking
    perm = np.random.default_rng(0).permutation(len(q))
    tr, te = perm[: int(0.7 * len(q))], perm[int(0.7 * len(q)) :]
    pred = KNeighborsRegressor(n_neighbors=10, algorithm="brute").fit(x[tr], q[tr]).predict(x[te])
    routed = q[te, pred.argmax(axis=1)].mean()
    return float(routed), float(q[te].mean(axis=0).max()), float(q[te].mean())


class TestConstants:
    def test_models_in_response_order(self):
        """MODELS lists the 11 models in RouterBench's response order."""
        assert synth_tables.MODELS == RESPONSE_ORDER

    def test_prices_match_table(self):
        """PRICES holds the table's (input, output) USD per 1M tokens for every model."""
        assert synth_tables.PRICES == {m: (row[0], row[1]) for m, row in TABLE.items()}

    def test_eval_counts_reproduce_0shot_file(self):
        """EVAL_COUNTS has 86 names, 36,497 rows and the documented per-task counts."""
        c = synth_tables.EVAL_COUNTS
        assert len(c) == 86 and sum(c.values()) == 36497
        documented = {
            "hellaswag": 10042, "grade-school-math": 7450, "arc-challenge": 1470,
            "winogrande": 1267, "mbpp": 427, "mtbench": 41, "mtbench-math": 20,
            "mtbench-reference": 19, "consensus_summary": 362, "chinese_zodiac": 394,
            "bias_detection": 285, "abstract2title": 254, "test-match": 3,
        }  # fmt: skip
        assert {k: c[k] for k in documented} == documented

    def test_mmlu_subjects(self):
        """57 mmlu-<subject> names total 14,042; professional-law 1,534 is largest, 100 smallest."""
        mmlu = {k: v for k, v in synth_tables.EVAL_COUNTS.items() if k.startswith("mmlu-")}
        assert len(mmlu) == 57 and sum(mmlu.values()) == 14042
        assert max(mmlu.values()) == mmlu["mmlu-professional-law"] == 1534
        assert min(mmlu.values()) == 100
        assert all("_" not in k for k in mmlu)


class TestEvalCounts:
    def test_default_is_the_file(self):
        """At the default n the counts are exactly the 0-shot file's."""
        assert synth.eval_counts() == synth_tables.EVAL_COUNTS

    @settings(max_examples=60, deadline=None)
    @given(st.integers(1, 2_000_000))
    def test_sum_is_exact(self, n):
        """Counts are non-negative, cover every eval name and sum to n."""
        c = synth.eval_counts(n)
        assert list(c) == list(synth_tables.EVAL_COUNTS)
        assert sum(c.values()) == n and min(c.values()) >= 0

    @settings(max_examples=30, deadline=None)
    @given(st.integers(2400, 500_000))
    def test_matches_brute_force_hamilton(self, n):
        """Without binding floors, family and eval counts equal an exact-fraction Hamilton split."""
        fams = list(dict.fromkeys(family_of(e) for e in synth_tables.EVAL_COUNTS))
        members = {f: [e for e in synth_tables.EVAL_COUNTS if family_of(e) == f] for f in fams}
        per_fam = hamilton(n, [sum(synth_tables.EVAL_COUNTS[e] for e in members[f]) for f in fams])
        got = synth.eval_counts(n)
        for f, total in zip(fams, per_fam, strict=True):
            expect = hamilton(total, [synth_tables.EVAL_COUNTS[e] for e in members[f]])
            assert [got[e] for e in members[f]] == expect

    @settings(max_examples=30, deadline=None)
    @given(st.integers(200, 3000))
    def test_paper_families_keep_rows(self, n):
        """From n = 200 on every paper family keeps at least 5 rows."""
        fam: Counter[str] = Counter()
        for e, k in synth.eval_counts(n).items():
            fam[family_of(e)] += k
        assert all(fam[f] >= 5 for f in PAPER_FAMILIES)

    def test_rejects_bad_n(self):
        """n < 1 is a ValueError."""
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            synth.eval_counts(0)


class TestModelPrices:
    def test_real_models(self):
        """The first 11 are RouterBench's models and prices."""
        assert synth.model_prices() == synth_tables.PRICES
        assert list(synth.model_prices(3)) == list(RESPONSE_ORDER[:3])

    def test_synthetic_models(self):
        """Beyond 11, synthetic/model-<k> with positive prices, the same on every call."""
        p = synth.model_prices(20)
        extra = list(p)[11:]
        assert extra == [f"synthetic/model-{k}" for k in range(1, 10)]
        assert all(0 < p[m][0] <= p[m][1] < 100 for m in extra)
        assert synth.model_prices(20) == p


class TestGenerate:
    def test_deterministic(self):
        """The same arguments give identical arrays; another seed gives different ones."""
        a, b = synth.generate(3000, 5), synth.generate(3000, 5)
        for name in ("quality", "cost", "features", "prompts", "prompt_ids", "eval_names"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert a.fingerprint() == b.fingerprint()
        c = synth.generate(3000, 6)
        assert not np.array_equal(a.quality, c.quality)
        assert not np.array_equal(a.cost, c.cost)

    def test_text_and_features_do_not_change_outcomes(self):
        """with_text and features_dim change neither scores nor costs."""
        a = synth.generate(2000, 3)
        b = synth.generate(2000, 3, with_text=False, features_dim=0)
        np.testing.assert_array_equal(a.quality, b.quality)
        np.testing.assert_array_equal(a.cost, b.cost)
        assert b.prompts is None and b.features is None

    def test_labels(self, default):
        """The data is labelled synthetic with its arguments in the source."""
        assert default.synthetic and default.source == "synthetic(n=36497, seed=0)"
        assert default.models == RESPONSE_ORDER
        assert default.quality.shape == default.cost.shape == (36497, 11)

    def test_row_counts_at_default_n(self, default):
        """Each eval name has exactly its 0-shot row count."""
        assert dict(Counter(default.eval_names.tolist())) == synth_tables.EVAL_COUNTS

    def test_rows_in_eval_blocks(self, default):
        """Rows come in one contiguous block per eval name, blocks sorted by name."""
        names = default.eval_names
        starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]])
        blocks = names[starts].tolist()
        assert len(blocks) == 86 and blocks == sorted(blocks)

    def test_sample_ids(self, default):
        """Ids are unique '<eval_name>.<split>.<i>', i counting from 0 within each eval."""
        seen: Counter[str] = Counter()
        for pid, e in zip(default.prompt_ids, default.eval_names, strict=True):
            m = re.fullmatch(r"(.+)\.(val|dev|test)\.(\d+)", pid)
            assert m and m[1] == e
            assert int(m[3]) == seen[e]
            seen[e] += 1
        assert len(set(default.prompt_ids)) == 36497

    def test_value_sets(self, default):
        """Binary multiple choice, quarters for math and graded tasks, tenths for MT-Bench."""
        for e in synth_tables.EVAL_COUNTS:
            q = set(np.unique(default.quality[default.eval_names == e]).tolist())
            fam = family_of(e)
            if fam == "mtbench":
                allowed = TENTHS
            elif (fam in PAPER_FAMILIES and fam != "grade-school-math") or e == "test-match":
                allowed = BINARY
            else:
                allowed = QUARTERS
            assert q <= allowed, e
        gsm = set(default.quality[default.families == "grade-school-math"].ravel().tolist())
        assert gsm == QUARTERS

    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_mean_quality_per_model(self, by_seed, seed):
        """Each model's mean quality is within 0.02 of the table, for several seeds."""
        d = by_seed[seed]
        got = d.quality.mean(axis=0)
        want = np.array([TABLE[m][2] for m in d.models])
        assert np.abs(got - want).max() < 0.02

    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_mean_cost_per_model(self, by_seed, seed):
        """Each model's mean cost per query is within 10% of the table, for several seeds."""
        d = by_seed[seed]
        want = np.array([TABLE[m][3] for m in d.models])
        assert np.abs(d.cost.mean(axis=0) / want - 1).max() < 0.10

    def test_costs_follow_prices(self, default):
        """Costs are positive and finite; gpt-4 costs more than mistral-7b on ~every prompt."""
        c = default.cost
        assert np.isfinite(c).all() and (c > 0).all()
        gpt4 = default.model_index("gpt-4-1106-preview")
        mistral = default.model_index("mistralai/mistral-7b-chat")
        assert (c[:, gpt4] > c[:, mistral]).mean() > 0.99

    def test_oracle_pattern(self, default):
        """Cheap models are the oracle choice most often; a few percent of prompts defeat all."""
        labels = Counter(oracle_labels(default.quality, default.cost, default.models))
        n = default.n_prompts
        assert 0.005 * n < labels["no_model_correct"] < 0.10 * n
        assert labels.most_common(1)[0][0] == "mistralai/mistral-7b-chat"
        cheap = ("mistralai/mistral-7b-chat", "WizardLM/WizardLM-13B-V1.2")
        assert sum(labels[m] for m in cheap) > 0.4 * n

    def test_other_n(self):
        """Other n: the row count is exact, counts follow eval_counts, paper families present."""
        for n in (200, 1000, 5000):
            d = synth.generate(n, 1, with_text=False, features_dim=4)
            assert d.n_prompts == n
            want = {e: k for e, k in synth.eval_counts(n).items() if k}
            assert dict(Counter(d.eval_names.tolist())) == want
            assert set(PAPER_FAMILIES) <= set(d.families.tolist())

    @settings(max_examples=15, deadline=None)
    @given(st.integers(1, 400), st.integers(0, 2**32))
    def test_small_n(self, n, seed):
        """Any small n gives valid data: n rows, unique ids, quality in [0, 1], positive costs."""
        d = synth.generate(n, seed, with_text=False, features_dim=0)
        assert d.n_prompts == n and len(set(d.prompt_ids)) == n
        assert ((d.quality >= 0) & (d.quality <= 1)).all() and (d.cost > 0).all()

    def test_twenty_models(self):
        """n_models=20 adds synthetic/model-1..9; the real models still match the table."""
        d = synth.generate(n_models=20, with_text=False, features_dim=0)
        assert d.models == tuple(synth.model_prices(20)) and d.models[:11] == RESPONSE_ORDER
        want = np.array([TABLE[m][2] for m in RESPONSE_ORDER])
        assert np.abs(d.quality[:, :11].mean(axis=0) - want).max() < 0.02
        extra = d.quality[:, 11:].mean(axis=0)
        assert ((extra > 0.1) & (extra < 0.9)).all()

    def test_five_models(self):
        """n_models=5 keeps the first five models in response order, calibrated."""
        d = synth.generate(n_models=5, with_text=False, features_dim=0)
        assert d.models == RESPONSE_ORDER[:5]
        want = np.array([TABLE[m][2] for m in RESPONSE_ORDER[:5]])
        assert np.abs(d.quality.mean(axis=0) - want).max() < 0.02

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"n": 0}, "n"),
            ({"n": -3}, "n"),
            ({"n": 2.5}, "n"),
            ({"n": True}, "n"),
            ({"n_models": 0}, "n_models"),
            ({"seed": -1}, "seed"),
            ({"features_dim": -1}, "features_dim"),
        ],
    )
    def test_bad_arguments(self, kwargs, name):
        """Bad arguments raise a one-line ValueError naming the argument."""
        with pytest.raises(ValueError) as info:
            synth.generate(**kwargs)
        msg = str(info.value)
        assert "\n" not in msg and msg.startswith(f"generate: {name} must be")

    def test_features(self, default):
        """Features are unit rows of the asked width; features_dim=0 gives None."""
        f = default.features
        assert f is not None and f.shape == (36497, 32) and f.dtype == np.float64
        np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-12)
        assert synth.generate(300, features_dim=8).features.shape == (300, 8)

    def test_prompt_text(self, default):
        """Prompts are the repr of a one-string list naming the task."""
        assert default.prompts is not None
        for i in range(0, 36497, 997):
            turns = ast.literal_eval(default.prompts[i])
            assert isinstance(turns, list) and len(turns) == 1 and isinstance(turns[0], str)
            words = re.split("[-_]", default.eval_names[i])
            assert f"Task: {' '.join(words)}." in turns[0]

    def test_features_are_learnable(self, default):
        """KNN (k=10) on the features routes clearly above the best single model."""
        routed, best, rand = knn_routed_quality(default.features, default.quality)
        assert routed > best + 0.01 and routed > rand + 0.2

    def test_text_is_learnable(self, default):
        """KNN on TF-IDF + SVD of the prompt text routes above the best single model."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        tfidf = TfidfVectorizer().fit_transform(default.prompts)
        x = TruncatedSVD(32, random_state=0).fit_transform(tfidf)
        routed, best, rand = knn_routed_quality(x, default.quality)
        assert routed > best and routed > rand + 0.2


class TestSavedFiles:
    @pytest.mark.parametrize(
        ("fmt", "name"),
        [("parquet", "d.parquet"), ("upstream-wide", "d.pkl"), ("long", "d.csv"), ("long", "d.pq")],
    )
    def test_label_survives_every_synth_format(self, tmp_path, fmt, name):
        """Each layout `data synth` writes loads back synthetic, with the fingerprint of the
        same file written unlabelled."""
        from routerbench.engine import io

        data = synth.generate(60, 2)
        io.save(data, str(tmp_path / name), format=fmt)
        io.save(
            dataclasses.replace(data, synthetic=False), str(tmp_path / f"real-{name}"), format=fmt
        )
        out, real = io.load(str(tmp_path / name)), io.load(str(tmp_path / f"real-{name}"))
        assert out.synthetic and not real.synthetic
        assert out.fingerprint() == real.fingerprint()
        np.testing.assert_array_equal(out.quality, data.quality)


class TestDocstrings:
    def test_examples_run(self) -> None:
        """The docstring examples of engine/synth.py run and give what they show."""
        result = doctest.testmod(synth)
        assert result.attempted >= 7 and result.failed == 0
