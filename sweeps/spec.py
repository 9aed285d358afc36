"""Sweep spec files (TOML): what to evaluate, on which data and split, and how to search.

Every field, its type, default and meaning, in one place (``FIELDS`` below; ``routerbench validate``
prints the plan a spec makes). A spec is parsed into a frozen :class:`Spec`; mistakes raise
:class:`SpecError` with one line naming the key and the allowed values.

Example::

    [data]
    url = ""                      # empty: the embedded synthetic data set
    families = ["paper"]          # "paper": the seven paper families; "all"; or names

    [split]
    kind = "upstream"             # upstream | seeded | ood | kfold
    seeds = [0]

    [[routers]]
    name = "knn"
    grid = { k = [5, 10, 40] }    # one cell per combination
    params = { cost_model = "expected" }

    [search]
    kind = "grid"                 # grid | optuna

    [output]
    url = "runs"
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from routerbench.engine.errors import RouterError, SpecError, did_you_mean
from routerbench.routers.base import REGISTRY, create, load_all
from routerbench.sweeps.split import SPLIT_KINDS

SEARCH_KINDS = ("grid", "optuna")
SAMPLERS = ("tpe", "random")
OBJECTIVES = ("aiq", "max_quality")
AIQ_RANGES = ("single-models", "common")


# Every field of a spec: section -> key -> (type, default, help). The one place they are described.
FIELDS: dict[str, dict[str, tuple[type | tuple[type, ...], Any, str]]] = {
    "data": {
        "url": (str, "", "outcome data URL; empty: the embedded synthetic data set"),
        "synthetic_n": (int, 36497, "prompts of the synthetic data set (when url is empty)"),
        "synthetic_seed": (int, 0, "seed of the synthetic data set"),
        "families": (list, ["paper"], '"paper" (the seven paper families), "all", or names'),
        "features": (
            str,
            "",
            "prompt vectors URL: the original's embedding cache (.pkl) or a Parquet/CSV table "
            "keyed by prompt_id or prompt; empty: the data's own features, else TF-IDF + SVD",
        ),
    },
    "split": {
        "kind": (str, "upstream", f"one of {list(SPLIT_KINDS)}"),
        "seeds": (list, [0], "split seeds (seeded, kfold); upstream always uses 42"),
        "train_fraction": (float, 0.7, "train share per family (seeded)"),
        "folds": (int, 5, "number of folds (kfold)"),
        "validation_fraction": (float, 0.2, "share of train held out to score Optuna trials"),
        "max_train": (
            int,
            1_000_000,
            "most training prompts a router is fitted on per family: above it, a seeded sample "
            "of this many (0: no bound)",
        ),
    },
    "search": {
        "kind": (str, "grid", f"one of {list(SEARCH_KINDS)}"),
        "trials": (int, 50, "Optuna trials"),
        "sampler": (str, "tpe", f"Optuna sampler, one of {list(SAMPLERS)}"),
        "objective": (list, ["aiq"], f"objective(s) to maximise, from {list(OBJECTIVES)}"),
        "parallel": (int, 2, "Optuna trials evaluated at once"),
        "seed": (int, 0, "sampler seed"),
    },
    "metrics": {
        "aiq_range": (str, "single-models", f"one of {list(AIQ_RANGES)}"),
        "bootstrap": (int, 200, "bootstrap replicates over prompts (0: no intervals)"),
        "confidence": (float, 0.95, "interval confidence level"),
    },
    "output": {
        "url": (str, "runs", "results folder or URL"),
    },
}
# Allowed ranges of numeric keys (inclusive). Upper bounds keep a typo from asking for work no
# machine can do: 10**7 replicates or 1000 folds are far past what changes any reported digit.
RANGES: dict[str, tuple[int, int]] = {
    "data.synthetic_n": (1, 50_000_000),
    "data.synthetic_seed": (0, 2**63 - 1),
    "split.folds": (2, 1000),
    "split.max_train": (0, 2**63 - 1),
    "search.trials": (1, 1_000_000),
    "search.parallel": (1, 10_000),
    "search.seed": (0, 2**63 - 1),
    "metrics.bootstrap": (0, 100_000),
}
ROUTER_KEYS = {
    "name": "registered router name",
    "params": "fixed hyperparameters",
    "grid": "hyperparameter -> list of values; one cell per combination",
    "space": "Optuna search space: hyperparameter -> {low, high, log} or {choices}",
    "knobs": "operating points: a list of knob values (default: the router's own)",
}


@dataclass(frozen=True)
class RouterSpec:
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    space: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    knobs: tuple[float, ...] | None = None

    def cells(self) -> list[dict[str, Any]]:
        """Parameter dicts of the grid, key-sorted, in a stable order."""
        keys = sorted(self.grid)
        combos = itertools.product(*(self.grid[k] for k in keys))
        return [{**self.params, **dict(zip(keys, c, strict=True))} for c in combos]


@dataclass(frozen=True)
class Spec:
    data: Mapping[str, Any]
    split: Mapping[str, Any]
    search: Mapping[str, Any]
    metrics: Mapping[str, Any]
    output: Mapping[str, Any]
    routers: tuple[RouterSpec, ...]
    source: str = "<spec>"
    text: str = ""

    @property
    def hash(self) -> str:
        """sha256 of the canonical (parsed, defaults filled) spec: what the results depend on."""
        doc = {k: getattr(self, k) for k in ("data", "split", "search", "metrics")} | {
            "routers": [dataclasses.asdict(r) for r in self.routers]
        }
        canon = json.dumps(doc, sort_keys=True, default=list, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


def _known_keys(src: str, where: str, table: Mapping[str, Any], allowed: Iterable[str]) -> None:
    names = sorted(allowed)
    for key in table:
        if key not in names:
            raise SpecError(
                f"{src}: unknown key '{where}.{key}', allowed: {names}" + did_you_mean(key, names)
            )


def _typed(src: str, key: str, value: Any, typ: type | tuple[type, ...], default: Any) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is list and not isinstance(value, list):
        value = [value]
    if (isinstance(value, bool) and typ is not bool) or not isinstance(value, typ):
        want = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise SpecError(f"{src}: key {key!r} must be {want} (got {value!r})")
    return value


def _check_choice(src: str, key: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise SpecError(
            f"{src}: key {key!r} must be one of {list(allowed)} (got {value!r})"
            + did_you_mean(str(value), allowed)
        )


def _router(src: str, i: int, raw: Any) -> RouterSpec:
    at = f"routers[{i}]"
    if not isinstance(raw, dict):
        raise SpecError(f"{src}: {at} must be a table with a 'name' (got {raw!r})")
    _known_keys(src, at, raw, ROUTER_KEYS)
    name = raw.get("name")
    load_all()
    if not isinstance(name, str) or name not in REGISTRY:
        raise SpecError(
            f"{src}: '{at}.name' must be one of {sorted(REGISTRY)} (got {name!r})"
            + did_you_mean(str(name), sorted(REGISTRY))
        )
    params, grid, space = _router_tables(src, at, name, raw)
    knobs = _router_knobs(src, at, name, raw.get("knobs"))
    spec = RouterSpec(name=name, params=params, grid=grid, space=space, knobs=knobs)
    for cell in spec.cells():  # construct each cell's router: bad values fail here, not mid-run
        if name == "single" and "model" not in cell:
            continue  # every model of the data, expanded when the data is known
        try:
            create(name, **cell)
        except RouterError as e:
            raise SpecError(f"{src}: {at}: {e}") from None
    return spec


def _router_tables(
    src: str, at: str, name: str, raw: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[Any]], dict[str, Any]]:
    """A router entry's ``params``, ``grid`` and ``space`` tables, checked (lists as tuples)."""
    allowed = [f.name for f in dataclasses.fields(REGISTRY[name])]
    params = _typed(src, f"{at}.params", raw.get("params", {}), dict, {})
    grid = _typed(src, f"{at}.grid", raw.get("grid", {}), dict, {})
    space = _typed(src, f"{at}.space", raw.get("space", {}), dict, {})
    for part, table in (("params", params), ("grid", grid), ("space", space)):
        for key in table:
            if key not in allowed:
                raise SpecError(
                    f"{src}: '{at}.{part}.{key}' is not a parameter of router {name!r}, "
                    f"allowed: {allowed}" + did_you_mean(key, allowed)
                )
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(
                f"{src}: '{at}.grid.{key}' must be a non-empty list of values (got {values!r})"
            )
        grid[key] = [tuple(v) if isinstance(v, list) else v for v in values]
    for key, dist in space.items():
        ok = isinstance(dist, dict) and (
            ("choices" in dist and isinstance(dist["choices"], list) and dist["choices"])
            or ({"low", "high"} <= set(dist) and set(dist) <= {"low", "high", "log", "step"})
        )
        if not ok:
            raise SpecError(
                f"{src}: '{at}.space.{key}' must be {{low, high[, log, step]}} or "
                f"{{choices = [...]}} (got {dist!r})"
            )
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return params, grid, space


