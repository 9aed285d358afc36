"""A fast, seeded sample of the malformed-input corpus (``malformed_cases.py``; the whole corpus
runs as ``cd tests && python malformed_cases.py``): every case exits 2 with at most two lines and
no traceback, writes nothing, or is a documented success."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from malformed_cases import CLASSES, corpus, run_case

PER_CLASS = 12


def _sample(root: Path) -> list:
    picked = []
    for cls in CLASSES:
        cases = corpus(0, root / cls, (cls,))
        picked += random.Random(cls).sample(cases, min(PER_CLASS, len(cases)))
    return picked


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list:
    return _sample(tmp_path_factory.mktemp("malformed"))


def test_corpus_size(tmp_path: Path) -> None:
    """The corpus holds at least 1,000 cases over the classes of issue 11."""
    cases = corpus(0, tmp_path)
    assert len(cases) >= 1000, len(cases)
    assert {c.cls for c, _ in cases} >= {"pickles", "loaders", "names", "outputs", "specs"}


@pytest.mark.parametrize("i", range(PER_CLASS * len(CLASSES)))
def test_case_keeps_the_promise(sample: list, i: int) -> None:
    """One sampled case: exit 2, <= 2 lines, no traceback, nothing written (or documented ok)."""
    if i >= len(sample):
        pytest.skip("class has fewer cases")
    case, work = sample[i]
    verdict = run_case(case, work)
    assert not verdict.problems, f"{case.cls}/{case.name}: {verdict.problems}\n{verdict.stderr}"
