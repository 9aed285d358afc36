"""Exact λ paths (engine/paths.py) and exact sums (engine/stepsums.py) against literal oracles."""

from __future__ import annotations

import doctest
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.engine import paths, stepsums
from routerbench.engine.paths import UPSTREAM_LAMBDAS, lambda_grid_bruteforce, lambda_path
from routerbench.engine.stepsums import exact_group_sums

# Upstream per-model prices (in + out per token, x 1e-7): the scale at which float scores tie.
PRICES = np.array([3, 3.2, 32, 32, 40, 1.8, 1.2, 1.6, 0.6, 1.552, 0.4]) * 1e-7


def py_choices(P: np.ndarray, C: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """Pure-Python argmax per prompt and lam (first max; lam <= 0: max P; inf: max P, min C)."""
    out = []
    for lam in lams.tolist():
        row = []
        for p, c in zip(P.tolist(), C.tolist(), strict=True):
            if lam <= 0:
                key = list(p)
            elif math.isinf(lam):
                key = [(pm, -cm) for pm, cm in zip(p, c, strict=True)]
            else:
                key = [lam * pm - cm for pm, cm in zip(p, c, strict=True)]
            row.append(key.index(max(key)))
        out.append(row)
    return np.array(out)


def exact_choices(P: np.ndarray, C: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """The rule in exact rational arithmetic (first max; lam <= 0: max P; inf: max P, min C)."""
    out = py_choices(P, C, lams)
    for k, lam in enumerate(lams.tolist()):
        if 0 < lam < math.inf:
            for i, (p, c) in enumerate(zip(P.tolist(), C.tolist(), strict=True)):
                pc = zip(p, c, strict=True)
                key = [Fraction(lam) * Fraction(pm) - Fraction(cm) for pm, cm in pc]
                out[k, i] = key.index(max(key))
    return out


def np_choices(P: np.ndarray, C: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """NumPy argmax per lam (lam <= 0 and inf: the rules, via py_choices)."""
    return np.array(
        [
            (x * P - C).argmax(1) if 0 < x < np.inf else py_choices(P, C, np.array([x]))[0]
            for x in lams
        ]
    )


def py_sums(
    values: np.ndarray, choices: np.ndarray, group: np.ndarray, n_groups: int
) -> np.ndarray:
    """math.fsum per group of the chosen values: ``[g, k]``."""
    out = np.zeros((n_groups, len(choices)))
    for k, ch in enumerate(choices):
        for g in range(n_groups):
            out[g, k] = math.fsum(values[i, ch[i]] for i in np.flatnonzero(group == g))
    return out


def probe_lams(path: paths.LambdaPath, rng: np.random.Generator) -> np.ndarray:
    """Upstream grid, 0, negatives, the least float > 0, ±inf, every breakpoint and its float
    neighbours, doubles and halves."""
    ev = path.ev_lam
    extra = [ev, np.nextafter(ev, 0), np.nextafter(ev, np.inf), 2 * ev, ev / 2]
    edges = [0.0, -0.0, -1.0, -1e300, -np.inf, np.inf, paths.ZERO_PLUS, 1e-300]
    lams = np.concatenate([UPSTREAM_LAMBDAS, edges, rng.random(5) * 10, *extra])
    return rng.permutation(np.unique(lams))


def scenario(kind: str, rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, ...]:
    """(P, C, quality, cost) of one flavour of inputs."""
    quality = rng.integers(0, 5, (n, m)) / 4
    cost = rng.random((n, m)) * 1e-3
    if kind == "ints":  # many exact ties and concurrent lines
        P, C = rng.integers(0, 4, (n, m)) * 1.0, rng.integers(0, 4, (n, m)) * 1.0
    elif kind == "floats":
        P, C = rng.random((n, m)), rng.lognormal(-8, 1, (n, m))
    elif kind == "knn_upstream":  # kNN means of 5 neighbours, constant per-model prices
        P = rng.integers(0, 6, (n, m)) / 5
        C = np.broadcast_to(rng.choice(PRICES, m), (n, m)).copy()
    elif kind == "near_parallel":  # slopes and intercepts a few ulps apart
        P = 0.5 + rng.integers(-2, 3, (n, m)) * np.spacing(0.5)
        C = 1e-4 + rng.integers(-3, 4, (n, m)) * np.spacing(1e-4)
    else:  # "concurrent": many lines through (3, -1), some shifted
        P = rng.integers(0, 5, (n, m)) / 4
        C = 3.0 * P + 1.0 - (rng.random((n, m)) < 0.3) * 0.5
    return P, C, quality, cost


KINDS = ["ints", "floats", "knn_upstream", "near_parallel", "concurrent"]


@st.composite
def small_inputs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Small P, C with integer values 0..3 (many exact ties), and group codes."""
    n = draw(st.integers(1, 6))
    m = draw(st.integers(1, 5))
    vals = st.integers(0, 3)
    P = np.array(draw(st.lists(vals, min_size=n * m, max_size=n * m)), float).reshape(n, m)
    C = np.array(draw(st.lists(vals, min_size=n * m, max_size=n * m)), float).reshape(n, m)
    n_groups = draw(st.integers(1, 3))
    group = np.array(draw(st.lists(st.integers(0, n_groups - 1), min_size=n, max_size=n)))
    return P, C, n_groups, group


class TestExactGroupSums:
    def test_matches_fsum(self) -> None:
        """Per-group sums equal math.fsum over the group, for values spanning 40 decades."""
        rng = np.random.default_rng(0)
        v = rng.standard_normal(2000) * 10.0 ** rng.integers(-20, 20, 2000)
        g = rng.integers(0, 5, 2000)
        want = [math.fsum(v[g == k]) for k in range(5)]
        assert exact_group_sums(v, g, 5).tolist() == want

    def test_order_independent(self) -> None:
        """Shuffling the prompts leaves every sum bit-identical."""
        rng = np.random.default_rng(1)
        v, g = rng.lognormal(-8, 3, 5000), rng.integers(0, 3, 5000)
        perm = rng.permutation(5000)
        assert np.array_equal(exact_group_sums(v, g, 3), exact_group_sums(v[perm], g[perm], 3))

    def test_cancellation(self) -> None:
        """Catastrophic cancellation is exact (a plain float sum gives 0)."""
        assert exact_group_sums(np.array([1e16, 1.0, -1e16]), np.zeros(3, int), 1)[0] == 1.0

    def test_leading_axes_and_empty_group(self) -> None:
        """Leading axes are kept; a group with no prompt sums to 0."""
        v = np.arange(24.0).reshape(2, 3, 4)
        out = exact_group_sums(v, np.array([0, 0, 2, 2]), 3)
        assert out.shape == (2, 3, 3)
        assert np.array_equal(out[..., 1], np.zeros((2, 3)))
        assert np.array_equal(out[..., 0], v[..., 0] + v[..., 1])

    def test_bad_group(self) -> None:
        """Group codes outside [0, n_groups) are rejected."""
        with pytest.raises(ValueError, match="group codes"):
            exact_group_sums(np.ones(3), np.array([0, 1, 3]), 3)


class TestLambdaGridBruteforce:
    @pytest.mark.parametrize("kind", KINDS)
    def test_matches_python_loop(self, kind: str) -> None:
        """The oracle equals a pure-Python argmax loop with math.fsum sums, inf included."""
        rng = np.random.default_rng(2)
        P, C, q, c = scenario(kind, rng, 7, 4)
        g = rng.integers(0, 2, 7)
        lams = np.concatenate([UPSTREAM_LAMBDAS, [0.0, -2.0, -np.inf, np.inf, 3.0]])
        ch = py_choices(P, C, lams)
        cost_sum, quality_sum, count = lambda_grid_bruteforce(P, C, q, c, g, 2, lams)
        assert np.array_equal(cost_sum, py_sums(c, ch, g, 2))
        assert np.array_equal(quality_sum, py_sums(q, ch, g, 2))
        assert count.tolist() == [int((g == 0).sum()), int((g == 1).sum())]

    @pytest.mark.parametrize("bad", [[np.nan], [1.0, np.nan], [[1.0]]])
    def test_rejects_bad_lambdas(self, bad: list) -> None:
        """NaN or 2-D lambdas are rejected (negatives are valid: cost ignored)."""
        P = np.ones((2, 2))
        with pytest.raises(ValueError, match="lams"):
            lambda_grid_bruteforce(P, P, P, P, np.zeros(2, int), 1, np.array(bad))


EDGE_CASES = ["one_model", "one_prompt", "duplicate_models", "equal_rows", "equal_costs"]


def edge_case(case: str, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """M = 1, n = 1, duplicated models, identical rows or all-equal costs (integer P, C)."""
    P, C, q, c = scenario("ints", rng, 8, 4)
    if case == "one_model":
        return P[:, :1], C[:, :1], q[:, :1], c[:, :1]
    if case == "one_prompt":
        return P[:1], C[:1], q[:1], c[:1]
    if case == "duplicate_models":
        return tuple(np.concatenate([x, x[:, ::-1]], axis=1) for x in (P, C, q, c))
    if case == "equal_rows":
        return np.repeat(P[:1], 8, 0), np.repeat(C[:1], 8, 0), q, c
    return P, np.full_like(C, 2.0), q, c


def float_tie_case() -> tuple[np.ndarray, ...]:
    """kNN-like P with upstream prices: at lam = 1e9 float scores tie or reorder."""
    return scenario("knn_upstream", np.random.default_rng(4), 2000, 11)


def assert_same(got: tuple, want: tuple) -> None:
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


class TestLambdaPath:
    def test_prompt_order_and_chunking(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Shuffling prompts or tracing in chunks of 7 prompts gives bit-identical totals."""
        rng = np.random.default_rng(6)
        P, C, q, c = scenario("floats", rng, 200, 5)
        g = rng.integers(0, 3, 200)
        lams = np.concatenate([UPSTREAM_LAMBDAS, rng.random(50) * 100])
        ref = lambda_path(P, C, q, c, g, 3).at(lams)
        perm = rng.permutation(200)
        assert_same(lambda_path(P[perm], C[perm], q[perm], c[perm], g[perm], 3).at(lams), ref)
        monkeypatch.setattr(paths, "_CHUNK", 7)
        assert_same(lambda_path(P, C, q, c, g, 3).at(lams), ref)

    def test_count(self) -> None:
        """count holds the prompts per group, empty groups included."""
        P = np.ones((5, 2))
        path = lambda_path(P, P, P, P, np.array([0, 2, 2, 0, 2]), 4)
        assert path.count.tolist() == [2, 0, 3, 0]

    def test_inputs_validated(self) -> None:
        """Shape mismatches, NaN scores and bad groups are rejected with a one-line message."""
        P = np.ones((3, 2))
        g = np.zeros(3, int)
        with pytest.raises(ValueError, match="C must be shape"):
            lambda_path(P, np.ones((3, 3)), P, P, g, 1)
        with pytest.raises(ValueError, match="P must be finite"):
            lambda_path(np.full((3, 2), np.nan), P, P, P, g, 1)
        with pytest.raises(ValueError, match="group must be 3 integers"):
            lambda_path(P, P, P, P, np.zeros(3), 1)
        with pytest.raises(ValueError, match="needs at least one prompt"):
            lambda_path(P[:0], P[:0], P[:0], P[:0], g[:0], 1)


class TestLambdaPathAt:
    @settings(max_examples=80, deadline=None)
    @given(small_inputs(), st.integers(0, 2**32 - 1))
    def test_equals_bruteforce_with_ties(self, inp: tuple, seed: int) -> None:
        """Integer P and C (exact ties everywhere): totals equal the oracle's, bit for bit."""
        P, C, n_groups, group = inp
        rng = np.random.default_rng(seed)
        q, c = rng.integers(0, 5, P.shape) / 4, rng.random(P.shape)
        path = lambda_path(P, C, q, c, group, n_groups)
        lams = probe_lams(path, rng)
        assert_same(path.at(lams), lambda_grid_bruteforce(P, C, q, c, group, n_groups, lams))

    @pytest.mark.parametrize("kind", KINDS)
    def test_equals_bruteforce(self, kind: str) -> None:
        """At the upstream grid and at (and one ulp around) every breakpoint, totals are ==."""
        rng = np.random.default_rng(3)
        for _ in range(5):
            P, C, q, c = scenario(kind, rng, 300, 6)
            g = rng.integers(0, 3, 300)
            path = lambda_path(P, C, q, c, g, 3)
            lams = probe_lams(path, rng)[:400]
            assert_same(path.at(lams), lambda_grid_bruteforce(P, C, q, c, g, 3, lams))

    @pytest.mark.parametrize("case", EDGE_CASES)
    def test_edge_shapes(self, case: str) -> None:
        """M = 1, n = 1, duplicated models, identical rows, all-equal costs: totals are ==."""
        rng = np.random.default_rng(5)
        P, C, q, c = edge_case(case, rng)
        g = np.arange(len(P)) % 2
        lams = probe_lams(lambda_path(P, C, q, c, g, 2), rng)
        want = lambda_grid_bruteforce(P, C, q, c, g, 2, lams)
        assert_same(lambda_path(P, C, q, c, g, 2).at(lams), want)

    def test_float_ties_follow_the_oracle(self) -> None:
        """Where the float argmax leaves the exact envelope (lam = 1e9), totals follow it."""
        P, C, q, c = float_tie_case()
        rows = np.arange(len(P))
        path = lambda_path(P, C, q, c, np.zeros(len(P), int), 1)
        envelope = path._assumed(rows, np.full(len(P), 1e9))
        floats = (1e9 * P - C).argmax(1)
        assert (envelope != floats).any()  # the fix-up is needed here
        cost_sum, quality_sum, _ = path.at(np.array([1e9]))
        assert cost_sum[0, 0] == math.fsum(c[rows, floats])
        assert quality_sum[0, 0] == math.fsum(q[rows, floats])

    def test_infinity_is_the_limit(self) -> None:
        """At lam = inf: max P, then min C, then the lowest index; also when two top lines'
        crossings round to the same float (third row: the cheaper parallel line wins)."""
        d, x = 1.2378192897522715, 1.497209935789211
        y = np.nextafter(x, 2.0)
        assert x / d == y / d  # the third row's lines 1 and 2 cross line 0 at the same float
        P = np.array([[1.0, 2.0, 2.0, 2.0], [3.0, 3.0, 1.0, 0.0], [0.0, d, d, 0.0]])
        C = np.array([[0.0, 5.0, 4.0, 4.0], [2.0, 2.0, 0.0, 0.0], [0.0, y, x, 9.0]])
        cost = np.arange(12.0).reshape(3, 4)
        path = lambda_path(P, C, P, cost, np.arange(3), 3)
        assert path.at(np.array([np.inf]))[0][:, 0].tolist() == [2.0, 4.0, 10.0]

    def test_rejects_nan(self) -> None:
        """A NaN lambda is rejected by at() and choices()."""
        P = np.ones((3, 2))
        path = lambda_path(P, P, P, P, np.zeros(3, int), 1)
        for lookup in (path.at, path.choices):
            with pytest.raises(ValueError, match="lams"):
                lookup(np.array([1.0, np.nan]))


class TestLambdaPathChoices:
    @settings(max_examples=60, deadline=None)
    @given(small_inputs(), st.integers(0, 2**32 - 1))
    def test_equal_literal_argmax_with_ties(self, inp: tuple, seed: int) -> None:
        """Integer P and C: choices equal a pure-Python argmax (first max) everywhere probed."""
        P, C, n_groups, group = inp
        path = lambda_path(P, C, P, C, group, n_groups)
        lams = probe_lams(path, np.random.default_rng(seed))
        assert np.array_equal(path.choices(lams), py_choices(P, C, lams))

    @pytest.mark.parametrize("kind", KINDS)
    def test_equal_literal_argmax(self, kind: str) -> None:
        """Every flavour of inputs: choices equal the NumPy argmax of lam * P - C."""
        rng = np.random.default_rng(8)
        P, C, q, c = scenario(kind, rng, 300, 6)
        path = lambda_path(P, C, q, c, np.zeros(300, int), 1)
        lams = probe_lams(path, rng)[:300]
        assert np.array_equal(path.choices(lams), np_choices(P, C, lams))

    @pytest.mark.parametrize("case", EDGE_CASES)
    def test_edge_shapes(self, case: str) -> None:
        """M = 1, n = 1, duplicated models, identical rows, all-equal costs."""
        rng = np.random.default_rng(9)
        P, C, q, c = edge_case(case, rng)
        path = lambda_path(P, C, q, c, np.zeros(len(P), int), 1)
        lams = probe_lams(path, rng)
        assert np.array_equal(path.choices(lams), py_choices(P, C, lams))

    def test_float_ties_follow_the_oracle(self) -> None:
        """At lam = 1e9 with upstream prices, choices are the float argmax, not the envelope."""
        P, C, q, c = float_tie_case()
        path = lambda_path(P, C, q, c, np.zeros(len(P), int), 1)
        assert np.array_equal(path.choices(np.array([1e9]))[0], (1e9 * P - C).argmax(1))

    @settings(max_examples=40, deadline=None)
    @given(small_inputs())
    def test_climb_the_envelope(self, inp: tuple) -> None:
        """With exact arithmetic, the chosen P and C never decrease as lam > 0 grows."""
        P, C, n_groups, group = inp
        path = lambda_path(P, C, P, C, group, n_groups)
        ev = path.ev_lam
        lams = np.unique(np.concatenate([[paths.ZERO_PLUS, np.inf], ev, ev + 0.5]))
        ch = path.choices(lams)
        rows = np.arange(len(P))
        assert (np.diff(P[rows, ch], axis=0) >= 0).all()
        assert (np.diff(C[rows, ch], axis=0) >= 0).all()


class TestLambdaPathBreakpoints:
    @pytest.mark.parametrize("kind", ["ints", "floats"])
    def test_are_the_steps(self, kind: str) -> None:
        """One point per distinct breakpoint; totals are those inside each open interval."""
        rng = np.random.default_rng(7)
        P, C, q, c = scenario(kind, rng, 50, 5)
        g = rng.integers(0, 2, 50)
        path = lambda_path(P, C, q, c, g, 2)
        ev_group = g[np.repeat(np.arange(50), np.diff(path.ev_start))]
        for grp in range(2):
            lams, cost_sum, quality_sum = path.breakpoints(grp)
            assert lams[0] == 0 and (np.diff(lams) > 0).all()
            assert set(lams[1:]) == set(path.ev_lam[(ev_group == grp) & (path.ev_lam > 0)])
            inside = np.append((lams[:-1] + lams[1:]) / 2, lams[-1] * 2 + 1)
            want = lambda_grid_bruteforce(P, C, q, c, g, 2, inside)
            assert np.array_equal(cost_sum, want[0][grp])
            assert np.array_equal(quality_sum, want[1][grp])

    @settings(max_examples=80, deadline=None)
    @given(small_inputs(), st.integers(0, 2**32 - 1))
    def test_lookup_at_every_knot(self, inp: tuple, seed: int) -> None:
        """Crossings exact in floats (P in {0, 1, 2}, integer C): the steps looked up (knot 0 for
        every lam <= 0) at each knot, one float either side, 0, negatives and ±inf give the totals
        of the rule in exact rational arithmetic, ties at a breakpoint to the lowest column."""
        P, C, _, _ = inp
        P = np.minimum(P, 2.0)
        rng = np.random.default_rng(seed)
        q, c = rng.integers(0, 5, P.shape) / 4, rng.random(P.shape)
        g = np.zeros(len(P), int)
        knots, cost_sum, quality_sum = lambda_path(P, C, q, c, g, 1).breakpoints(0)
        around = [knots, np.nextafter(knots, -np.inf), np.nextafter(knots, np.inf)]
        probe = np.concatenate([*around, [0.0, -1.0, -np.inf, np.inf, 1e-300]])
        idx = np.maximum(np.searchsorted(knots, probe, side="right") - 1, 0)
        ch = exact_choices(P, C, probe)
        assert cost_sum[idx].tolist() == py_sums(c, ch, g, 1)[0].tolist()
        assert quality_sum[idx].tolist() == py_sums(q, ch, g, 1)[0].tolist()

    def test_knot_zero_is_cost_ignored(self) -> None:
        """P = [[.2, .9]], C = [[1, 2]]: knot 0 (every lam <= 0) holds argmax P (model 1), the
        least float > 0 the cheaper model 0, and model 1 again after the crossing at 1/0.7."""
        q, c = np.array([[0.25, 0.75]]), np.array([[1.0, 3.0]])
        path = lambda_path(
            np.array([[0.2, 0.9]]), np.array([[1.0, 2.0]]), q, c, np.zeros(1, int), 1
        )
        knots, cost_sum, quality_sum = path.breakpoints(0)
        assert knots[:2].tolist() == [0.0, paths.ZERO_PLUS] and knots[2] == pytest.approx(1 / 0.7)
        assert cost_sum.tolist() == [3.0, 1.0, 3.0] and quality_sum.tolist() == [0.75, 0.25, 0.75]

    def test_single_model_is_one_point(self) -> None:
        """With one model there is one step: its total cost and quality."""
        P = np.array([[0.5], [0.2]])
        lams, cost_sum, quality_sum = lambda_path(P, P, P, P * 2, np.zeros(2, int), 1).breakpoints(
            0
        )
        assert lams.tolist() == [0.0] and cost_sum.tolist() == [1.4]
        assert quality_sum.tolist() == [0.7]


class TestDocstrings:
    def test_examples_run(self) -> None:
        """The docstring examples of engine/paths.py run and give what they show."""
        assert doctest.testmod(paths).failed == 0

    def test_stepsums_examples_run(self) -> None:
        """The docstring examples of engine/stepsums.py run and give what they show."""
        result = doctest.testmod(stepsums)
        assert result.attempted >= 2 and result.failed == 0