def _router_knobs(src: str, at: str, name: str, knobs: Any) -> tuple[float, ...] | None:
    """A router entry's ``knobs``: None, or a non-empty list of numbers its router accepts."""
    if knobs is None:
        return None
    knobs = _typed(src, f"{at}.knobs", knobs, list, None)
    if not knobs or not all(
        isinstance(x, int | float) and not isinstance(x, bool) and x == x for x in knobs
    ):
        raise SpecError(
            f"{src}: '{at}.knobs' must be a non-empty list of numbers (NaN is not a knob)"
        )
    out = tuple(float(x) for x in knobs)
    if problem := REGISTRY[name].check_knobs(out):
        raise SpecError(f"{src}: '{at}.knobs': {problem}")
    return out


def parse(doc: Mapping[str, Any], *, source: str = "<spec>", text: str = "") -> Spec:
    """Validate a parsed TOML document and fill defaults."""
    sections = {*FIELDS, "routers"}
    for key in doc:
        if key not in sections:
            raise SpecError(
                f"{source}: unknown section {key!r}, allowed: {sorted(sections)}"
                + did_you_mean(key, sorted(sections))
            )
    parsed: dict[str, dict[str, Any]] = {}
    for section, fields in FIELDS.items():
        raw = doc.get(section, {})
        if not isinstance(raw, dict):
            raise SpecError(f"{source}: [{section}] must be a table (got {raw!r})")
        _known_keys(source, section, raw, fields)
        parsed[section] = {
            key: _typed(source, f"{section}.{key}", raw.get(key, default), typ, default)
            for key, (typ, default, _) in fields.items()
        }
    _check_choice(source, "split.kind", parsed["split"]["kind"], SPLIT_KINDS)
    _check_choice(source, "search.kind", parsed["search"]["kind"], SEARCH_KINDS)
    _check_choice(source, "search.sampler", parsed["search"]["sampler"], SAMPLERS)
    _check_choice(source, "metrics.aiq_range", parsed["metrics"]["aiq_range"], AIQ_RANGES)
    for obj in parsed["search"]["objective"]:
        _check_choice(source, "search.objective", obj, OBJECTIVES)
    for key, (lo, hi) in RANGES.items():
        sec, k = key.split(".")
        if not lo <= parsed[sec][k] <= hi:
            raise SpecError(f"{source}: key {key!r} must be in [{lo}, {hi}] (got {parsed[sec][k]})")
    if parsed["output"]["url"].strip() == "":
        raise SpecError(f"{source}: key 'output.url' must not be empty (a folder or URL)")
    fams = parsed["data"]["families"]
    if not fams or not all(isinstance(f, str) and f for f in fams):
        raise SpecError(f"{source}: key 'data.families' must be a non-empty list of names")
    for key in ("split.train_fraction", "split.validation_fraction", "metrics.confidence"):
        sec, k = key.split(".")
        if not 0.0 < parsed[sec][k] < 1.0:
            raise SpecError(f"{source}: key {key!r} must be in (0, 1) (got {parsed[sec][k]})")
    if not parsed["split"]["seeds"] or not all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**63
        for s in parsed["split"]["seeds"]
    ):
        raise SpecError(
            f"{source}: key 'split.seeds' must be a non-empty list of integers in [0, 2**63)"
        )
    raw_routers = doc.get("routers", [])
    if not isinstance(raw_routers, list) or not raw_routers:
        raise SpecError(f"{source}: [[routers]] must list at least one router")
    routers = tuple(_router(source, i, r) for i, r in enumerate(raw_routers))
    if parsed["search"]["kind"] == "optuna" and not any(r.space for r in routers):
        raise SpecError(f"{source}: search.kind 'optuna' needs a 'space' in at least one router")
    return Spec(**parsed, routers=routers, source=source, text=text)  # type: ignore[arg-type]


def load(path: str) -> Spec:
    """Read and validate a spec file (local path or fsspec URL)."""
    import fsspec

    try:
        with fsspec.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read spec file ({e})") from None
    try:
        text = raw.decode()
        doc = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise SpecError(f"{path}: not valid TOML ({e})") from None
    except RecursionError:
        raise SpecError(f"{path}: not a spec: its tables or lists are nested too deeply") from None
    return parse(doc, source=path, text=text)


def describe_fields() -> str:
    """Every spec key with its type, default and meaning (for ``routerbench validate --fields``)."""
    lines = []
    for section, fields in FIELDS.items():
        lines.append(f"[{section}]")
        for key, (typ, default, help_) in fields.items():
            tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
            lines.append(f"  {key:<20} {tname:<6} default {default!r:<14} {help_}")
    lines.append("[[routers]]")
    lines.extend(f"  {k:<20} {v}" for k, v in ROUTER_KEYS.items())
    return "\n".join(lines)
