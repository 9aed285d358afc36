"""The one bounded in-process cache: a map from a key to a value made on first use.

(Pure functions of a few small arguments are memoised with ``functools.cache`` instead.)
Used for fitted featurizers (:mod:`routerbench.engine.features`) and for the
training sets a Ray worker has unpickled. Each user holds its own :class:`Bounded`; nothing is
shared between processes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Bounded(Generic[K, V]):
    """At most ``size`` entries, and (with ``weigh``) at most ``budget`` in their weights added
    up, the newest always kept; storing one more evicts the oldest (the first stored).

    >>> cache = Bounded[str, int](2)
    >>> cache.get("a", lambda: 1), cache.get("b", lambda: 2), cache.get("a", lambda: 99)
    (1, 2, 1)
    >>> cache.get("c", lambda: 3), "a" in cache, len(cache)
    (3, False, 2)
    >>> heavy = Bounded[str, int](9, weigh=lambda v: v, budget=5)
    >>> heavy.get("a", lambda: 3), heavy.get("b", lambda: 3), "a" in heavy, len(heavy)
    (3, 3, False, 1)
    """

    def __init__(
        self, size: int, *, weigh: Callable[[V], int] | None = None, budget: int = 0
    ) -> None:
        if type(size) is not int or size < 1:
            raise ValueError(f"Bounded: size must be an integer >= 1, got {size!r}")
        self.size = size
        self._weigh = weigh
        self._budget = budget
        self._items: dict[K, V] = {}

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The value stored for ``key``, else ``make()``, stored (if ``make`` raises, nothing
        is stored and nothing evicted)."""
        if key in self._items:
            return self._items[key]
        value = make()
        self._items[key] = value
        while len(self._items) > self.size or (len(self._items) > 1 and self._heavy()):
            del self._items[next(iter(self._items))]
        return value

    def _heavy(self) -> bool:
        return (
            self._weigh is not None and sum(map(self._weigh, self._items.values())) > self._budget
        )

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Drop every entry."""
        self._items.clear()
