"""Where a Ray run's work goes: blocks of test prompts dealt to shards, and sizes for a local Ray.

Pure functions of the splits and the data (no Ray calls), so they are tested without a cluster.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

import numpy as np

from routerbench.engine.data import RoutingData
from routerbench.engine.evaluate import BLOCK
from routerbench.engine.parallel import total_memory
from routerbench.engine.rowgroups import ParquetRows
from routerbench.sweeps.split import Split

MiB = 1 << 20


def array_bytes(data: RoutingData) -> int:
    """Bytes of a data set's arrays: numeric buffers, plus the strings of its object arrays."""
    total = 0
    for f in dataclasses.fields(data):
        arr = getattr(data, f.name)
        if isinstance(arr, np.ndarray):
            total += arr.nbytes
            if arr.dtype == object:
                total += sum(sys.getsizeof(s) for s in arr)
    return total


def plan_shards(
    splits: dict[str, Split], n: int
) -> tuple[
    dict[tuple[str, str], int], dict[int, int], list[dict[int, tuple[np.ndarray, np.ndarray]]]
]:
    """Cut every (split, family) pair's test rows into blocks and deal them to ``n`` shards (fewer
    if there are fewer blocks): pair keys, blocks per pair, and per shard ``{pair: (block
    indices, their rows)}``; every shard gets at least one block.

    Only the families a cell is evaluated on count
    (:meth:`~routerbench.sweeps.split.Split.evaluated`).
    """
    pairs = [((sp.name, fam), rows) for sp in splits.values() for fam, _, rows in sp.evaluated()]
    keys = {pair: key for key, (pair, _) in enumerate(pairs)}
    n_blocks = {key: -(-len(rows) // BLOCK) for key, (_, rows) in enumerate(pairs)}
    sizes = [min(BLOCK, len(rows) - s) for _, rows in pairs for s in range(0, len(rows), BLOCK)]
    n = min(n, len(sizes))
    owners = assign_blocks(sizes, n)
    parts: list[dict[int, tuple[np.ndarray, np.ndarray]]] = [{} for _ in range(n)]
    offset = 0
    for key, (_, rows) in enumerate(pairs):
        owner = owners[offset : offset + n_blocks[key]]
        offset += n_blocks[key]
        for j in np.unique(owner).tolist():
            mine = np.flatnonzero(owner == j)
            parts[j][key] = (
                mine,
                np.concatenate([rows[b * BLOCK : (b + 1) * BLOCK] for b in mine]),
            )
    return keys, n_blocks, parts


def assign_blocks(sizes: Sequence[int], n: int) -> np.ndarray:
    """Owner (0..n-1) of each block: the blocks, in order, cut into ``n`` contiguous non-empty
    runs (``n <= len(sizes)``), each cut at the block boundary nearest an even share of the rows,
    so a shard holds runs of consecutive blocks and adds most of them up itself.

    >>> assign_blocks([4096, 4096, 4096, 100, 50], 2).tolist()
    [0, 0, 1, 1, 1]
    >>> assign_blocks([10, 10, 10], 3).tolist()
    [0, 1, 2]
    """
    ends = np.cumsum(sizes)  # rows up to the end of each block
    cuts = [0]
    for j in range(1, n):
        at = int(np.abs(ends - ends[-1] * j / n).argmin()) + 1  # first block of run j
        cuts.append(min(max(at, cuts[-1] + 1), len(sizes) - (n - j)))
    owner = np.zeros(len(sizes), dtype=np.int64)
    for j, c in enumerate(cuts[1:], 1):
        owner[c:] = j
    return owner


def store_size(data: RoutingData | ParquetRows) -> int:
    """Object store for a local Ray: room for the data about twice (shards, training sets and
    fitted routers), or a quarter of it where the actors read their rows from a Parquet file
    (row indices and fitted routers only), at least 256 MiB, at most 30% of this machine's
    memory."""
    ram = total_memory() or 8 << 30
    if isinstance(data, ParquetRows):
        want = max(256 * MiB, data.nbytes_in_memory() // 4)
    else:
        want = max(256 * MiB, int(2.5 * array_bytes(data)))
    return int(min(want, max(256 * MiB, 0.3 * ram)))
