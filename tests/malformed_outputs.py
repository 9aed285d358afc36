"""Malformed output locations for every verb that writes (see ``malformed_cases.py``)."""

from __future__ import annotations

import random
from pathlib import Path

from malformed_cases import Case

from routerbench.engine import io, synth

SPEC = """
[data]
synthetic_n = 400
families = ["all"]
[[routers]]
name = "oracle"
[metrics]
bootstrap = 0
"""

# Places results cannot go, and why the case expects a refusal.
BAD = [
    "/dev/null/runs",
    "/dev/null",
    "/proc/routerbench",
    "/proc/self/routerbench",
    "/sys/routerbench",
    "runs\0x",
    "bogusproto://runs",
    "http://127.0.0.1:9/runs",
    "https://127.0.0.1:9/runs",
    "memory://runs",
    "zip://runs",
    "github://runs",
    "",
    "   ",
    "s3://routerbench-no-credentials/runs",
    "file:///dev/null/runs",
    "x" * 300 + "/runs",
    "a/" + "y" * 300,
]


def _bad_locations(rng: random.Random, folder: Path) -> list[str]:
    blocker = folder / "a-file"
    blocker.write_text("not a folder")
    extra = [str(blocker), str(blocker / "runs"), f"file://{blocker}/runs"]
    extra += [f"{rng.choice(['/dev/null', str(blocker)])}/{rng.randrange(10**6)}" for _ in range(4)]
    return BAD + extra


def cases(seed: int, folder: Path) -> list[Case]:
    rng = random.Random(seed)
    spec = folder / "spec.toml"
    spec.write_text(SPEC)
    data = folder / "data.parquet"
    io.save(synth.generate(300, seed=seed), str(data))
    out = []
    for loc in _bad_locations(rng, folder):
        tag = repr(loc[:40])
        if loc == str(folder / "a-file"):  # an existing file: a data file may replace it
            ok = "README: data convert/synth write OUT (an existing file is replaced)"
            out += [
                Case(
                    "outputs",
                    f"convert onto {tag}",
                    ["data", "convert", str(data), loc, "--format", "parquet"],
                    [],
                    True,
                    ok,
                ),
                Case(
                    "outputs",
                    f"synth onto {tag}",
                    ["data", "synth", "--out", loc, "--n", "50", "--format", "parquet"],
                    [],
                    True,
                    ok,
                ),
            ]
            (folder / "a-file").write_text("not a folder")
            continue
        out += [
            Case("outputs", f"run --out {tag}", ["run", str(spec), "--out", loc, "--quiet"], []),
            Case(
                "outputs",
                f"run --no-plots --out {tag}",
                ["run", str(spec), "--data", str(data), "--out", loc, "--no-plots", "--quiet"],
                [],
            ),
            Case("outputs", f"convert to {tag}", ["data", "convert", str(data), loc], []),
            Case(
                "outputs",
                f"convert long to {tag}",
                ["data", "convert", str(data), loc, "--format", "long"],
                [],
            ),
            Case("outputs", f"synth to {tag}", ["data", "synth", "--out", loc, "--n", "50"], []),
            Case(
                "outputs",
                f"leaderboard to {tag}",
                ["leaderboard", "refresh", "--runs", str(folder / "no-runs"), "--out", loc],
                [],
            ),
        ]
    # Odd but valid: '~' is the home folder; a relative folder is made.
    out.append(
        Case(
            "outputs",
            "run --out relative/nested",
            ["run", str(spec), "--out", "relative/nested", "--no-plots", "--quiet"],
            ok=True,
            why="README: every command takes a local path or any fsspec URL",
        )
    )
    return out
