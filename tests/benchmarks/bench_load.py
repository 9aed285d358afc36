"""Load a RouterBench-sized upstream wide pickle: our safe loader vs. pd.read_pickle.

Builds the 36,497-row synthetic set (11 models, prompts as in the published files), writes it
with ``to_upstream_wide_frame`` and pickle protocol 4, and times ``io.load`` (restricted
unpickler + validation into RoutingData) against ``pd.read_pickle`` (unsafe; frame only). A second
row repeats it with one 20,000-character prompt among the others.

Run: ``python tests/benchmarks/bench_load.py`` (target: our load under 3 s).
"""

from __future__ import annotations

import functools
import os
import pickle
import tempfile
import time
from collections.abc import Callable

import pandas as pd

from routerbench.engine import io, synth


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    data = synth.generate(features_dim=0)
    frame = io.to_upstream_wide_frame(data)
    long_prompt = frame.copy()
    long_prompt.loc[0, "prompt"] = repr(["x" * 20_000])
    mean_len = frame["prompt"].str.len().mean()
    print(f"{len(frame)} rows x {frame.shape[1]} columns, mean prompt {mean_len:.0f} chars")
    print(f"{'case':<24} {'file MB':>8} {'io.load s':>10} {'read_pickle s':>14} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for case, f in (("published shape", frame), ("one 20k-char prompt", long_prompt)):
            path = os.path.join(tmp, "routerbench_0shot.pkl")
            with open(path, "wb") as fh:
                pickle.dump(f, fh, protocol=4)
            ours = best_of(functools.partial(io.load, path))
            naive = best_of(functools.partial(pd.read_pickle, path))  # our own file (unsafe path)
            size = os.path.getsize(path) / 1e6
            print(f"{case:<24} {size:>8.1f} {ours:>10.3f} {naive:>14.3f} {ours / naive:>6.2f}")


if __name__ == "__main__":
    main()
