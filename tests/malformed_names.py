"""Odd and invalid names of models, prompts, families and eval names (``malformed_cases.py``).

Names that are not text (lone surrogates) are refused at load. Odd but valid names (very long,
TeX-like, slashes, dots, newlines, right-to-left, emoji) are documented successes: file names
derived from them are slugs plus a short hash, and text drawn in plots is escaped.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
from pathlib import Path

import numpy as np
import pandas as pd
from malformed_cases import Case

from routerbench.engine import io, synth

SPEC = """
[data]
families = ["all"]
[[routers]]
name = "single"
[[routers]]
name = "oracle"
[[routers]]
name = "knn"
params = { k = 2 }
[metrics]
bootstrap = 10
"""
ODD = [
    "x" * 300,
    "$\\frac{$",
    "$x^2$",
    "a/b/../c",
    "..",
    ".hidden",
    "line\nbreak",
    "tab\there",
    "שלום",
    "名前",
    "🙂 emoji",
    "<script>alert(1)</script>",
    "'; DROP TABLE runs; --",
    "100% \\ back",
    " spaced ",
    "C:\\dos\\path",
    "%s %d {0}",
    "a" * 5000,
]
INVALID = ["bad\udc80name", "\ud800", "x\udfffy"]
ODD_DOC = "README: names are validated as text once at load; file names are slugs plus a hash"


def _base(seed: int) -> object:
    d = synth.generate(400, seed=seed)
    keep = np.isin(d.families, ["mmlu", "hellaswag", "arc-challenge"])
    return d.take(keep)


def _renamed(d: object, where: str, name: str, rng: random.Random) -> object:
    """The data with one model, family, eval name or prompt id renamed to ``name``."""
    if where == "model":
        models = list(d.models)  # type: ignore[attr-defined]
        models[rng.randrange(len(models))] = name
        return dataclasses.replace(d, models=tuple(models))  # type: ignore[type-var]
    if where == "family":
        fams = d.families.copy()  # type: ignore[attr-defined]
        fams[fams == fams[0]] = name
        return dataclasses.replace(d, families=fams)  # type: ignore[type-var]
    if where == "eval_name":
        ev = d.eval_names.copy()  # type: ignore[attr-defined]
        ev[rng.randrange(len(ev))] = name
        return dataclasses.replace(d, eval_names=ev)  # type: ignore[type-var]
    ids = d.prompt_ids.copy()  # type: ignore[attr-defined]
    ids[rng.randrange(len(ids))] = name
    return dataclasses.replace(d, prompt_ids=ids)  # type: ignore[type-var]


def _pickle_with(folder: Path, i: int, seed: int, where: str, bad: str) -> Path:
    """An upstream wide pickle with one name replaced by ``bad`` (not valid text)."""
    src = folder / f"base-{seed}.pkl"
    if not src.exists():
        io.save(_base(seed), str(src), format="upstream-wide")  # type: ignore[arg-type]
    df = pickle.loads(src.read_bytes())  # our own file: trusted
    if where == "model":
        model = df.columns[3]
        cols = [c.replace(model, bad) if c.split("|")[0] == model else c for c in df.columns]
        df.columns = pd.Index(cols, dtype=object)
    else:
        col = "sample_id" if where == "prompt_id" else "eval_name"
        values = df[col].astype(object).to_numpy(copy=True)
        values[0] = bad
        df[col] = pd.Series(values, index=df.index, dtype=object)
    path = folder / f"bad-{i}.pkl"
    path.write_bytes(pickle.dumps(df, protocol=4))
    return path


def cases(seed: int, folder: Path) -> list[Case]:
    rng = random.Random(seed)
    spec = folder / "spec.toml"
    spec.write_text(SPEC)
    base = _base(seed)
    out = []
    for i, name in enumerate(ODD):
        for where in ("model", "family", "eval_name", "prompt_id"):
            path = folder / f"odd-{i}-{where}.parquet"
            io.save(_renamed(base, where, name, rng), str(path))  # type: ignore[arg-type]
            label = f"{where} {name[:20]!r}"
            argv = ["run", str(spec), "--data", str(path), "--out", "out", "--quiet"]
            out.append(Case("names", f"run, {label}", argv, [], True, ODD_DOC))
            out.append(
                Case("names", f"info, {label}", ["data", "info", str(path)], [], True, ODD_DOC)
            )
    for i, bad in enumerate(INVALID * 3):
        where = ("model", "prompt_id", "eval_name")[i % 3]
        path = _pickle_with(folder, i, seed, where, bad)
        label = f"{where} {bad!r}"
        argv = ["run", str(spec), "--data", str(path), "--out", "out", "--quiet"]
        out.append(Case("names", f"run, {label}", argv, ["out"]))
        out.append(Case("names", f"info, {label}", ["data", "info", str(path)], []))
        argv = ["data", "convert", str(path), "out/x.parquet"]
        out.append(Case("names", f"convert, {label}", argv, ["out"]))
    return out
