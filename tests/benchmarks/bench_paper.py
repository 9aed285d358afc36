"""The original RouterBench configuration end to end, with training, at 36,497 prompts.

7 families; KNN k = 5, 10, 40; MLP (100,) and (100, 100); linear SVR; cascade 11 budgets x 8
judge errors; oracle; zero router; every single model; 32 λ (plus the exact λ and budget paths).
Prints the wall time per router family and in total (target: under 60 s on 2 cores), and beside
it the same evaluation done the naive way for one KNN cell: refitting and re-predicting for every
λ, as the original does.

    python tests/benchmarks/bench_paper.py
"""

from __future__ import annotations

import time
import tomllib
from collections import defaultdict
from importlib.resources import files

import numpy as np

from routerbench.engine import synth
from routerbench.engine.paths import UPSTREAM_LAMBDAS
from routerbench.engine.splits import upstream_split
from routerbench.routers.base import create
from routerbench.routers.predictors import decide_lambda
from routerbench.sweeps.cells import evaluate_cell
from routerbench.sweeps.execute import plan, run_grid
from routerbench.sweeps.spec import parse


def main() -> None:
    t0 = time.perf_counter()
    data = synth.generate(36497, 0)
    t_data = time.perf_counter() - t0
    text = files("routerbench.sweeps").joinpath("routerbench-paper.toml").read_text()
    doc = tomllib.loads(text)
    doc["metrics"]["bootstrap"] = 0
    spec = parse(doc)
    p = plan(spec, data)
    per_router: dict[str, float] = defaultdict(float)
    t1 = time.perf_counter()
    splits = {s.name: s for s in p.splits}
    results = []
    for cell in p.cells:
        t = time.perf_counter()
        results.append(evaluate_cell(data, cell, splits[cell.split]))
        per_router[cell.router] += time.perf_counter() - t
    t_eval = time.perf_counter() - t1
    t2 = time.perf_counter()
    res = run_grid(spec, p, skip=lambda c: results[c.index])  # summarise only
    t_sum = time.perf_counter() - t2
    print(f"data generation: {t_data:.2f} s; {len(p.cells)} cells x {len(p.families)} families")
    for r, s in per_router.items():
        print(f"  {r:<8} {s:7.2f} s")
    total = t_data + t_eval + t_sum
    print(
        f"evaluation {t_eval:.2f} s, hulls/AIQ {t_sum:.2f} s, total {total:.2f} s "
        f"(target < 60 s); curves: {len(res.curves)}"
    )

    # Naive: the original's loop re-predicts for every λ. One KNN (k=10) cell on mmlu.
    fam = data.families == "mmlu"
    train_mask = upstream_split(data.families)
    train, test = data.take(fam & train_mask), data.take(fam & ~train_mask)
    t = time.perf_counter()
    fitted = create("knn", k=10, cost_model="upstream").fit(train)
    scores = fitted.score(test)
    ours = fitted.decide(scores, UPSTREAM_LAMBDAS)
    fitted.exact_path(scores, test)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    naive = []
    for lam in UPSTREAM_LAMBDAS:
        s = create("knn", k=10, cost_model="upstream").fit(train).score(test)
        naive.append(decide_lambda(s.P, s.C, np.array([lam]))[0])
    t_naive = time.perf_counter() - t
    assert (np.array(naive) == ours).all()
    print(
        f"KNN on mmlu, 32 λ: ours (score once, decide all λ, exact path) {t_ours:.2f} s; "
        f"naive (refit and predict per λ) {t_naive:.2f} s; ratio {t_naive / t_ours:.1f}x"
    )


if __name__ == "__main__":
    main()
