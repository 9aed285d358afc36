"""A small data set in the published RouterBench wide schema, and an embedding cache for it.

Written for ``test_upstream_exact.py`` (independent of the package's own synthetic generator):
seeded NumPy, 7 paper families of 60-80 prompts, the 11 real models, and deliberate ties:

- ``CHEAP_TIE`` models share one quality column on hellaswag, mmlu and mtbench, so their
  predicted qualities are equal and, at λ = 1e9, their scores λ·P̂ − price often round to the
  same value: the original takes the first in response order (mixtral), alphabetical order
  would take WizardLM;
- ``MID_TIE`` (gpt-3.5, claude-instant) share qualities on grade-school-math, arc-challenge and
  winogrande (at λ = 1e9 their scores often round alike: gpt-3.5 first in response order,
  claude-instant alphabetically);
  on a quarter of those rows only they (and dearer models) are right, at one cost;
- claude-v2 copies claude-v1 (equal price terms: tied at every λ) on most rows of every family;
- on 8% of the rows no model is right (the oracle's no_model_correct), on 6% only gpt-4.

Costs are whole multiples of 2**-32 USD, so every sum of them is exact in any order; qualities
are quarters (binary for multiple choice), tenths for mtbench.  Every family has far more than
5% of scores equal to 1, so θ (the 0.95 quantile) is 1 on the training and the test prompts.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

# The published file's |model_response column order (the original's model list and tie order).
RESPONSE_ORDER = (
    "gpt-3.5-turbo-1106",
    "claude-instant-v1",
    "claude-v1",
    "claude-v2",
    "gpt-4-1106-preview",
    "meta/llama-2-70b-chat",
    "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
    "WizardLM/WizardLM-13B-V1.2",
    "meta/code-llama-instruct-34b-chat",
    "mistralai/mistral-7b-chat",
)
# USD per 1M tokens (input, output), as in the paper's table.
PRICES = {
    "gpt-3.5-turbo-1106": (1.0, 2.0),
    "claude-instant-v1": (0.8, 2.4),
    "claude-v1": (8.0, 24.0),
    "claude-v2": (8.0, 24.0),
    "gpt-4-1106-preview": (10.0, 30.0),
    "meta/llama-2-70b-chat": (0.9, 0.9),
    "mistralai/mixtral-8x7b-chat": (0.6, 0.6),
    "zero-one-ai/Yi-34B-Chat": (0.8, 0.8),
    "WizardLM/WizardLM-13B-V1.2": (0.3, 0.3),
    "meta/code-llama-instruct-34b-chat": (0.776, 0.776),
    "mistralai/mistral-7b-chat": (0.2, 0.2),
}
CHEAP_TIE = (
    "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
    "WizardLM/WizardLM-13B-V1.2",
    "meta/code-llama-instruct-34b-chat",
)
MID_TIE = ("gpt-3.5-turbo-1106", "claude-instant-v1")
EMBEDDING_MODEL = "all-MiniLM-L12-v2"
DIM = 16

# family -> (eval names, split tag, prompts per eval name, kind of score, models tied, tokens in)
FAMILIES = {
    "grade-school-math": (("grade-school-math",), "dev", (66,), "quarters", MID_TIE, 180),
    "hellaswag": (("hellaswag",), "dev", (72,), "binary", CHEAP_TIE, 260),
    "mmlu": (
        ("mmlu-astronomy", "mmlu-college-physics", "mmlu-professional-law"),
        "val",
        (20, 22, 24),
        "binary",
        CHEAP_TIE,
        400,
    ),
    "arc-challenge": (("arc-challenge",), "dev", (61,), "binary", MID_TIE, 150),
    "mbpp": (("mbpp",), "dev", (60,), "quarters", (), 220),
    "winogrande": (("winogrande",), "dev", (64,), "binary", MID_TIE, 90),
    "mtbench": (("mtbench", "mtbench-math"), "dev", (42, 20), "tenths", CHEAP_TIE, 300),
}
COST_UNIT = 2.0**-32  # costs are whole multiples of this: their sums are exact in any order


def _scores(rng: np.random.Generator, p: np.ndarray, kind: str) -> np.ndarray:
    """Scores of the kind asked for, from success probabilities ``p[n, m]``."""
    if kind == "binary":
        return (rng.random(p.shape) < p).astype(np.float64)
    noisy = np.clip(p + rng.normal(0.0, 0.25, p.shape), 0.0, 1.0)
    steps = 4 if kind == "quarters" else 10
    return np.round(noisy * steps) / steps


def _family(
    rng: np.random.Generator, family: str, centre: np.ndarray, mix: np.ndarray
) -> pd.DataFrame:
    """One family's rows (not yet interleaved with the others)."""
    names, split, counts, kind, tied, tokens_in = FAMILIES[family]
    n, m = sum(counts), len(RESPONSE_ORDER)
    latent = rng.normal(size=(n, 4))
    emb = centre + latent @ mix + 0.35 * rng.normal(size=(n, DIM))
    skill = rng.normal(0.6, 0.9, m)
    weight = rng.normal(0.0, 1.2, (4, m))
    col = {name: j for j, name in enumerate(RESPONSE_ORDER)}
    if tied:
        skill[col[tied[0]]] += 1.0  # often the best: its ties decide
    p = 1.0 / (1.0 + np.exp(-(skill + latent @ weight)))
    q = _scores(rng, p, kind)
    if tied:
        q[:, [col[t] for t in tied]] = q[:, [col[tied[0]]]]  # one column shared by the tie group
    hard = rng.random(n)
    q[hard < 0.08] = 0.0  # no model is right: the oracle calls none, the cascade calls all
    q[(hard >= 0.08) & (hard < 0.14)] = 0.0
    q[(hard >= 0.08) & (hard < 0.14), col["gpt-4-1106-preview"]] = 1.0  # only the dearest
    v1, v2 = col["claude-v1"], col["claude-v2"]
    same_claude = rng.random(n) < 0.8
    q[same_claude, v2] = q[same_claude, v1]
    t_in = rng.integers(tokens_in // 3, tokens_in * 2, n)
    t_out = rng.integers(1, 400, (n, m))
    t_out[same_claude, v2] = t_out[same_claude, v1]
    price = np.array([PRICES[name] for name in RESPONSE_ORDER])
    usd = (t_in[:, None] * price[:, 0] + t_out * price[:, 1]) / 1e6
    cost = np.maximum(np.round(usd / COST_UNIT), 1.0) * COST_UNIT
    if tied == MID_TIE:  # on some rows only the pair and dearer models are right, at one cost
        same_cost = np.flatnonzero(rng.random(n) < 0.25)
        cheaper = np.array([col[name] for name in RESPONSE_ORDER[5:]])
        pair = np.array([col[name] for name in MID_TIE])
        cost[same_cost, pair[1]] = cost[same_cost, pair[0]]
        q[np.ix_(same_cost, cheaper)] = 0.0
        q[np.ix_(same_cost, pair)] = 1.0
    eval_name = np.repeat(names, counts)
    index = np.concatenate([np.arange(k) for k in counts])
    rows = pd.DataFrame(
        {
            "sample_id": [f"{e}.{split}.{i}" for e, i in zip(eval_name, index, strict=True)],
            "prompt": [
                repr([f"{e} question {i}: which option is right? Answer with a letter."])
                if family != "mtbench"
                else repr([f"{e} turn one, task {i}.", f"{e} turn two, task {i}: go deeper."])
                for e, i in zip(eval_name, index, strict=True)
            ],
            "eval_name": eval_name,
        }
    )
    rows["_q"] = list(q)
    rows["_c"] = list(cost)
    rows["_e"] = list(emb.astype(np.float32))  # as sentence-transformers gives them
    rows["_tout"] = list(t_out)
    return rows


def _oracle(q: np.ndarray, c: np.ndarray) -> str:
    """The published rule: among the best scores the cheapest, first in response order."""
    if q.max() <= 0.0:
        return "no_model_correct"
    best = [j for j in range(len(q)) if q[j] == q.max()]
    return RESPONSE_ORDER[min(best, key=lambda j: (c[j], j))]


def build(seed: int = 20240312) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """The wide frame (published column layout) and the embedding cache records for it."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(4, DIM))
    parts = [_family(rng, f, 3.0 * rng.normal(size=DIM), mix) for f in FAMILIES]
    raw = pd.concat(parts, ignore_index=True)
    raw = raw.iloc[rng.permutation(len(raw))].reset_index(drop=True)  # families interleaved
    q, c = np.stack(list(raw["_q"])), np.stack(list(raw["_c"]))
    col = {name: j for j, name in enumerate(RESPONSE_ORDER)}
    frame = raw[["sample_id", "prompt", "eval_name"]].copy()
    for name in sorted(RESPONSE_ORDER):  # quality columns: alphabetical, Python floats
        frame[name] = pd.Series([float(v) for v in q[:, col[name]]], dtype=object)
    t_out = np.stack(list(raw["_tout"]))
    for j, name in enumerate(RESPONSE_ORDER):
        frame[f"{name}|model_response"] = [repr(["word " * int(t)]) for t in t_out[:, j]]
    for j, name in enumerate(RESPONSE_ORDER):
        frame[f"{name}|total_cost"] = c[:, j].astype(np.float64)
    frame["oracle_model_to_route_to"] = [_oracle(q[i], c[i]) for i in range(len(frame))]
    records: list[dict[str, object]] = []
    for prompt, emb in zip(frame["prompt"], raw["_e"], strict=True):
        records.append(_record(prompt, [float(x) for x in emb]))
    for i in range(4):  # prompts of some other data set
        records.append(_record(repr([f"unrelated prompt {i}"]), rng.normal(size=DIM).tolist()))
    order = rng.permutation(len(records))
    return frame, [records[i] for i in order]


def _record(prompt: str, embedding: list[float]) -> dict[str, object]:
    digest = hashlib.sha256((prompt + EMBEDDING_MODEL).encode()).hexdigest()
    return {
        "prompt": prompt,
        "embedding": embedding,
        "hash": digest,
        "embedding_model": EMBEDDING_MODEL,
    }


def write(folder: Path, seed: int = 20240312) -> tuple[Path, Path]:
    """Write ``routerbench_0shot.pkl`` and ``embedding_cache_<model>.pkl`` into ``folder``."""
    frame, records = build(seed)
    data = folder / "routerbench_0shot.pkl"
    cache = folder / f"embedding_cache_{EMBEDDING_MODEL}.pkl"
    frame.to_pickle(data)
    cache.write_bytes(pickle.dumps(records))
    return data, cache
