"""Cascades with a noisy judge (engine/cascade.py) against the literal upstream loop."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.engine import cascade
from routerbench.engine.cascade import (
    UPSTREAM_BUDGETS,
    cascade_bruteforce,
    cascade_path,
    family_theta,
    judge_accepts,
    judge_uniforms,
    model_key,
    prompt_key,
)


def py_cascade(
    quality: np.ndarray,
    cost: np.ndarray,
    order: np.ndarray,
    accept: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    budgets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The upstream loop per prompt in plain Python, math.fsum per group: ``[g, k]`` sums."""
    cost_sum, quality_sum = np.zeros((n_groups, len(budgets))), np.zeros((n_groups, len(budgets)))
    for k, budget in enumerate(budgets.tolist()):
        spent_all, last_all = [], []
        for i in range(len(quality)):
            left, spent, last = budget, 0.0, 0.0
            for pos, m in enumerate(order.tolist()):
                if pos > 0 and cost[i, m] >= left:
                    break
                spent += cost[i, m]
                left -= cost[i, m]
                last = quality[i, m]
                if accept[i, pos]:
                    break
            spent_all.append(spent)
            last_all.append(last)
        for g in range(n_groups):
            rows = np.flatnonzero(group == g)
            cost_sum[g, k] = math.fsum(spent_all[i] for i in rows)
            quality_sum[g, k] = math.fsum(last_all[i] for i in rows)
    return cost_sum, quality_sum


