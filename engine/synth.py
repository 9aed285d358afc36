"""The embedded default data set: deterministic synthetic outcomes in RouterBench's shape.

The published RouterBench files cannot be downloaded here, so :func:`generate` builds a stand-in
with the same models, prices, eval names, row counts and score value sets as the 0-shot file, and
scores drawn from a latent-variable model:

- each prompt has a difficulty ``d`` and a topic (one of a few per family);
- model ``m`` on prompt ``i`` has the logit ``skill[m, task] + eval effect[m, eval] +
  topic effect[m, topic] - d_i + noise[i, m] + offset[m]``; the offsets are solved (Newton) on the
  realised draws so each model's expected mean quality equals RouterBench's table;
- the latent score ``v = sigmoid(logit)`` is stochastically rounded to the task's value set
  (``{0, 1}``, quarters or tenths), so its expected value is ``v``;
- costs are token counts times the prices; answer lengths are scaled so each model's mean cost per
  query matches the table;
- the prompt text and the ``features`` carry the eval name, the topic and the difficulty (with
  noise), which is what a learned router can pick up.

Same arguments give bit-identical arrays: every draw comes from ``np.random.PCG64`` streams spawned
from ``SeedSequence([seed, n, n_models])``, one per block of data, so ``with_text`` and
``features_dim`` do not change the scores or costs.
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from routerbench.engine.data import PAPER_FAMILIES, RoutingData, family_of
from routerbench.engine.synth_tables import (
    ANSWER_TOKENS,
    EVAL_COUNTS,
    FILLER,
    INSTRUCTIONS,
    MODELS,
    PRICES,
    PROMPT_TOKENS,
    SKILL,
    SPLITS,
    TARGETS,
    TASKS,
)

DEFAULT_N = 36497

_FAMILIES = list(dict.fromkeys(map(family_of, EVAL_COUNTS)))  # in row order

# Latent-model scales (logits).
_SD_DIFFICULTY = 2.2  # prompt difficulty, shared by all models
_SD_EVAL = 0.5  # model x eval name effect
_SD_TOPIC = 1.5  # model x topic effect
_SD_CELL = 0.3  # prompt x model idiosyncrasy, invisible to routers
_TOPICS = 4  # topics per family


def _int_arg(name: str, value: object, low: int) -> int:
    msg = f"generate: {name} must be an integer >= {low}, got {value!r}"
    if isinstance(value, bool):
        raise ValueError(msg)
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(msg) from None
    if v < low:
        raise ValueError(msg)
    return int(v)


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts proportional to ``weights`` summing to ``total`` (Hamilton's method)."""
    w = weights.astype(np.int64)
    counts, rem = np.divmod(total * w, w.sum())
    order = np.argsort(-rem, kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def eval_counts(n: int = DEFAULT_N) -> dict[str, int]:
    """Rows per eval name for a data set of ``n`` prompts (0 for names left out), in row order.

    Counts are proportional to the 0-shot file's (largest remainder, family totals first, then eval
    names within a family) and sum to ``n``; at ``n = 36,497`` they are the file's.  When
    ``n >= 200`` every paper family keeps at least 5 rows.

    >>> c = eval_counts(1000)
    >>> sum(c.values()), c["hellaswag"], eval_counts()["mmlu-professional-law"]
    (1000, 274, 1534)
    >>> c["mtbench"], c["mtbench-math"], c["mtbench-reference"]  # 2.2 rows by proportion, 5 kept
    (3, 1, 1)
    """
    n = _int_arg("n", n, 1)
    members = {f: [e for e in EVAL_COUNTS if family_of(e) == f] for f in _FAMILIES}
    weights = np.array([sum(EVAL_COUNTS[e] for e in members[f]) for f in _FAMILIES])
    floor = np.array([5 if n >= 200 and f in PAPER_FAMILIES else 0 for f in _FAMILIES])
    per_fam = _largest_remainder(n, weights)
    fixed = np.zeros(len(_FAMILIES), dtype=bool)
    while (low := (per_fam < floor) & ~fixed).any():
        fixed |= low
        per_fam[fixed] = floor[fixed]
        per_fam[~fixed] = _largest_remainder(n - int(floor[fixed].sum()), weights[~fixed])
    out = dict.fromkeys(EVAL_COUNTS, 0)
    for f, total in zip(_FAMILIES, per_fam.tolist(), strict=True):
        sizes = _largest_remainder(total, np.array([EVAL_COUNTS[e] for e in members[f]]))
        out.update(zip(members[f], sizes.tolist(), strict=True))
    return out


def model_prices(n_models: int = len(MODELS)) -> dict[str, tuple[float, float]]:
    """Names and (input, output) USD per 1M tokens of the first ``n_models`` synthetic-set models.

    The first 11 are RouterBench's (:data:`PRICES`); more are ``synthetic/model-<k>``, k = 1, 2, ...

    >>> p = model_prices(13); len(p), list(p)[-1], p["claude-v2"]
    (13, 'synthetic/model-2', (8.0, 24.0))
    """
    return {name: (pin, pout) for name, pin, pout, *_ in _model_table(n_models)}


def _model_table(n_models: int) -> list[tuple]:
    """(name, input price, output price, mean quality, mean cost, skill row) per model."""
    rows: list[tuple] = [(m, *PRICES[m], *TARGETS[m], SKILL[m]) for m in MODELS[:n_models]]
    for k in range(1, n_models - len(MODELS) + 1):
        r = np.random.Generator(np.random.PCG64([k, 2403_12031]))  # the same for every seed
        pin = round(float(10 ** r.uniform(-0.7, 1.0)), 3)
        pout = pin * float(r.choice([1.0, 1.0, 2.0, 3.0]))
        q = float(np.clip(0.3 + 0.25 * (np.log10(pin) + 0.7) + r.normal(0, 0.05), 0.15, 0.85))
        cost = (165 * pin + 40 * pout) / 1e6
        rows.append((f"synthetic/model-{k}", pin, pout, q, cost, tuple(r.normal(0, 0.4, 8))))
    return rows


def _sigmoid_(z: np.ndarray) -> np.ndarray:
    """In-place logistic function."""
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    return np.reciprocal(z, out=z)


def _solve_offsets(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-column offsets c with mean(sigmoid(logits + c), axis=0) == target (bracketed Newton)."""
    m = logits.shape[1]
    lo, hi, c = np.full(m, -40.0), np.full(m, 40.0), np.zeros(m)
    for _ in range(60):
        v = _sigmoid_(logits + c)
        gap = v.mean(axis=0) - target
        slope = (v * (1.0 - v)).mean(axis=0)
        hi, lo = np.where(gap > 0, c, hi), np.where(gap > 0, lo, c)
        with np.errstate(divide="ignore"):
            step = c - gap / slope
        c = np.where((step >= lo) & (step <= hi), step, 0.5 * (lo + hi))
        if np.abs(gap).max() < 1e-9:
            break
    return c


@functools.cache
def _vocabulary(n_evals: int, n_topics: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Pseudo-words: 8 per eval name, 10 per topic, 8 per difficulty level (6), then filler."""
    syl = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"]
    k = len(syl)
    r = np.random.Generator(np.random.PCG64(2403_12031))  # fixed: the vocabulary never changes
    need = 8 * n_evals + 10 * n_topics + 8 * 6
    codes = r.choice(k**3, size=need, replace=False)
    words = [syl[c // k**2] + syl[c // k % k] + syl[c % k] for c in codes.tolist()]
    vocab = np.array(words + FILLER, dtype=object)
    return vocab, (8 * n_evals, 8 * n_evals + 10 * n_topics, need)


def _prompts(
    r: np.random.Generator, evals: list[str], g: np.ndarray, tg: np.ndarray, d: np.ndarray
) -> np.ndarray:
    """``repr(["<instruction> Task: <eval words>. <body>"])`` per prompt; the body mixes eval,
    topic (80% the prompt's own) and difficulty-level (75% its own) words with filler."""
    n, n_topics = len(g), len(_FAMILIES) * _TOPICS
    vocab, (t0, l0, f0) = _vocabulary(len(EVAL_COUNTS), n_topics)
    eval_ids = np.array([list(EVAL_COUNTS).index(e) for e in evals])[g]
    level = np.searchsorted([-0.97, -0.43, 0.0, 0.43, 0.97], d)
    own_t = r.random((n, 5)) < 0.8
    topic = np.where(own_t, tg[:, None], r.integers(0, n_topics, (n, 5)))
    own_l = r.random((n, 4)) < 0.75
    lev = np.where(own_l, level[:, None], r.integers(0, 6, (n, 4)))
    ids = np.concatenate(
        [
            8 * eval_ids[:, None] + r.integers(0, 8, (n, 3)),
            t0 + 10 * topic + r.integers(0, 10, (n, 5)),
            l0 + 8 * lev + r.integers(0, 8, (n, 4)),
            f0 + r.integers(0, len(FILLER), (n, 12)),
        ],
        axis=1,
    )
    heads = [
        f"{INSTRUCTIONS[_task(e)]} Task: {e.replace('-', ' ').replace('_', ' ')}." for e in evals
    ]
    words = vocab[ids].tolist()
    return np.array(
        [repr([heads[i] + " " + " ".join(w)]) for i, w in zip(g.tolist(), words, strict=True)],
        dtype=object,
    )


def _task(eval_name: str) -> int:
    fam = family_of(eval_name)
    return TASKS.index(fam) if fam in TASKS else len(TASKS) - 1


def _levels(eval_name: str) -> int:
    """Value-set size: 1 (binary), 4 (quarters) or 10 (tenths)."""
    fam = family_of(eval_name)
    if fam == "mtbench":
        return 10
    graded = fam == "grade-school-math" or fam not in PAPER_FAMILIES
    return 4 if graded and eval_name != "test-match" else 1


def _costs(
    r: np.random.Generator,
    task: np.ndarray,
    d: np.ndarray,
    pin: np.ndarray,
    pout: np.ndarray,
    target: np.ndarray,
) -> np.ndarray:
    """USD per prompt and model: prompt tokens per task, answer tokens per task and model (longer
    when harder), answer lengths scaled so each model's mean cost per query equals ``target``."""
    n, m = len(task), len(pin)
    in_tok = np.maximum(5.0, np.rint(np.take(PROMPT_TOKENS, task) * r.lognormal(0, 0.35, n)))
    verbosity = np.array(ANSWER_TOKENS)[:, None] * r.lognormal(0, 0.3, (len(TASKS), m))
    raw = r.standard_normal((n, m))
    raw *= 0.5
    raw += 0.2 * d[:, None]
    np.exp(raw, out=raw)
    raw *= verbosity[task]
    scale = (target * 1e6 - pin * in_tok.mean()) / (pout * raw.mean(axis=0))
    out_tok = np.maximum(1.0, np.rint(raw * np.maximum(scale, 0.01)))
    return (in_tok[:, None] * pin + out_tok * pout) / 1e6


def _features(
    r: np.random.Generator, dim: int, fam: np.ndarray, g: np.ndarray, tg: np.ndarray, d: np.ndarray
) -> np.ndarray:
    """Unit rows: family + eval + topic vectors + difficulty direction + noise."""
    x = r.standard_normal((len(g), dim))
    x *= 0.5
    x += r.standard_normal((len(_FAMILIES), dim))[fam]
    x += 0.5 * r.standard_normal((g.max() + 1, dim))[g]
    x += r.standard_normal((len(_FAMILIES) * _TOPICS, dim))[tg]
    x += 0.8 * d[:, None] * r.standard_normal(dim)
    x /= np.sqrt((x * x).sum(axis=1, keepdims=True))
    return x


def _quality(
    r_lat: np.random.Generator,
    r_q: np.random.Generator,
    evals: list[str],
    g: np.ndarray,
    fam: np.ndarray,
    task: np.ndarray,
    skill: np.ndarray,
    q_target: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The latent model: each prompt's topic ``tg`` and difficulty ``d``, and ``quality[n, m]``
    on each eval name's value set (eval code ``g``, family ``fam`` and task column ``task`` per
    prompt; ``skill[task, model]``; ``q_target``: each model's mean quality)."""
    n, n_models = len(g), skill.shape[1]
    # Latent logits: skill + eval effect + topic effect - difficulty + idiosyncratic noise.
    tg = fam * _TOPICS + r_lat.integers(0, _TOPICS, n)  # global topic id
    d = r_lat.standard_normal(n)
    eval_eff = r_lat.normal(0.0, _SD_EVAL, (len(evals), n_models))
    topic_eff = r_lat.normal(0.0, _SD_TOPIC, (len(_FAMILIES) * _TOPICS, n_models))
    logits = r_lat.standard_normal((n, n_models))
    logits *= _SD_CELL
    logits += skill[task]
    logits += eval_eff[g]
    logits += topic_eff[tg]
    logits -= _SD_DIFFICULTY * d[:, None]
    logits += _solve_offsets(logits, q_target)
    v = _sigmoid_(logits)
    # Stochastic rounding onto the task's value set keeps E[quality] = v.
    k = np.array([_levels(e) for e in evals], dtype=np.float64)[g][:, None]
    v *= k
    low = np.floor(v)
    return tg, d, (low + (r_q.random((n, n_models)) < v - low)) / k


def generate(
    n: int = DEFAULT_N,
    seed: int = 0,
    *,
    n_models: int = len(MODELS),
    with_text: bool = True,
    features_dim: int = 32,
) -> RoutingData:
    """A deterministic synthetic data set in RouterBench's 0-shot shape (``synthetic=True``).

    ``n`` prompts in eval-name blocks (:func:`eval_counts`), ``n_models`` models (RouterBench's 11
    in response order, then ``synthetic/model-<k>``), prompt text unless ``with_text=False``, and a
    unit-norm ``features[n, features_dim]`` embedding unless ``features_dim=0``.

    >>> d = generate(500, seed=1, with_text=False, features_dim=0)
    >>> d.n_prompts, d.n_models, d.synthetic, d.source, d.prompts, d.features
    (500, 11, True, 'synthetic(n=500, seed=1)', None, None)
    >>> bool((generate(500, seed=1, with_text=False).quality == d.quality).all())
    True
    """
    n = _int_arg("n", n, 1)
    seed = _int_arg("seed", seed, 0)
    n_models = _int_arg("n_models", n_models, 1)
    features_dim = _int_arg("features_dim", features_dim, 0)
    table = _model_table(n_models)
    names = [row[0] for row in table]
    pin, pout, q_target, c_target = (np.array([row[j] for row in table]) for j in range(1, 5))
    skill = np.array([row[5] for row in table]).T  # [task, model]

    counts = {e: c for e, c in eval_counts(n).items() if c}
    evals = list(counts)
    g = np.repeat(np.arange(len(evals)), list(counts.values()))  # eval code per row
    fam = np.array([_FAMILIES.index(family_of(e)) for e in evals])[g]
    task = np.array([_task(e) for e in evals])[g]
    streams = np.random.SeedSequence([seed, n, n_models]).spawn(5)
    r_lat, r_q, r_cost, r_text, r_feat = (np.random.Generator(np.random.PCG64(s)) for s in streams)
    tg, d, quality = _quality(r_lat, r_q, evals, g, fam, task, skill, q_target)
    heads = [f"{e}.{SPLITS.get(family_of(e), 'val')}." for e in evals]
    ids = [head + str(i) for head, c in zip(heads, counts.values(), strict=True) for i in range(c)]
    return RoutingData(
        quality=quality,
        cost=_costs(r_cost, task, d, pin, pout, c_target),
        models=tuple(names),
        prompt_ids=np.array(ids, dtype=object),
        eval_names=np.array(evals, dtype=object)[g],
        families=np.array([family_of(e) for e in evals], dtype=object)[g],
        prompts=_prompts(r_text, evals, g, tg, d) if with_text else None,
        features=_features(r_feat, features_dim, fam, g, tg, d) if features_dim else None,
        source=f"synthetic(n={n}, seed={seed})",
        synthetic=True,
    )
