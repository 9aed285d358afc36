"""engine/memo.py: the bounded in-process cache, against a plain model of first-in-first-out."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routerbench.engine import memo
from routerbench.engine.memo import Bounded


def _model(size: int, keys: list[int]) -> tuple[list[int], list[int]]:
    """What a first-in-first-out cache of ``size`` does on ``keys``: the keys made (in order)
    and the keys held at the end (oldest first), written out by hand."""
    held: list[int] = []
    made = []
    for k in keys:
        if k not in held:
            made.append(k)
            if len(held) == size:
                held.pop(0)
            held.append(k)
    return made, held


class TestBoundedGet:
    def test_makes_once_and_returns_stored(self) -> None:
        """A key is made once; later gets return the stored object itself."""
        cache = Bounded[str, list[int]](4)
        first = cache.get("a", lambda: [1])
        assert cache.get("a", lambda: [2]) is first and first == [1]

    def test_evicts_oldest(self) -> None:
        """The 17th key of a size-16 cache evicts the first one stored, and only it."""
        cache = Bounded[str, int](16)
        for i in range(17):
            cache.get(f"k{i}", lambda i=i: i)
        assert len(cache) == 16 and "k0" not in cache
        assert all(f"k{i}" in cache for i in range(1, 17))
        assert cache.get("k0", lambda: -1) == -1 and "k1" not in cache

    def test_hit_does_not_refresh(self) -> None:
        """Reading an entry does not make it younger (first in, first out, not LRU)."""
        cache = Bounded[str, int](2)
        cache.get("a", lambda: 1)
        cache.get("b", lambda: 2)
        cache.get("a", lambda: 0)
        cache.get("c", lambda: 3)
        assert "a" not in cache and "b" in cache

    def test_failed_make_changes_nothing(self) -> None:
        """If ``make`` raises, the error passes through, nothing is stored or evicted."""
        cache = Bounded[str, int](1)
        cache.get("a", lambda: 1)

        def boom() -> int:
            raise RuntimeError("no")

        with pytest.raises(RuntimeError, match="no"):
            cache.get("b", boom)
        assert "a" in cache and "b" not in cache and len(cache) == 1

    @given(st.integers(1, 5), st.lists(st.integers(0, 8), max_size=60))
    def test_matches_fifo_model(self, size: int, keys: list[int]) -> None:
        """Any sequence of gets makes and keeps exactly what a hand-written FIFO cache does."""
        cache = Bounded[int, int](size)
        made: list[int] = []

        def make(k: int) -> int:
            made.append(k)
            return k * 10

        for k in keys:
            assert cache.get(k, lambda k=k: make(k)) == k * 10
        want_made, want_held = _model(size, keys)
        assert made == want_made
        assert [k for k in range(9) if k in cache] == sorted(want_held)
        assert len(cache) == len(want_held)


class TestBoundedInit:
    @pytest.mark.parametrize("size", [0, -1, 1.5, True, "16"])
    def test_bad_size(self, size: object) -> None:
        """A size that is not an integer >= 1 is a one-line ValueError naming it."""
        with pytest.raises(ValueError, match="size must be an integer >= 1"):
            Bounded(size)  # type: ignore[arg-type]


class TestBoundedClear:
    def test_clear(self) -> None:
        """clear drops every entry; the next get makes the value again."""
        cache = Bounded[str, int](3)
        cache.get("a", lambda: 1)
        cache.clear()
        assert len(cache) == 0 and cache.get("a", lambda: 2) == 2


class TestDocstrings:
    def test_examples_run(self) -> None:
        """The docstring examples of engine/memo.py run and give what they show."""
        result = doctest.testmod(memo)
        assert result.attempted >= 2 and result.failed == 0
