"""Cascades with a simulated noisy judge, exact over the budget.

The cascade calls models in a given order (e.g. ascending price) and always calls the first.  Before
calling a later model it stops if that model's cost is >= the remaining budget (B minus what was
spent so far), and it stops as soon as the judge accepts an answer.  The prompt's quality is the
score of the last model called (even if rejected); its cost is the sum of all calls.  (Upstream
skips the budget check while ``sample_cost == 0`` rather than for the first call only; the two
differ only when the first models in the order cost exactly 0.)

Derivation of the exact path.  Position k >= 1 is called iff the judge rejected positions 0..k-1
and every check so far passed: ``c_j < B - S_{j-1}`` for j = 1..k, where S_j is the cumulative
cost of positions 0..j.  In exact arithmetic that check is ``S_j < B``; costs are >= 0, so S_j
grows with j and passing check k implies passing the earlier ones: position k is called iff 0..k-1
were rejected and ``S_k < B``.  The upstream loop computes the remaining budget in floats
(``left -= cost``), which can differ from ``S_k < B`` at the last ulp, so for each prompt and
position we find the least float budget at which the literal float check passes (a few
``nextafter`` steps from S_k).  The implication survives rounding (``c_k < fl(left - c_{k-1})``
with ``c_k >= 0`` forces ``left > c_{k-1}``), so a prompt's outcome is a step function of B that
matches the literal loop exactly, and so are the per-group totals (summed exactly).

The judge: it accepts model k's answer when ``quality >= theta``, but with probability eps its
verdict is flipped; the noise comes from a counter-based hash of (seed, prompt, model, eps), so it
never depends on order, batching or sharding.  The budget is not in the hash: every budget sees
the same verdicts (upstream draws afresh for each budget, from the global unseeded RNG), which is
what makes the path over budgets exact.  Any boolean accept matrix works (e.g. a learned
predictor's ``predicted >= theta``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from routerbench.engine.rng import GOLDEN, mix64, stable_keys
from routerbench.engine.stepsums import (
    StepSums,
    check_group,
    check_knobs,
    check_table,
    exact_group_sums,
    fsum0,
)

__all__ = [
    "PROMPT_DOMAIN",
    "UPSTREAM_BUDGETS",
    "UPSTREAM_EPS",
    "CascadePath",
    "cascade_bruteforce",
    "cascade_path",
    "family_theta",
    "judge_accepts",
    "judge_uniforms",
    "model_key",
    "prompt_key",
]

PROMPT_DOMAIN = b"rb.prompt"  # stable_keys domain of prompt ids (RoutingData.keys)

# The original grid (ROUTERBENCH.md, section 2): budgets per prompt (USD) x judge error rates.
UPSTREAM_BUDGETS = np.array([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 50, 100], dtype=float)
UPSTREAM_EPS = np.array([0, 0.01, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8], dtype=float)


def prompt_key(ids: Iterable[str]) -> np.ndarray:
    """A stable 64-bit key per prompt id (blake2b, 8 bytes): ``uint64[n]``.

    >>> prompt_key(["mmlu-astronomy.val.5"]).dtype
    dtype('uint64')
    """
    return stable_keys(ids, PROMPT_DOMAIN)


def model_key(names: Iterable[str]) -> np.ndarray:
    """A stable 64-bit key per model name (blake2b, 8 bytes, domain-separated from prompts)."""
    return stable_keys(names, b"rb.model")


def judge_uniforms(
    seed: int, prompt_keys: np.ndarray, model_keys: np.ndarray, eps: float
) -> np.ndarray:
    """Uniforms in [0, 1), ``[n, K]``: a hash of (seed, prompt key, model key, bits of eps).

    Each value depends only on its own (seed, prompt, model, eps), so any subset, order or
    sharding of prompts gives the same value for the same prompt.

    >>> models = model_key(["m1", "m2", "m3"])
    >>> u = judge_uniforms(7, prompt_key(["a", "b"]), models, 0.1)
    >>> u.shape, bool(((u >= 0) & (u < 1)).all())
    ((2, 3), True)
    >>> bool((judge_uniforms(7, prompt_key(["b"]), models, 0.1) == u[1]).all())
    True
    """
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must lie in [0, 1], got {eps!r}")
    pk = np.asarray(prompt_keys, dtype=np.uint64).reshape(-1, 1)
    mk = np.asarray(model_keys, dtype=np.uint64).reshape(1, -1)
    h = np.array([[seed]], dtype=np.uint64)
    for key in (np.array([[eps]], dtype=np.float64).view(np.uint64), pk, mk):
        h = mix64((h ^ key) + GOLDEN)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def judge_accepts(
    quality_in_order: np.ndarray, theta: float, eps: float, uniforms: np.ndarray
) -> np.ndarray:
    """The noisy judge's verdicts ``bool[n, K]``: ``quality >= theta``, flipped where ``u < eps``.

    >>> q = np.array([[0.0, 1.0]])
    >>> judge_accepts(q, 1.0, 0.0, np.array([[0.5, 0.5]])).tolist()
    [[False, True]]
    >>> judge_accepts(q, 1.0, 0.6, np.array([[0.5, 0.7]])).tolist()
    [[True, True]]
    """
    q, u = np.asarray(quality_in_order, dtype=np.float64), np.asarray(uniforms)
    if q.shape != u.shape:
        raise ValueError(f"uniforms shape {u.shape} must equal quality shape {q.shape}")
    return (q >= theta) != (u < eps)


def family_theta(quality: np.ndarray, q: float = 0.95) -> float:
    """The judge's threshold: the ``q`` quantile of all the family's scores (all models), as
    upstream (``np.quantile``, linear); 1.0 for a binary task with more than 5% correct answers.

    >>> family_theta(np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]))
    1.0
    """
    v = np.asarray(quality, dtype=np.float64).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError("family_theta needs a non-empty array of finite scores")
    return float(np.quantile(v, q))


def _check_cascade(
    quality: np.ndarray, cost: np.ndarray, order: np.ndarray, accept: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    quality = check_table(quality, "quality")
    cost = check_table(cost, "cost", quality.shape)
    if (cost < 0).any():
        raise ValueError("cost must be >= 0")
    o = np.asarray(order)
    m = quality.shape[1]
    if o.ndim != 1 or o.size == 0 or o.dtype.kind not in "iu" or o.min() < 0 or o.max() >= m:
        raise ValueError(f"order must be a non-empty 1-D array of model columns in [0, {m})")
    acc = np.asarray(accept)
    if acc.dtype != bool or acc.shape != (quality.shape[0], o.size):
        raise ValueError(
            f"accept must be a boolean array of shape {(quality.shape[0], o.size)}, "
            f"got {acc.dtype} {acc.shape}"
        )
    return quality[:, o], cost[:, o], acc


def _least_budgets(c: np.ndarray, spent: np.ndarray, last: np.ndarray) -> np.ndarray:
    """``tau[:, k - 1]``: the least float B at which the literal loop, having called positions
    0..k-1, also calls k: ``c[k] < B - c[0] - ... - c[k - 1]`` (float, left to right).  Only
    computed for k <= ``last`` (elsewhere: S_k, unused)."""
    tau = spent[:, 1:].copy()  # the exact-arithmetic boundary S_k; the answer is a few ulps off
    for k in range(1, c.shape[1]):
        sel = np.flatnonzero(last >= k)
        ck = c[sel, : k + 1]

        def calls(b: np.ndarray, rows: np.ndarray, ck: np.ndarray = ck) -> np.ndarray:
            left = b.copy()
            for j in range(ck.shape[1] - 1):
                left -= ck[rows, j]
            return ck[rows, -1] < left

        b = tau[sel, k - 1]
        rows = np.arange(sel.size)
        ok = calls(b, rows)
        down, up = rows[ok], rows[~ok]
        while down.size:  # monotone in B: step down while the float below still calls
            prev = np.nextafter(b[down], -np.inf)
            keep = calls(prev, down)
            b[down[keep]] = prev[keep]
            down = down[keep]
        while up.size:  # ... or up until it calls
            b[up] = np.nextafter(b[up], np.inf)
            up = up[~calls(b[up], up)]
        tau[sel, k - 1] = b
    return tau


@dataclass(frozen=True, eq=False)
class CascadePath:
    """Exact per-group totals of a cascade as step functions of the budget B > 0.

    ``steps`` holds the exact running sums of (cost, quality) at each budget where some prompt
    makes one more call; ``count`` the prompts per group.
    """

    steps: StepSums
    count: np.ndarray

    def at(self, budgets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Totals at each ``budgets[k]`` (> 0, inf allowed): ``cost_sum[g, k]``,
        ``quality_sum[g, k]``, ``count[g]``; equal to :func:`cascade_bruteforce`."""
        budgets = check_knobs(budgets, "budgets", positive=True)
        cost_sum, quality_sum = (fsum0(p) for p in self.steps.parts(budgets))
        return cost_sum, quality_sum, self.count

    def breakpoints(self, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Group ``group``'s curve, one point per step: ``budgets[j]`` (``budgets[0] = 0``
        stands for B -> 0+) and the cost and quality sums for B in ``[budgets[j],
        budgets[j + 1])``."""
        budgets, sums = self.steps.points(group)
        return budgets, sums[0], sums[1]


def cascade_path(
    quality: np.ndarray,
    cost: np.ndarray,
    order: np.ndarray,
    accept: np.ndarray,
    group: np.ndarray,
    n_groups: int,
) -> CascadePath:
    """The exact budget path of the cascade over models ``order`` with verdicts ``accept[n, K]``
    (position k of the order; any boolean matrix), per group.

    >>> quality = np.array([[0.0, 1.0, 1.0]])
    >>> cost = np.array([[1.0, 2.0, 4.0]])
    >>> path = cascade_path(quality, cost, np.array([0, 1, 2]), np.array([[False, False, True]]),
    ...                     np.array([0]), 1)
    >>> budgets, cost_sum, quality_sum = path.breakpoints(0)
    >>> budgets.tolist(), cost_sum.tolist(), quality_sum.tolist()
    ([0.0, 3.0000000000000004, 7.000000000000001], [1.0, 3.0, 7.0], [0.0, 1.0, 1.0])
    >>> path.at(np.array([3.0, 5.0]))[0].tolist()
    [[1.0, 3.0]]
    """
    q, c, acc = _check_cascade(quality, cost, order, accept)
    n, n_pos = q.shape
    g = check_group(group, n, n_groups)
    spent = np.cumsum(c, axis=1)  # left to right, as the loop adds
    last = np.where(acc.any(1), acc.argmax(1), n_pos - 1)  # the last position ever called
    need = _least_budgets(c, spent, last)  # nondecreasing in k: check k implies checks < k
    ep, ek = np.nonzero(np.arange(1, n_pos) <= last[:, None])
    steps = StepSums.build(
        np.stack([spent[:, 0], q[:, 0]]),
        np.stack([spent[ep, ek + 1], q[ep, ek + 1]]),
        np.stack([spent[ep, ek], q[ep, ek]]),
        ep,
        need[ep, ek],
        g,
        n_groups,
    )
    return CascadePath(steps=steps, count=np.bincount(g, minlength=n_groups))


def cascade_bruteforce(
    quality: np.ndarray,
    cost: np.ndarray,
    order: np.ndarray,
    accept: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    budgets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The oracle: the upstream loop, literally (vectorised over prompts), for each budget; then
    exact per-group sums.  Returns ``cost_sum[g, k]``, ``quality_sum[g, k]``, ``count[g]``.

    >>> quality, cost = np.array([[0.0, 1.0, 1.0]]), np.array([[1.0, 2.0, 4.0]])
    >>> accept = np.array([[False, False, True]])
    >>> cascade_bruteforce(quality, cost, np.array([0, 1, 2]), accept, np.array([0]), 1,
    ...                    np.array([3.0, 5.0]))[0].tolist()
    [[1.0, 3.0]]
    """
    g = check_group(group, np.shape(quality)[0], n_groups)
    spent, last = cascade_outcomes(quality, cost, order, accept, budgets)
    out = np.stack([exact_group_sums(v, g, n_groups) for v in (spent, last)])  # [2, k, g]
    return out[0].T, out[1].T, np.bincount(g, minlength=n_groups)


