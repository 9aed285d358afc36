"""The result tables' columns, each with what it holds: the one place they are described.

``points``: one row per (cell, family, knob value); ``curves``: one row per (cell, family);
``trials``: one row per Optuna trial (Optuna runs). Every table written by
``routerbench run`` also carries ``run_id``, ``spec_hash`` and ``data_fingerprint``; the run's
``manifest.json`` adds the data source, package version, creation time and wall time.
"""

from __future__ import annotations

MIN_N = 2  # a family with fewer test prompts gets no interval at all (NaN)
SMALL_N = 30  # fewer: its intervals are flagged as unreliable (small_sample)

POINTS: dict[str, str] = {
    "cell_id": "stable id of the cell: its position in the plan, router name, hash of params/split",
    "family": "task family (eval-name prefix, e.g. mmlu) the prompts belong to",
    "split": "split name: upstream, seeded-<seed>, kfold-<seed>-<fold>, ood, custom",
    "router": "registry name of the router (single, oracle, zero, knn, cascade, ...)",
    "params": "the router's hyperparameters as canonical JSON (sorted keys)",
    "knob_name": "the swept knob: lambda, budget, threshold, target_cost, or '' for none",
    "knob": "the knob's value at this operating point (NaN for routers without a knob)",
    "cost_sum": "sum over the family's test prompts of the realised cost (USD), as upstream",
    "cost_mean": "mean realised cost per query (USD)",
    "quality_mean": "mean realised quality over the test prompts",
    "n": "number of test prompts",
    "status": "ok, or failed (the cell raised; see error)",
    "error": "the error of a failed cell ('' when ok)",
    "seconds": "wall time of fitting the cell on this family (not part of the results' identity)",
    "quality_lo": "lower end of the percentile bootstrap interval of quality_mean (NaN without "
    f"bootstrap or with n < {MIN_N}; see curves' small_sample)",
    "quality_hi": "upper end of the bootstrap interval of quality_mean",
    "cost_lo": "lower end of the bootstrap interval of cost_mean",
    "cost_hi": "upper end of the bootstrap interval of cost_mean",
}

CURVES: dict[str, str] = {
    "cell_id": "as in points",
    "family": "as in points",
    "split": "as in points",
    "router": "as in points",
    "params": "as in points",
    "kind": "'router', or 'reference': single, oracle, zero and frontier, shown beside the "
    "routers and not ranked with them",
    "label": "short display name, unique in the run: the router and the hyperparameters that "
    "vary or differ from their defaults (3 significant digits); an Optuna trial as mlp#17",
    "trial": "the Optuna trial (slot) a configuration comes from; -1 for a grid cell",
    "hull_cost": "mean cost per query at the vertices of the non-decreasing convex hull",
    "hull_quality": "mean quality at the hull's vertices (from the exact path where one exists)",
    "aiq": "the paper's AIQ: mean of the hull over [c_min, c_max]",
    "aiq_lo": "lower end of AIQ's percentile bootstrap interval, in [0, 1] (NaN without "
    f"bootstrap or with n_test < {MIN_N})",
    "aiq_hi": "upper end of AIQ's bootstrap interval",
    "c_min": "lower end of the AIQ cost range (cheapest single model's mean cost by default)",
    "c_max": "upper end of the AIQ cost range (dearest single model's mean cost by default)",
    "aiq_upstream": "the original code's calc_AIQ, exactly: its own hull of the router's grid "
    "points (cost sums), extended flat to the largest hull cost X over the routers of the same "
    "family and split, area from the router's first point, divided by X; NaN where calc_AIQ fails",
    "aiq_upstream_note": "why aiq_upstream is NaN (e.g. fewer than 3 distinct costs: the "
    "original's hull raises IndexError); '' when it is a number",
    "aiq_upstream_path": "the original's formula on our exact hull of the router's curve (its "
    "exact path where one exists): differs from aiq_upstream where the path has points the grid "
    "lacks",
    "max_quality": "highest mean quality over the router's operating points",
    "max_quality_lo": "lower end of max quality's bootstrap interval",
    "max_quality_hi": "upper end of max quality's bootstrap interval",
    "cost_at_max_quality": "mean cost per query at the first operating point reaching it",
    "n_test": "number of test prompts of the family (points' n)",
    "small_sample": f"true when n_test < {SMALL_N}: too few test prompts for the intervals to "
    f"be trusted (with n_test < {MIN_N} there are none: NaN)",
    "boot_excluded": "bootstrap replicates left out of the intervals: every test prompt drew "
    "weight 0, so the replicate has no mean (about B * exp(-n_test))",
    "aiq_frontier": "the family's ceiling: AIQ of the oracle frontier (per prompt, true quality "
    "minus lambda * cost, over the exact lambda path), the best any router could do at every cost",
    "gap_closed": "(aiq - AIQ of the zero router) / (aiq_frontier - AIQ of the zero router): 0 "
    "is no better than mixing single models, 1 is the frontier; negative below the zero router",
    "gap_closed_lo": "lower end of the gap's percentile interval over the paired bootstrap "
    "replicates (each replicate's own zero and frontier AIQ)",
    "gap_closed_hi": "upper end of the gap's interval",
    "aiq_reps": "AIQ of every bootstrap replicate (NaN: a replicate with no weight), shifted by "
    "the exact path's difference from the grid so that they centre on aiq; replicate b of every "
    "row of a family reweights the same prompts, so rows can be compared pairwise",
    "max_quality_reps": "max quality of every bootstrap replicate, shifted likewise",
}

TRIALS: dict[str, str] = {
    "trial": "the trial's slot: its position in the search (a retry keeps it)",
    "router": "registry name of the trial's router",
    "params": "canonical JSON of every hyperparameter of the router",
    "validation_aiq": "mean over families of the trial's AIQ on the validation rows (present when "
    "aiq is an objective)",
    "validation_max_quality": "mean over families of its max quality on the validation rows "
    "(present when max_quality is an objective)",
    "state": "COMPLETE, or FAIL (evaluation error, or interrupted)",
    "duration": "wall seconds from ask to tell (the trials of a batch overlap); NaN if unfinished",
    "is_best": "the best trial, or on the Pareto front when there are two objectives",
    "error": "why a trial failed; 'interrupted' when its process stopped (its slot re-run)",
}
