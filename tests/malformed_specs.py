"""Malformed spec files, through ``validate`` and ``run`` (see ``malformed_cases.py``)."""

from __future__ import annotations

import random
from pathlib import Path

from malformed_cases import Case

HEAD = '[data]\nsynthetic_n = 3000\nfamilies = ["mmlu", "hellaswag"]\n[metrics]\nbootstrap = 0\n'
ORACLE = '[[routers]]\nname = "oracle"\n'

# (name, spec text): each must be refused before anything is computed.
FIXED: list[tuple[str, str]] = [
    ("unknown model", '[[routers]]\nname = "single"\nparams = { model = "no-such-model" }\n'),
    ("unknown strong", '[[routers]]\nname = "threshold"\nparams = { strong = "gpt-5" }\n'),
    ("unknown weak", '[[routers]]\nname = "threshold"\nparams = { weak = "nope" }\n'),
    ("huge k", '[[routers]]\nname = "knn"\nparams = { k = 1000000000000 }\n'),
    ("k past family", '[[routers]]\nname = "knn"\nparams = { k = 100000 }\n'),
    ("C inf", '[[routers]]\nname = "linear"\nparams = { C = inf }\n'),
    ("C nan", '[[routers]]\nname = "linear"\nparams = { C = nan }\n'),
    ("seed string", '[[routers]]\nname = "random"\nparams = { seed = "a" }\n'),
    ("seed negative", '[[routers]]\nname = "cascade"\nparams = { seed = -1 }\n'),
    ("k bool", '[[routers]]\nname = "knn"\nparams = { k = true }\n'),
    ("per_model string", '[[routers]]\nname = "mlp"\nparams = { per_model = "yes" }\n'),
    ("hidden empty", '[[routers]]\nname = "mlp"\nparams = { hidden = [] }\n'),
    ("hidden floats", '[[routers]]\nname = "mlp"\nparams = { hidden = [1.5] }\n'),
    ("eps string", '[[routers]]\nname = "cascade"\nparams = { eps = "0.1" }\n'),
    ("unknown router", '[[routers]]\nname = "knnn"\n'),
    ("unknown param", '[[routers]]\nname = "knn"\nparams = { kk = 3 }\n'),
    ("knobs nan", '[[routers]]\nname = "knn"\nknobs = [nan]\n'),
    ("knobs strings", '[[routers]]\nname = "knn"\nknobs = ["a"]\n'),
    ("knobs empty", '[[routers]]\nname = "knn"\nknobs = []\n'),
    ("knobs bool", '[[routers]]\nname = "knn"\nknobs = [true]\n'),
    ("grid empty", '[[routers]]\nname = "knn"\ngrid = { k = [] }\n'),
    ("grid bad value", '[[routers]]\nname = "knn"\ngrid = { k = [5, -1] }\n'),
    ("no routers", ""),
    ("routers not a list", 'routers = "knn"\n'),
]
SECTIONS: list[tuple[str, str]] = [
    ("bootstrap huge", "[metrics]\nbootstrap = 1000000000000\n"),
    ("bootstrap negative", "[metrics]\nbootstrap = -1\n"),
    ("bootstrap float", "[metrics]\nbootstrap = 2.5\n"),
    ("confidence 1", "[metrics]\nconfidence = 1.0\n"),
    ("aiq_range bad", '[metrics]\naiq_range = "all"\n'),
    ("synthetic_n 0", "[data]\nsynthetic_n = 0\n"),
    ("synthetic_n -1", "[data]\nsynthetic_n = -1\n"),
    ("synthetic_n huge", "[data]\nsynthetic_n = 1000000000000\n"),
    ("synthetic_n past memory", "[data]\nsynthetic_n = 50000000\n"),
    ("families nope", '[data]\nfamilies = ["all", "nope"]\n'),
    ("families unknown", '[data]\nfamilies = ["mmlux"]\n'),
    ("families empty", "[data]\nfamilies = []\n"),
    ("families number", "[data]\nfamilies = [1]\n"),
    ("folds huge", '[split]\nkind = "kfold"\nfolds = 1000000000\n'),
    ("folds 1", '[split]\nkind = "kfold"\nfolds = 1\n'),
    ("folds past family", '[split]\nkind = "kfold"\nfolds = 1000\n'),
    ("seeds bool", '[split]\nkind = "seeded"\nseeds = [true]\n'),
    ("seeds negative", '[split]\nkind = "seeded"\nseeds = [-3]\n'),
    ("seeds empty", '[split]\nkind = "seeded"\nseeds = []\n'),
    ("split kind", '[split]\nkind = "random"\n'),
    ("train_fraction 0", "[split]\ntrain_fraction = 0.0\n"),
    ("output empty", '[output]\nurl = ""\n'),
    ("unknown section", "[dat]\nurl = 1\n"),
    ("unknown key", "[data]\nurll = 1\n"),
    ("search kind", '[search]\nkind = "bayes"\n'),
    ("optuna without space", '[search]\nkind = "optuna"\n'),
    ("trials 0", "[search]\ntrials = 0\n"),
]
SPACE = '[search]\nkind = "optuna"\ntrials = 3\n[[routers]]\nname = "knn"\nspace = {{ k = {} }}\n'
SPACES: list[tuple[str, str]] = [
    ("space low > high", "{ low = 9, high = 2 }"),
    ("space log low 0", "{ low = 0, high = 5, log = true }"),
    ("space nan", "{ low = nan, high = 5 }"),
    ("space string bound", '{ low = "a", high = 5 }'),
    ("space step 0", "{ low = 1, high = 5, step = 0 }"),
    ("space choices empty", "{ choices = [] }"),
    ("space bad choice", "{ choices = [5, -1] }"),
    ("space no k fits", "{ low = 100000, high = 1000000000000 }"),
    ("space log string", '{ low = 1, high = 5, log = "yes" }'),
]


