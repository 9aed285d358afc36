"""Adding per-block statistics along one fixed binary tree over block indices.

A (split, family) pair's test prompts are cut into ``n`` blocks. Node ``(level, i)`` of the tree
covers blocks ``[i * 2**level, (i + 1) * 2**level)`` (cut at ``n``); its value is its left child's
value plus its right child's, or the left child's alone where the right child covers no block.
The root's value is therefore one fixed expression of the block values, whoever computes which
part: a worker holding any run of blocks adds the complete nodes inside it (:func:`partial`)
and sends those few nodes; whoever gathers them (the driver, or the same process) finishes the
tree (:func:`root`). Floating-point sums come out bit-identical for any
number of shards, and the driver combines O(log n) nodes per shard instead of n blocks.

>>> add = lambda a, b: f"({a}+{b})"
>>> blocks = {(0, j): str(j) for j in range(5)}
>>> root(dict(blocks), 5, add)
'(((0+1)+(2+3))+4)'
>>> left = partial({k: v for k, v in blocks.items() if k[1] < 3}, 5, add)
>>> sorted(left.items())
[((0, 2), '2'), ((1, 0), '(0+1)')]
>>> root({**left, **partial({(0, 3): '3', (0, 4): '4'}, 5, add)}, 5, add)
'(((0+1)+(2+3))+4)'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
Node = tuple[int, int]  # (level, index)


def height(n: int) -> int:
    """The root's level for ``n`` blocks (0 for one block)."""
    return max(0, (n - 1).bit_length())


def root(nodes: dict[Node, T], n: int, add: Callable[[T, T], T]) -> T:
    """The root's value from ``nodes``: disjoint tree nodes covering all ``n`` blocks (consumed).
    A missing part is an error."""
    top = height(n)
    nodes = _fold(nodes, n, add, complete=True)
    if list(nodes) != [(top, 0)]:
        raise ValueError(f"tree over {n} blocks did not reduce to one root: {sorted(nodes)}")
    return nodes[(top, 0)]


def partial(nodes: dict[Node, T], n: int, add: Callable[[T, T], T]) -> dict[Node, T]:
    """The largest complete nodes that ``nodes`` (disjoint, over ``n`` blocks; consumed) add up
    to: what a worker holding some runs of blocks sends on."""
    return _fold(nodes, n, add, complete=False)


def _fold(
    nodes: dict[Node, T], n: int, add: Callable[[T, T], T], *, complete: bool
) -> dict[Node, T]:
    for level in range(height(n)):
        for i in sorted(i for lv, i in list(nodes) if lv == level):
            if (level, i) not in nodes:
                continue  # taken by its left sibling
            if i % 2:  # a right child whose left sibling is not here
                if complete:
                    raise ValueError(f"tree node {(level, i - 1)} of {n} blocks is missing")
                continue
            if (i + 1) << level >= n:  # no right child: the node is its left child
                nodes[(level + 1, i // 2)] = nodes.pop((level, i))
            elif (level, i + 1) in nodes:
                left = nodes.pop((level, i))
                nodes[(level + 1, i // 2)] = add(left, nodes.pop((level, i + 1)))
            elif complete:
                raise ValueError(f"tree node {(level, i + 1)} of {n} blocks is missing")
    return nodes
