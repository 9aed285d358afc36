"""A seeded corpus of malformed and hostile inputs for the ``routerbench`` command, and its judge.

Every case is a command line run in a fresh folder. The promise it checks: exit status 2, at most
two lines on stderr, no traceback, nothing written (outputs named by the case stay absent), or,
for odd-but-valid input, a documented success (``ok=True``: exit 0).

Case generators live in ``tests/malformed_<class>.py``, each with ``cases(seed, folder)``
returning a list of :class:`Case`; files a case needs are written into ``folder`` by the
generator and named by absolute path. Each case runs in an empty working folder of its own, so
relative outputs (``--out out``) land there and are checked there. ``tests/test_malformed.py``
runs a fast sample in CI; ``python tests/malformed_cases.py`` runs the whole corpus, each case
in a forked child (a crash is a finding, not the end of
the run), and prints the counts per class.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import random
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CASE_SECONDS = 300  # longer than any case should take on a loaded 2-core machine
CLASSES = ("pickles", "loaders", "names", "outputs", "specs")  # faults: tests of their own


@dataclass
class Case:
    """One command line. ``writes``: paths (relative to the case folder) that must not exist
    afterwards unless the case is ``ok``; ``ok``: documented success, exit 0 expected."""

    cls: str
    name: str
    argv: list[str]
    writes: list[str] = field(default_factory=lambda: ["out"])
    ok: bool = False
    why: str = ""  # for ok cases: where the success is documented


def data_verb(rng: random.Random, path: str, spec: str) -> tuple[list[str], list[str]]:
    """A command reading the data file ``path`` (info, convert or run with ``spec``), chosen by
    ``rng``, and the outputs it must not leave behind."""
    r = rng.random()
    if r < 0.6:
        return ["data", "info", path], ["out"]
    if r < 0.8:
        return ["data", "convert", path, "x.parquet"], ["x.parquet", "out"]
    return ["run", "--data", path, "--out", "out", "--no-plots", "--quiet", spec], ["out"]


@dataclass
class Verdict:
    case: Case
    rc: int
    stderr: str
    problems: list[str]


def judge(case: Case, rc: int, stdout: str, stderr: str, folder: Path) -> Verdict:
    """What broke the promise, if anything."""
    problems = []
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if case.ok:
        if rc != 0:
            problems.append(f"documented success, got exit {rc}")
    else:
        if rc != 2:
            problems.append(f"exit {rc}, expected 2")
        for rel in case.writes:
            if (folder / rel).exists():
                problems.append(f"wrote {rel}")
    if "Traceback" in stderr or "Traceback" in stdout:
        problems.append("traceback")
    if not case.ok and len(lines) > 2:
        problems.append(f"{len(lines)} lines on stderr")
    return Verdict(case, rc, stderr, problems)


def run_case(case: Case, folder: Path) -> Verdict:
    """Run one case in this process (``main(argv)``), in ``folder`` as working directory."""
    from routerbench.cluster.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(case.argv)
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 1
            except BaseException:
                import traceback

                traceback.print_exc()
                rc = 1
    finally:
        os.chdir(cwd)
    return judge(case, rc, out.getvalue(), err.getvalue(), folder)


def run_forked(case: Case, folder: Path) -> Verdict:
    """Run one case in a forked child, so a crash (SIGSEGV) is a verdict, not the end."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        signal.alarm(CASE_SECONDS)  # a case that hangs (a FIFO read) ends as a verdict
        v = run_case(case, folder)
        with os.fdopen(w, "w") as f:
            f.write(f"{v.rc}\n{v.stderr}")
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) or not data:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        what = f"hung (over {CASE_SECONDS} s)" if sig == signal.SIGALRM else f"crashed ({sig})"
        return Verdict(case, -sig, "", [what])
    rc_line, _, stderr = data.partition("\n")
    return judge(case, int(rc_line), "", stderr, folder)


def corpus(seed: int, root: Path, classes: tuple[str, ...] = CLASSES) -> list[tuple[Case, Path]]:
    """Every case of the given classes, each with its own folder under ``root``."""
    out = []
    for cls in classes:
        try:
            mod = importlib.import_module(f"malformed_{cls}")
        except ModuleNotFoundError:
            continue
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i, case in enumerate(mod.cases(seed, folder)):
            work = folder / f"work-{i}"  # the case's own working folder: outputs land here
            work.mkdir()
            out.append((case, work))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", nargs="+", default=list(CLASSES), choices=CLASSES)
    p.add_argument("--verbose", action="store_true", help="print every failing case")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    runner: Callable[[Case, Path], Verdict] = run_forked
    with tempfile.TemporaryDirectory() as tmp:
        cases = corpus(args.seed, Path(tmp), tuple(args.classes))
        total, bad = Counter[str](), Counter[str]()
        for case, folder in cases:
            v = runner(case, folder)
            total[case.cls] += 1
            if v.problems:
                bad[case.cls] += 1
                if args.verbose:
                    print(f"FAIL {case.cls}/{case.name}: {'; '.join(v.problems)}")
    for cls in args.classes:
        print(f"{cls:8s} {total[cls]:5d} cases, {bad[cls]:4d} broke the promise")
    print(f"total    {sum(total.values()):5d} cases, {sum(bad.values()):4d} broke the promise")
    return 1 if sum(bad.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