def _texts(rng: random.Random) -> list[tuple[str, str]]:
    out = [(n, HEAD + t) for n, t in FIXED]
    out += [(n, t + ORACLE) for n, t in SECTIONS]
    out += [(n, HEAD + SPACE.format(t)) for n, t in SPACES]
    out.append(("not toml", "[[routers\nname = oracle"))
    out.append(("deep lists", "[data]\nfamilies = " + "[" * 5000 + "]" * 5000 + "\n" + ORACLE))
    out.append(("deep tables", "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n"))
    out.append(("binary", "\x00\xff\xfe"))
    # Random junk values in random keys.
    keys = ["k", "eps", "seed", "alpha", "hidden", "max_iter", "quantile", "feature_dim"]
    values = ["-5", "0", "1e400", "-inf", "nan", '"x"', "[1, [2]]", "{}", "true", "1.5"]
    routers = ["knn", "mlp", "cascade", "linear", "threshold"]
    for _ in range(60):
        r, k, v = rng.choice(routers), rng.choice(keys), rng.choice(values)
        text = f'{HEAD}[[routers]]\nname = "{r}"\nparams = {{ {k} = {v} }}\n'
        out.append((f"junk {r}.{k}={v}", text))
    return out


def _valid_router(text: str) -> bool:
    """Whether a junk value is one the router accepts (then the spec must run)."""
    import tomllib

    from routerbench.engine.errors import RouterError
    from routerbench.routers.base import create

    r = tomllib.loads(text)["routers"][0]
    try:
        create(r["name"], **r["params"])
    except RouterError:
        return False
    return True


def cases(seed: int, folder: Path) -> list[Case]:
    rng = random.Random(seed)
    out = []
    for i, (name, text) in enumerate(_texts(rng)):
        path = folder / f"spec-{i}.toml"
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        ok = name.startswith("junk") and _valid_router(text)
        why = "a valid spec: its router accepts the value" if ok else ""
        out.append(Case("specs", f"validate: {name}", ["validate", str(path)], [], ok, why))
        argv = ["run", str(path), "--out", "out", "--quiet", "--no-plots"]
        out.append(Case("specs", f"run: {name}", argv, ["out"], ok, why))
    for argv in (["run", "--data", "", "--out", "out"], ["validate", "--data", " "]):
        out.append(Case("specs", f"empty --data ({argv[0]})", argv))
    return out