def probe_budgets(cost: np.ndarray, order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every cumulative cost, one ulp either side, the upstream grid, inf and random budgets."""
    s = np.cumsum(cost[:, order], axis=1).ravel()
    b = np.concatenate([s, np.nextafter(s, 0), np.nextafter(s, np.inf), UPSTREAM_BUDGETS])
    b = np.concatenate([b, [np.inf, 1e-12], rng.random(5) * s.max(initial=1.0) * 1.2])
    return rng.permutation(np.unique(b[b > 0]))


def instance(kind: str, rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, ...]:
    """(quality, cost, order, accept) of one flavour of inputs."""
    quality = rng.integers(0, 5, (n, m)) / 4
    if kind == "ints":
        cost = rng.integers(0, 4, (n, m)) * 1.0
    elif kind == "tenths":  # decimal costs: float sums and differences round
        cost = rng.integers(0, 30, (n, m)) * 0.1
    elif kind == "equal":
        cost = np.full((n, m), 0.3)
    else:
        cost = rng.lognormal(-8, 1, (n, m))
    order = rng.permutation(m)[: rng.integers(1, m + 1)]
    accept = rng.random((n, order.size)) < 0.3
    return quality, cost, order, accept


def assert_same(got: tuple, want: tuple) -> None:
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


class TestPromptKey:
    def test_stable_and_batch_independent(self) -> None:
        """The same id gets the same key, alone or in any batch; distinct ids differ."""
        ids = [f"mmlu-astronomy.val.{i}" for i in range(500)]
        keys = prompt_key(ids)
        assert keys.dtype == np.uint64 and len(set(keys.tolist())) == 500
        assert keys[123] == prompt_key([ids[123]])[0]
        assert np.array_equal(prompt_key(ids[::-1]), keys[::-1])

    def test_domain_separated_from_models(self) -> None:
        """A prompt id and a model name spelled alike get different keys."""
        assert prompt_key(["gpt-4"])[0] != model_key(["gpt-4"])[0]


class TestModelKey:
    def test_stable_and_distinct(self) -> None:
        """Model keys are deterministic and distinct for the 11 upstream-like names."""
        names = [f"model-{i}" for i in range(11)]
        assert np.array_equal(model_key(names), model_key(list(names)))
        assert len(set(model_key(names).tolist())) == 11


class TestJudgeUniforms:
    def test_shuffled_and_sharded_subsets_agree(self) -> None:
        """Values depend only on (seed, prompt, model, eps): order and sharding do not matter."""
        rng = np.random.default_rng(0)
        pk, mk = prompt_key([f"p{i}" for i in range(1000)]), model_key(["a", "b", "c"])
        full = judge_uniforms(3, pk, mk, 0.2)
        perm = rng.permutation(1000)
        assert np.array_equal(judge_uniforms(3, pk[perm], mk, 0.2), full[perm])
        shards = [judge_uniforms(3, pk[s], mk, 0.2) for s in np.array_split(perm, 7)]
        assert np.array_equal(np.concatenate(shards), full[perm])
        assert np.array_equal(judge_uniforms(3, pk, mk[::-1], 0.2), full[:, ::-1])

    def test_depends_on_every_input(self) -> None:
        """Changing the seed, eps, a prompt or a model changes the draws."""
        pk, mk = prompt_key([f"p{i}" for i in range(200)]), model_key(["a", "b"])
        base = judge_uniforms(1, pk, mk, 0.1)
        for other in (
            judge_uniforms(2, pk, mk, 0.1),
            judge_uniforms(1, pk, mk, 0.2),
            judge_uniforms(1, pk + np.uint64(1), mk, 0.1),
            judge_uniforms(1, pk, model_key(["a", "z"]), 0.1),
        ):
            assert (other != base).mean() > 0.4

    def test_uniform(self) -> None:
        """200,000 draws fill ten equal bins evenly (each within 6 sigma of 20,000)."""
        u = judge_uniforms(
            0, np.arange(20000, dtype=np.uint64), np.arange(10, dtype=np.uint64), 0.0
        )
        assert u.min() >= 0.0 and u.max() < 1.0
        counts = np.bincount((u * 10).astype(int).ravel(), minlength=10)
        assert np.abs(counts - 20000).max() < 6 * math.sqrt(20000 * 0.9)

    def test_rejects_bad_arguments(self) -> None:
        """eps outside [0, 1] and seeds outside [0, 2**64) are rejected."""
        k = np.zeros(1, dtype=np.uint64)
        with pytest.raises(ValueError, match="eps"):
            judge_uniforms(0, k, k, 1.5)
        with pytest.raises(ValueError, match="seed"):
            judge_uniforms(-1, k, k, 0.1)


class TestJudgeAccepts:
    def test_eps_zero_and_one(self) -> None:
        """eps = 0 is the true verdict; eps = 1 its negation."""
        rng = np.random.default_rng(1)
        q, u = rng.integers(0, 5, (50, 4)) / 4, rng.random((50, 4))
        assert np.array_equal(judge_accepts(q, 0.75, 0.0, u), q >= 0.75)
        assert np.array_equal(judge_accepts(q, 0.75, 1.0, u), q < 0.75)

    @pytest.mark.parametrize("eps", [0.01, 0.1, 0.4, 0.8])
    def test_flip_rate_is_eps(self, eps: float) -> None:
        """Over 500,000 verdicts the flipped fraction is eps within 6 binomial sigmas."""
        pk = prompt_key([f"p{i}" for i in range(100000)])
        q = np.random.default_rng(2).integers(0, 2, (100000, 5)).astype(float)
        u = judge_uniforms(11, pk, model_key([f"m{j}" for j in range(5)]), eps)
        flips = (judge_accepts(q, 1.0, eps, u) != (q >= 1.0)).mean()
        assert abs(flips - eps) < 6 * math.sqrt(eps * (1 - eps) / q.size)

    def test_shape_mismatch(self) -> None:
        """Uniforms must match the quality matrix."""
        with pytest.raises(ValueError, match="shape"):
            judge_accepts(np.zeros((2, 3)), 1.0, 0.1, np.zeros((2, 2)))


class TestFamilyTheta:
    def test_binary_task_is_one(self) -> None:
        """A binary family with more than 5% correct answers gets theta = 1."""
        q = (np.random.default_rng(3).random((400, 11)) < 0.3).astype(float)
        assert family_theta(q) == 1.0

    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=1, max_size=60))
    def test_top_five_percent(self, scores: list) -> None:
        """theta lies within the scores' range and at least 5% of scores are >= theta."""
        q = np.array(scores)
        theta = family_theta(q)
        assert q.min() <= theta <= q.max()
        assert (q >= theta).mean() >= 0.05 - 1e-12

    def test_rejects_nan(self) -> None:
        """Missing scores must be dropped first."""
        with pytest.raises(ValueError, match="finite"):
            family_theta(np.array([0.5, np.nan]))


class TestCascadeBruteforce:
    @pytest.mark.parametrize("kind", ["ints", "tenths", "equal", "lognormal"])
    def test_matches_python_loop(self, kind: str) -> None:
        """The oracle equals the upstream loop in plain Python, with exact group sums."""
        rng = np.random.default_rng(4)
        q, c, order, acc = instance(kind, rng, 12, 5)
        g = rng.integers(0, 2, 12)
        budgets = probe_budgets(c, order, rng)[:60]
        got = cascade_bruteforce(q, c, order, acc, g, 2, budgets)
        assert_same(got[:2], py_cascade(q, c, order, acc, g, 2, budgets))
        assert got[2].tolist() == np.bincount(g, minlength=2).tolist()


@st.composite
def small_cascades(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Small integer-valued costs (many ties and zero costs) and random verdicts."""
    n, m = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    ints = st.lists(st.integers(0, 3), min_size=n * m, max_size=n * m)
    cost = np.array(draw(ints), float).reshape(n, m)
    quality = np.array(draw(ints), float).reshape(n, m) / 3
    order = np.array(draw(st.permutations(range(m))))[: draw(st.integers(1, m))]
    flags = st.lists(st.booleans(), min_size=n * order.size, max_size=n * order.size)
    accept = np.array(draw(flags), bool).reshape(n, order.size)
    group = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    return quality, cost, order, accept, group


class TestCascadePath:
    @settings(max_examples=80, deadline=None)
    @given(small_cascades(), st.integers(0, 2**32 - 1))
    def test_equals_bruteforce_small(self, inp: tuple, seed: int) -> None:
        """Integer costs, budgets at every cumulative cost and one ulp around: totals ==."""
        q, c, order, acc, g = inp
        budgets = probe_budgets(c, order, np.random.default_rng(seed))
        path = cascade_path(q, c, order, acc, g, 2)
        assert_same(path.at(budgets), cascade_bruteforce(q, c, order, acc, g, 2, budgets))

    @pytest.mark.parametrize("kind", ["ints", "tenths", "equal", "lognormal"])
    def test_equals_bruteforce(self, kind: str) -> None:
        """Every flavour of costs, budgets exactly at cumulative costs and around them: ==."""
        rng = np.random.default_rng(5)
        for _ in range(5):
            q, c, order, acc = instance(kind, rng, 200, 6)
            g = rng.integers(0, 3, 200)
            budgets = probe_budgets(c, order, rng)[:300]
            path = cascade_path(q, c, order, acc, g, 3)
            assert_same(path.at(budgets), cascade_bruteforce(q, c, order, acc, g, 3, budgets))

    def test_calls_k_iff_rejected_and_cumulative_cost_below_budget(self) -> None:
        """With exact (integer) arithmetic, position k is called iff 0..k-1 were rejected and
        S_k < B; per prompt (one group each) the path's cost is S of the last call."""
        rng = np.random.default_rng(6)
        q, c, _, _ = instance("ints", rng, 40, 5)
        order = np.arange(5)
        acc = rng.random((40, 5)) < 0.3
        s = np.cumsum(c, axis=1)
        rejected_before = np.cumprod(np.concatenate([np.ones((40, 1), bool), ~acc[:, :-1]], 1), 1)
        path = cascade_path(q, c, order, acc, np.arange(40), 40)
        for budget in np.unique(np.concatenate([s.ravel(), s.ravel() + 0.5])):
            if budget <= 0:
                continue
            called = rejected_before.astype(bool) & (s < budget)
            called[:, 0] = True
            n_calls = np.argmin(np.concatenate([called, np.zeros((40, 1), bool)], 1), axis=1)
            cost_sum, quality_sum, _ = path.at(np.array([budget]))
            assert np.array_equal(cost_sum[:, 0], s[np.arange(40), n_calls - 1])
            assert np.array_equal(quality_sum[:, 0], q[np.arange(40), n_calls - 1])

    def test_float_boundaries_are_the_loops(self) -> None:
        """With decimal costs the literal float check and S_k < B disagree at some cumulative
        costs; the path follows the loop there."""
        rng = np.random.default_rng(7)
        q, c, _, _ = instance("tenths", rng, 300, 6)
        order, acc = np.arange(6), np.zeros((300, 6), bool)
        s = np.cumsum(c, axis=1)
        disagree = 0
        for budget in np.unique(s[:, 1:]):
            left = budget - c[:, 0]
            by_loop = c[:, 1] < left
            disagree += int((by_loop != (s[:, 1] < budget)).sum())
        assert disagree > 0  # the two rules really differ at the last ulp
        budgets = np.unique(s[s > 0])
        path = cascade_path(q, c, order, acc, np.zeros(300, int), 1)
        assert_same(
            path.at(budgets), cascade_bruteforce(q, c, order, acc, np.zeros(300, int), 1, budgets)
        )

    @pytest.mark.parametrize("case", ["one_model", "all_accept", "none_accept", "zero_costs"])
    def test_edge_cases(self, case: str) -> None:
        """K = 1, every answer accepted, none accepted, all costs zero."""
        rng = np.random.default_rng(8)
        q, c, _, _ = instance("tenths", rng, 30, 4)
        order = np.arange(4)
        acc = rng.random((30, 4)) < 0.3
        if case == "one_model":
            order, acc = order[:1], acc[:, :1]
        elif case == "all_accept":
            acc[:] = True
        elif case == "none_accept":
            acc[:] = False
        else:
            c = np.zeros_like(c)
        g = np.arange(30) % 3
        budgets = probe_budgets(c, order, rng)
        path = cascade_path(q, c, order, acc, g, 3)
        assert_same(path.at(budgets), cascade_bruteforce(q, c, order, acc, g, 3, budgets))

    def test_learned_judge(self) -> None:
        """Any boolean matrix works as the judge, e.g. predicted quality >= theta."""
        rng = np.random.default_rng(9)
        q, c, _, _ = instance("lognormal", rng, 100, 5)
        order = np.argsort(c.mean(0))
        predicted = np.clip(q[:, order] + rng.normal(0, 0.3, (100, 5)), 0, 1)
        acc = predicted >= 0.75
        g = np.zeros(100, int)
        budgets = probe_budgets(c, order, rng)[:100]
        path = cascade_path(q, c, order, acc, g, 1)
        assert_same(path.at(budgets), cascade_bruteforce(q, c, order, acc, g, 1, budgets))

    def test_noisy_judge_end_to_end(self) -> None:
        """The upstream grid (11 budgets x 8 eps) with the hashed judge equals the loop."""
        rng = np.random.default_rng(10)
        q, c, _, _ = instance("lognormal", rng, 150, 6)
        order = np.argsort(c.mean(0))
        pk = prompt_key([f"p{i}" for i in range(150)])
        mk = model_key([f"m{j}" for j in range(6)])[order]
        theta = family_theta(q)
        g = rng.integers(0, 2, 150)
        for eps in cascade.UPSTREAM_EPS:
            acc = judge_accepts(q[:, order], theta, eps, judge_uniforms(0, pk, mk, eps))
            path = cascade_path(q, c, order, acc, g, 2)
            want = cascade_bruteforce(q, c, order, acc, g, 2, UPSTREAM_BUDGETS * 1e-4)
            assert_same(path.at(UPSTREAM_BUDGETS * 1e-4), want)

    def test_inputs_validated(self) -> None:
        """Non-boolean verdicts, bad orders, negative costs and budgets <= 0 are rejected."""
        q = np.ones((3, 2))
        acc = np.zeros((3, 2), bool)
        g = np.zeros(3, int)
        with pytest.raises(ValueError, match="accept must be a boolean"):
            cascade_path(q, q, np.arange(2), acc.astype(float), g, 1)
        with pytest.raises(ValueError, match="order"):
            cascade_path(q, q, np.array([0, 2]), acc, g, 1)
        with pytest.raises(ValueError, match="cost must be >= 0"):
            cascade_path(q, -q, np.arange(2), acc, g, 1)
        with pytest.raises(ValueError, match="budgets"):
            cascade_path(q, q, np.arange(2), acc, g, 1).at(np.array([0.0]))


class TestCascadePathBreakpoints:
    def test_are_the_steps(self) -> None:
        """One point per distinct call budget; totals are those on [b_j, b_j+1)."""
        rng = np.random.default_rng(11)
        q, c, order, acc = instance("lognormal", rng, 60, 5)
        g = rng.integers(0, 2, 60)
        path = cascade_path(q, c, order, acc, g, 2)
        for grp in range(2):
            budgets, cost_sum, quality_sum = path.breakpoints(grp)
            assert budgets[0] == 0 and (np.diff(budgets) > 0).all()
            probe = np.append(np.nextafter(0, 1), budgets[1:])  # B -> 0+, then each step's start
            want = cascade_bruteforce(q, c, order, acc, g, 2, probe)
            assert np.array_equal(cost_sum, want[0][grp])
            assert np.array_equal(quality_sum, want[1][grp])
            before = cascade_bruteforce(q, c, order, acc, g, 2, np.nextafter(budgets[1:], 0))
            assert np.array_equal(cost_sum[:-1], before[0][grp])


class TestDocstrings:
    def test_examples_run(self) -> None:
        """The docstring examples of engine/cascade.py run and give what they show."""
        assert doctest.testmod(cascade).failed == 0
