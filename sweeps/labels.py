"""Which rows are references, and the short label of every router configuration.

References (:data:`REFERENCES`) are not routers to rank: a single model, the oracle (it sees the
outcomes), the zero router (mixtures of single models, no learning) and the oracle frontier (the
ceiling). Tables, plots and the leaderboard rank routers among themselves and show references
beside them.

A label is the router's name plus the hyperparameters that vary between its configurations in
the table, or differ from their defaults, with numbers to 3 significant digits:
``knn(k=10)``, ``mlp(alpha=0.0703, hidden=100)``; an Optuna trial is ``mlp#17``; a single model is
``single:<model>``. Labels are unique within a table: where two configurations would share one,
both get their parameters in full.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

REFERENCES = ("single", "oracle", "zero", "frontier")

# What AIQ means for a reference with one operating point (shown under tables and on the page).
ONE_POINT_NOTE = (
    "AIQ of a single operating point (a single model, the oracle): its quality times the share "
    "of the AIQ cost range [c_min, c_max] at or above its cost, so the dearest model scores 0."
)


def kind(router: str) -> str:
    """``"reference"`` or ``"router"``."""
    return "reference" if router in REFERENCES else "router"


def _defaults(router: str) -> dict[str, Any]:
    from routerbench.routers.base import REGISTRY, load_all

    load_all()
    cls = REGISTRY.get(router)
    if cls is None:
        return {}
    return {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }


def _canon(v: object) -> str:
    return json.dumps(v, sort_keys=True, default=list)


def _num(v: object, full: bool) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if isinstance(v, int) or full:
        return repr(v)
    return f"{v:.3g}"


def _fmt(v: object, full: bool = False) -> str:
    if isinstance(v, list | tuple):
        return ",".join(_num(x, full) for x in v)
    return _num(v, full)


def _shown(router: str, p: dict[str, Any], varying: set[str]) -> dict[str, Any]:
    defaults = _defaults(router)
    return {
        k: v
        for k, v in p.items()
        if k in varying or (k != "seed" and (k not in defaults or _canon(defaults[k]) != _canon(v)))
    }


def _one(router: str, p: dict[str, Any], shown: dict[str, Any], full: bool) -> str:
    if router == "single":
        return f"single:{p.get('model', '?')}"
    if not shown:
        return router
    return router + "(" + ", ".join(f"{k}={_fmt(v, full)}" for k, v in sorted(shown.items())) + ")"


def short_labels(
    routers: Iterable[str], params: Iterable[str], trials: Iterable[Any] | None = None
) -> list[str]:
    """The label of each row (``params``: canonical JSON; ``trials``: the Optuna trial slot of a
    row, or a negative number / None / NaN for a grid cell)."""
    routers, params = list(routers), list(params)
    trials = None if trials is None else list(trials)
    ps = [json.loads(p) if p else {} for p in params]
    values: dict[tuple[str, str], set[str]] = {}
    for r, p in zip(routers, ps, strict=True):
        for k, v in p.items():
            values.setdefault((r, k), set()).add(_canon(v))
    varying = {rk for rk, vs in values.items() if len(vs) > 1}
    out = []
    for i, (r, p) in enumerate(zip(routers, ps, strict=True)):
        t = None if trials is None else trials[i]
        if t is not None and t == t and int(t) >= 0:
            out.append(f"{r}#{int(t)}")
            continue
        out.append(_one(r, p, _shown(r, p, {k for (rr, k) in varying if rr == r}), False))
    seen: dict[str, set[str]] = {}
    for lab, p in zip(out, params, strict=True):
        seen.setdefault(lab, set()).add(p)
    for i, (r, p) in enumerate(zip(routers, ps, strict=True)):
        if len(seen[out[i]]) > 1 and "#" not in out[i]:  # shared by different configurations
            out[i] = _one(r, p, _shown(r, p, set(p)), True)
    return out


def label(router: str, params: str) -> str:
    """The label of one configuration on its own (nothing varies): its non-default parameters."""
    return short_labels([router], [params])[0]
