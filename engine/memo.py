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
    """At most ``size`` entries; storing one more evicts the oldest (the first stored).

    >>> cache = Bounded[str, int](2)
    >>> cache.get("a", lambda: 1), cache.get("b", lambda: 2), cache.get("a", lambda: 99)
    (1, 2, 1)
    >>> cache.get("c", lambda: 3), "a" in cache, len(cache)
    (3, False, 2)
    """

    def __init__(self, size: int) -> None:
        if type(size) is not int or size < 1:
            raise ValueError(f"Bounded: size must be an integer >= 1, got {size!r}")
        self.size = size
        self._items: dict[K, V] = {}

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The value stored for ``key``, else ``make()``, stored (if ``make`` raises, nothing
        is stored and nothing evicted)."""
        if key in self._items:
            return self._items[key]
        value = make()
        if len(self._items) >= self.size:
            del self._items[next(iter(self._items))]
        self._items[key] = value
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Drop every entry."""
        self._items.clear()