def cascade_outcomes(
    quality: np.ndarray,
    cost: np.ndarray,
    order: np.ndarray,
    accept: np.ndarray,
    budgets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt and budget, the upstream loop run literally: the cost spent and the score of the
    last model called, ``[k, n]`` each.

    >>> quality, cost = np.array([[0.0, 1.0, 1.0]]), np.array([[1.0, 2.0, 4.0]])
    >>> spent, last = cascade_outcomes(quality, cost, np.array([0, 1, 2]),
    ...                                np.array([[False, False, True]]), np.array([3.0, 5.0]))
    >>> spent.tolist(), last.tolist()
    ([[1.0], [3.0]], [[0.0], [1.0]])
    """
    q, c, acc = _check_cascade(quality, cost, order, accept)
    n, n_pos = q.shape
    budgets = check_knobs(budgets, "budgets", positive=True)
    spent_all, last_all = np.empty((budgets.size, n)), np.empty((budgets.size, n))
    for i, budget in enumerate(budgets):
        left, spent, last = np.full(n, budget), np.zeros(n), np.zeros(n)
        going = np.ones(n, dtype=bool)
        for k in range(n_pos):
            if k:
                going &= ~(c[:, k] >= left)  # stop if its cost >= the remaining budget
            spent[going] += c[going, k]
            left[going] -= c[going, k]
            last[going] = q[going, k]
            going &= ~acc[:, k]  # stop when the judge accepts
        spent_all[i], last_all[i] = spent, last
    return spent_all, last_all
