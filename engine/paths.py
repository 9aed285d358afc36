"""Exact λ path of a predictive router.

One rule per knob value, for grids (:func:`lambda_choices`, which the predictive routers'
``decide`` use) and for the exact path alike:

- ``lam > 0`` (finite): prompt i goes to the float argmax of ``lam * P[i, m] - C[i, m]`` (ties: the
  lowest model column), exactly at a breakpoint included;
- ``lam <= 0`` (``-inf`` included): cost is ignored, ``argmax_m P[i, m]`` (ties: the lowest
  column), as the original;
- ``lam = +inf``: the highest P, then the lowest C, then the lowest column;
- NaN is refused.

So the path jumps at 0: at ``lam <= 0`` the best predicted quality, for tiny ``lam > 0`` the
cheapest cost term.  For ``lam > 0`` the choice is the upper envelope of M lines, so it changes at
most M - 1 times; the totals over prompts are step functions of ``lam``.  :func:`lambda_path`
finds every step for every prompt (vectorised over prompts, in chunks) and keeps the per-group
totals, so any grid is a lookup.  :func:`lambda_grid_bruteforce` applies the rule literally per
``lam`` (the oracle).

Float exactness.  The oracle scores in floats (``fl(fl(lam * P) - C)``), which can tie or reorder
lines that differ by less than a rounding error (this happens at ``lam = 1e9`` with the upstream
prices).  For every segment of every prompt's envelope the path also stores the open interval of
``lam`` on which its line provably wins the *float* argmax (a rounding-error bound with margin);
at a requested ``lam`` outside it, :meth:`LambdaPath.at` recomputes that prompt's argmax exactly
as the oracle does.  Choices are then identical to the oracle's, ties included.

Sums are exact (:mod:`routerbench.engine.stepsums`): a total is the correctly rounded exact sum,
so the path's totals equal the oracle's bit for bit, whatever the summation or prompt order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routerbench.engine.stepsums import (
    StepSums,
    check_group,
    check_knobs,
    check_table,
    exact_group_sums,
    fsum0,
    group_parts,
)

__all__ = [
    "UPSTREAM_LAMBDAS",
    "LambdaPath",
    "lambda_choices",
    "lambda_grid_bruteforce",
    "lambda_path",
]

# The 32 willingness-to-pay values of the original evaluation (ROUTERBENCH.md, section 2).
# fmt: off
UPSTREAM_LAMBDAS = np.array([
    1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 5e-3, 0.01, 0.1, 0.5, 1, 1.5, 2, 10, 50,
    100, 500, 1000, 2000, 3000, 4000, 5000, 7500, 1e4, 2.5e4, 5e4, 7.5e4, 1e5, 1e6, 1e9,
])
# fmt: on

_CHUNK = 1 << 15  # prompts per chunk while tracing envelopes; pairs per chunk in fix-ups
# A float score fl(fl(lam*p) - c) is within u*(2.0001*lam*|p| + |c|) of lam*p - c (u = 2^-53), so
# a line ahead by more than 8u*(lam*Pmax + Cmax) wins the float argmax.  The test uses 64u: the
# extra 56u covers the rounding of the test's own coefficients.  _TINY covers underflow.
_KAPPA = 2.0**-47
_TINY = 1e-300
_WIDEN = 2.0**-48  # relative widening of a danger threshold, covers one division's rounding
ZERO_PLUS = float(np.nextafter(0.0, 1.0))  # the least float > 0: where the path leaves lam <= 0
_CHOICE_BUDGET = 1 << 22  # elements of the [lams, n, m] score array lambda_choices builds at once


def lambda_choices(P: np.ndarray, C: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """The chosen column of every prompt at each ``lams[k]``, by the module's rule: int ``[k, n]``.

    ``lam <= 0``: ``argmax P`` (cost ignored); ``lam = inf``: max P, then min C; otherwise the float
    argmax of ``lam * P - C``; ties to the lowest column.  Vectorised over ``lams`` in chunks that
    bound the memory used.  NaN gives a ValueError.

    >>> lambda_choices(np.array([[0.25, 0.75]]), np.array([[1.0, 2.0]]), [-1.0, 0.0, 1.0, 2.0, 3.0])
    array([[1],
           [1],
           [0],
           [0],
           [1]])
    """
    lams = check_knobs(lams, "lams", positive=False)
    n, m = P.shape
    out = np.empty((lams.size, n), dtype=np.int64)
    out[:] = P.argmax(1)
    out[np.isposinf(lams)] = _limit_choice(P, C)
    pos = np.flatnonzero((lams > 0) & np.isfinite(lams))
    step = max(1, _CHOICE_BUDGET // max(1, n * m))
    for s in range(0, pos.size, step):
        rows = pos[s : s + step]
        out[rows] = (lams[rows, None, None] * P[None] - C[None]).argmax(2)
    return out


def _limit_choice(P: np.ndarray, C: np.ndarray) -> np.ndarray:
    """The choice as lam -> inf: max P, then min C, then lowest index."""
    best = P == P.max(1, keepdims=True)
    best &= C == np.where(best, C, np.inf).min(1, keepdims=True)
    return best.argmax(1)


def _envelopes(P: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, ...]:
    """Trace every prompt's envelope over lam >= 0 (one chunk of prompts).

    Returns ``c0`` (choice at 0+), ``nev`` (events per prompt) and, prompt-major, the events
    (``lam``, old, new) and the danger intervals ``(lo, hi, prompt)``: the closed complement of
    the open intervals where the segment's line provably wins the float argmax, within
    ``[ZERO_PLUS, inf)`` (at ``lam <= 0`` cost is ignored, no float argmax to follow).
    """
    # Whole: one vectorised step per segment, whose parts share a dozen per-prompt arrays.
    n, m = P.shape
    # Models x prompts layout: reductions over models become fast elementwise passes.  A mask is
    # applied by adding 0.0 / mask (NaN off the mask), which np.fmin.reduce skips.
    Pt, Ct = np.ascontiguousarray(P.T), np.ascontiguousarray(C.T)
    w = np.arange(m)[:, None]
    kp = _KAPPA * np.abs(Pt).max(0)
    kc = _KAPPA * (np.abs(Ct).max(0) + _TINY)
    best = Ct == Ct.min(0)  # at 0+: min C, then max P, then lowest index
    best &= Pt == np.fmax.reduce(Pt + 0.0 / best, axis=0)
    cur = best.argmax(0)
    c0 = cur.copy()
    lam = np.zeros(n)
    lower = np.full(n, -np.inf)
    idx = np.arange(n)
    segs, evs = [], []
    j = 0
    while idx.size:
        p, c, a = np.take(Pt, idx, axis=1), np.take(Ct, idx, axis=1), cur[idx]  # C-ordered
        rows = np.arange(idx.size)
        dp, dc = p - p[a, rows], c - c[a, rows]
        cross = dc / dp + 0.0 / (dp > 0)  # where line m overtakes a (NaN: never)
        raw = np.fmin.reduce(cross, axis=0)
        nl = np.maximum(raw, lam[idx])
        nl[np.isnan(nl)] = np.inf  # no more breakpoints
        has = np.isfinite(nl)
        eq = cross == raw
        nb = (eq * w).sum(0)
        tie = np.minimum(a, nb)  # the choice exactly at nl: the lowest column of those tied
        slow = np.flatnonzero(has & ((eq.sum(0) != 1) | (raw < lam[idx])))
        if slow.size:  # several lines cross at nl: max P, then min C, then lowest index
            ps, cs = p[:, slow], c[:, slow]
            best = np.maximum(cross[:, slow], lam[idx[slow]]) == nl[slow]
            tie[slow] = np.minimum(a[slow], best.argmax(0))
            best &= ps == np.where(best, ps, -np.inf).max(0)
            best &= cs == np.where(best, cs, np.inf).min(0)
            nb[slow] = best.argmax(0)
        # Line m endangers a at lam when a's exact lead (C_m - C_a) - lam (P_m - P_a) is within
        # the bound _KAPPA * (lam Pmax + Cmax), i.e. when num <= den * lam: lam >= num / den if
        # den > 0, lam <= num / den if den < 0.  Lines after a that are no better in P and no
        # cheaper (a itself too) never win the float argmax against a: not live.
        den = dp + kp[idx]
        num = dc - kc[idx]
        live = ~((dp <= 0) & (dc >= 0) & (w >= a))
        t = num / np.abs(den)  # den = +-0 gives -t = +inf (danger everywhere) iff num < 0
        s_lo = -np.fmin.reduce(t + 0.0 / (live & (den <= 0)), axis=0)
        s_hi = np.fmin.reduce(t + 0.0 / (live & (den > 0)), axis=0)
        s_lo[np.isnan(s_lo)], s_hi[np.isnan(s_hi)] = -np.inf, np.inf
        s_lo *= np.where(s_lo > 0, 1 + _WIDEN, 1 - _WIDEN)  # widen the danger zones
        s_hi *= np.where(s_hi > 0, 1 - _WIDEN, 1 + _WIDEN)
        s_lo = np.clip(s_lo, lower[idx], nl)
        segs.append((idx, np.full(idx.size, j), s_lo, np.clip(s_hi, s_lo, nl)))
        idx, nl, a, nb, tie = idx[has], nl[has], a[has], nb[has], tie[has]
        # Exactly at nl the lowest tied column wins: nb from nl on if it is that column, else
        # nb from the next float on, after the tie winner at nl itself (an event if not a).
        mid = (tie != a) & (tie != nb)
        evs.append((idx[mid], np.full(mid.sum(), j), nl[mid], a[mid], tie[mid], ~mid[mid]))
        key = np.where(tie == nb, nl, np.nextafter(nl, np.inf))
        old = np.where(tie == nb, a, tie)
        evs.append((idx, np.full(idx.size, j), key, old, nb, np.ones(idx.size, dtype=bool)))
        cur[idx], lam[idx], lower[idx] = nb, nl, nl
        j += 1
    return (c0, *_collect(n, segs, evs))


def _collect(n: int, segs: list, evs: list) -> tuple[np.ndarray, ...]:
    """Per prompt, prompt-major: event counts and events (``lam``, old, new) from the tracing
    records, and the danger intervals ``(lo, hi, prompt)`` within ``[ZERO_PLUS, inf)``."""
    sp, sj, slo, shi = (np.concatenate(z) for z in zip(*segs, strict=True))
    ep, ej, elam, eold, enew, emain = (np.concatenate(z) for z in zip(*evs, strict=True))
    order = np.lexsort((emain, ej, ep))  # prompt-major, in tracing order, a tie winner first
    ev_lam, ev_old, ev_new = elam[order], eold[order], enew[order]
    nev = np.bincount(ep, minlength=n)
    # Danger intervals of prompt p: [-inf, lo_0], [hi_0, lo_1], ..., [hi_last, inf].
    nseg = np.bincount(ep[emain], minlength=n) + 1
    zoff = np.cumsum(nseg + 1) - nseg - 1
    dz_lo, dz_hi = np.empty(zoff[-1] + nseg[-1] + 1), np.empty(zoff[-1] + nseg[-1] + 1)
    dz_hi[zoff[sp] + sj], dz_lo[zoff[sp] + sj + 1] = slo, shi
    dz_lo[zoff], dz_hi[zoff + nseg] = -np.inf, np.inf
    dz_p = np.repeat(np.arange(n), nseg + 1)
    keep = (dz_hi >= ZERO_PLUS) & (dz_lo < np.inf)
    dz_lo = np.maximum(dz_lo, ZERO_PLUS)
    return nev, ev_lam, ev_old, ev_new, dz_lo[keep], dz_hi[keep], dz_p[keep]


@dataclass(frozen=True, eq=False)
class LambdaPath:
    """The exact λ path of a predictive router (built by :func:`lambda_path`).

    Holds the inputs (``P``, ``C``, ``quality``, ``cost``, ``group``), ``count`` (prompts per
    group), ``steps`` (exact per-group totals of realised cost and quality at each breakpoint),
    and per prompt, prompt-major: ``seq`` (the choice at ``lam <= 0``, argmax P, then after each
    breakpoint), ``ev_lam`` (its breakpoints, ``ev_start[i]:ev_start[i + 1]``, all >= ZERO_PLUS;
    the first is ZERO_PLUS where the cheapest choice at 0+ differs from argmax P) and the danger
    intervals ``[dz_lo, dz_hi]`` of prompt ``dz_prompt`` where :meth:`at` recomputes the float
    argmax.
    """

    P: np.ndarray
    C: np.ndarray
    quality: np.ndarray
    cost: np.ndarray
    group: np.ndarray
    count: np.ndarray
    steps: StepSums
    seq: np.ndarray
    ev_lam: np.ndarray
    ev_start: np.ndarray
    dz_lo: np.ndarray
    dz_hi: np.ndarray
    dz_prompt: np.ndarray

    def _assumed(self, p: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """The path's choice for prompt ``p[j]`` at ``lam[j]`` (breakpoints <= lam applied)."""
        start, nev = self.ev_start[p], np.diff(self.ev_start)[p]
        k = np.zeros(p.size, dtype=np.intp)
        for t in range(int(nev.max(initial=0))):
            at_t = self.ev_lam[np.minimum(start + t, self.ev_lam.size - 1)]
            k += (t < nev) & (at_t <= lam)
        return self.seq[start + p + k]

    def _fixups(self, lams: np.ndarray) -> tuple[np.ndarray, ...]:
        """Prompts (p, index into lams, path choice, float-argmax choice) where the two differ."""
        order = np.argsort(lams, kind="stable")
        qs = lams[order]
        qs = qs[: np.searchsorted(qs, np.inf)]
        lo = np.searchsorted(qs, self.dz_lo, "left")
        hi = np.searchsorted(qs, self.dz_hi, "right")
        same = np.zeros(lo.size, dtype=bool)
        same[1:] = self.dz_prompt[1:] == self.dz_prompt[:-1]
        prev = np.concatenate([[0], hi[:-1]])
        lo = np.where(same, np.maximum(lo, prev), lo)  # count a shared endpoint once
        cnt = np.maximum(hi - lo, 0)
        p = np.repeat(self.dz_prompt, cnt)
        qi = np.arange(p.size) - np.repeat(np.cumsum(cnt) - cnt - lo, cnt)
        out = []
        for s in range(0, p.size, _CHUNK):
            pp, kk = p[s : s + _CHUNK], qi[s : s + _CHUNK]
            a = self._assumed(pp, qs[kk])
            t = (qs[kk, None] * self.P[pp] - self.C[pp]).argmax(1)  # as the oracle scores
            d = a != t
            out.append((pp[d], order[kk[d]], a[d], t[d]))
        if not out:
            return tuple(np.zeros(0, dtype=np.intp) for _ in range(4))
        return tuple(np.concatenate(z) for z in zip(*out, strict=True))

    def at(self, lams: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Totals at each ``lams[k]`` (any number but NaN, ±inf allowed): ``cost_sum[g, k]``,
        ``quality_sum[g, k]``, ``count[g]``; equal to :func:`lambda_grid_bruteforce`."""
        lams = check_knobs(lams, "lams", positive=False)
        parts = self.steps.parts(lams)
        p, k, a, t = self._fixups(lams)
        n_groups, n_k = self.count.size, lams.size
        bins = np.tile(self.group[p] * n_k + k, 2)
        sums = []
        for q, table in enumerate((self.cost, self.quality)):
            fix = group_parts(np.concatenate([table[p, t], -table[p, a]]), bins, n_groups * n_k)
            sums.append(fsum0(np.concatenate([parts[q], fix.reshape(-1, n_groups, n_k)])))
        return sums[0], sums[1], self.count

    def choices(self, lams: np.ndarray) -> np.ndarray:
        """The chosen model column of every prompt at each ``lams[k]``: int ``[k, n]``."""
        lams = check_knobs(lams, "lams", positive=False)
        n = self.P.shape[0]
        out = self._assumed(np.tile(np.arange(n), lams.size), np.repeat(lams, n))
        out = out.reshape(lams.size, n)
        p, k, _, t = self._fixups(lams)
        out[k, p] = t
        return out

    def breakpoints(self, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Group ``group``'s curve, one point per step: ``lams[j]`` and the cost and quality sums
        of the rule in exact arithmetic on ``[lams[j], lams[j + 1])``.

        ``lams[0] = 0`` holds for every ``lam <= 0`` (cost ignored); ``lams[1] = ZERO_PLUS`` when
        some prompt's cheapest choice differs from its argmax P (the jump at 0).  An exact tie at
        a breakpoint goes to the lowest column, so a step starts at the crossing or one float
        after it (exact where crossings are floats).  The float argmax, which the grid and
        :meth:`at` follow, can differ within rounding of a crossing or where float scores tie
        (e.g. at ``lam = 1e9`` with upstream prices)."""
        lams, sums = self.steps.points(group)
        return lams, sums[0], sums[1]


def _check_inputs(
    P: np.ndarray, C: np.ndarray, quality: np.ndarray, cost: np.ndarray
) -> tuple[np.ndarray, ...]:
    P = check_table(P, "P")
    return (
        P,
        check_table(C, "C", P.shape),
        check_table(quality, "quality", P.shape),
        check_table(cost, "cost", P.shape),
    )


def _jump_at_zero(
    a0: np.ndarray,
    c0: np.ndarray,
    ev_lam: np.ndarray,
    ev_old: np.ndarray,
    ev_new: np.ndarray,
    nev: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Prepend to each prompt whose argmax P ``a0`` differs from its choice at 0+ ``c0`` the event
    (ZERO_PLUS, a0 -> c0).  Events stay prompt-major with nondecreasing keys >= ZERO_PLUS per
    prompt (a crossing that underflowed to 0 is still > 0; a tie moved past a crossing stays
    before the next one)."""
    jump = a0 != c0
    nev = nev + jump
    start = np.cumsum(nev) - nev
    at = np.zeros(int(nev.sum()), dtype=bool)
    at[start[jump]] = True
    out = []
    for ev, first in ((ev_lam, ZERO_PLUS), (ev_old, a0[jump]), (ev_new, c0[jump])):
        x = np.empty(at.size, dtype=ev.dtype)
        x[at], x[~at] = first, ev
        out.append(x)
    key = np.maximum(out[0], ZERO_PLUS)
    for t in range(1, int(nev.max(initial=0))):
        i = start[nev > t] + t
        key[i] = np.maximum(key[i], key[i - 1])
    return key, out[1], out[2], nev


def lambda_path(
    P: np.ndarray,
    C: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    group: np.ndarray,
    n_groups: int,
) -> LambdaPath:
    """The exact λ path of the module's rule (``argmax_m lam * P[i, m] - C[i, m]`` for
    ``lam > 0``, ``argmax_m P[i, m]`` for ``lam <= 0``) over every ``lam``, per group.

    ``P``: predicted quality ``[n, m]``; ``C``: the cost term (expected cost per prompt, or a
    per-model price broadcast to ``[n, m]``); ``quality`` and ``cost``: realised outcomes;
    ``group``: family code per prompt in ``[0, n_groups)``.

    At ``lam <= 0`` both prompts take model 1 (cost ignored); just above 0 both take the cheaper
    model 0; prompt 0 switches back to model 1 after lam = 2, prompt 1 after lam = 4: exactly at
    a breakpoint the two lines tie and the lower index wins, so the steps start one float later:

    >>> P = np.array([[0.25, 0.75], [0.5, 0.625]])
    >>> C = np.array([[1.0, 2.0], [1.0, 1.5]])
    >>> path = lambda_path(P, C, P, C, np.array([0, 0]), 1)
    >>> lams, cost_sum, _ = path.breakpoints(0)
    >>> lams.tolist(), cost_sum.tolist()
    ([0.0, 5e-324, 2.0000000000000004, 4.000000000000001], [3.5, 2.0, 3.0, 3.5])
    >>> path.at(np.array([-1.0, 0.0, 1.0, 2.0, 3.0, np.inf]))[0].tolist()
    [[3.5, 3.5, 2.0, 2.0, 3.0, 3.5]]
    >>> path.choices(np.array([0.0, 2.0, 3.0])).tolist()
    [[1, 1], [0, 0], [1, 0]]
    """
    # Long by its docstring's worked example only: the code is under 60 lines.
    P, C, quality, cost = _check_inputs(P, C, quality, cost)
    n = P.shape[0]
    group = check_group(group, n, n_groups)
    chunks = []
    for s in range(0, n, _CHUNK):
        with np.errstate(divide="ignore", invalid="ignore"):
            parts = list(_envelopes(P[s : s + _CHUNK], C[s : s + _CHUNK]))
        parts[-1] = parts[-1] + s
        chunks.append(parts)
    c0, nev, ev_lam, ev_old, ev_new, dz_lo, dz_hi, dz_p = (
        np.concatenate(z) for z in zip(*chunks, strict=True)
    )
    a0 = P.argmax(1)  # lam <= 0: cost ignored
    ev_lam, ev_old, ev_new, nev = _jump_at_zero(a0, c0, ev_lam, ev_old, ev_new, nev)
    ev_p = np.repeat(np.arange(n), nev)
    ev_start = np.concatenate([[0], np.cumsum(nev)])
    tables = (cost, quality)
    steps = StepSums.build(
        np.stack([t[np.arange(n), a0] for t in tables]),
        np.stack([t[ev_p, ev_new] for t in tables]),
        np.stack([t[ev_p, ev_old] for t in tables]),
        ev_p,
        ev_lam,
        group,
        n_groups,
    )
    seq = np.empty(n + ev_lam.size, dtype=np.intp)
    first = np.zeros(seq.size, dtype=bool)
    first[ev_start[:-1] + np.arange(n)] = True
    seq[first], seq[~first] = a0, ev_new
    return LambdaPath(
        P=P,
        C=C,
        quality=quality,
        cost=cost,
        group=group,
        count=np.bincount(group, minlength=n_groups),
        steps=steps,
        seq=seq,
        ev_lam=ev_lam,
        ev_start=ev_start,
        dz_lo=dz_lo,
        dz_hi=dz_hi,
        dz_prompt=dz_p,
    )


def lambda_grid_bruteforce(
    P: np.ndarray,
    C: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    lams: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The oracle: for each ``lams[k]``, the rule applied literally (:func:`lambda_choices`: the
    float argmax of ``lam * P - C``, first max; ``lam <= 0``: argmax P; ``inf``: max P, then min C,
    then lowest index), then exact per-group sums.

    Returns ``cost_sum[g, k]``, ``quality_sum[g, k]``, ``count[g]``.

    >>> P = np.array([[0.25, 0.75], [0.5, 0.625]])
    >>> C = np.array([[1.0, 2.0], [1.0, 1.5]])
    >>> g = np.array([0, 0])
    >>> lambda_grid_bruteforce(P, C, P, C, g, 1, np.array([2.0, 3.0]))[0].tolist()
    [[2.0, 3.0]]
    """
    P, C, quality, cost = _check_inputs(P, C, quality, cost)
    n = P.shape[0]
    group = check_group(group, n, n_groups)
    lams = check_knobs(lams, "lams", positive=False)
    rows = np.arange(n)
    out = np.empty((2, n_groups, lams.size))
    for k, pick in enumerate(lambda_choices(P, C, lams)):
        out[:, :, k] = exact_group_sums(
            np.stack([cost[rows, pick], quality[rows, pick]]), group, n_groups
        )
    return out[0], out[1], np.bincount(group, minlength=n_groups)
