"""Evaluate cells on Ray: actors hold prompt shards, the driver reduces their block statistics.

This module is the driver; the remote side (fit tasks, shard actors) is :mod:`.ray_actors`, the
placement arithmetic :mod:`.ray_layout`. Layout of a run (per data set and set of splits, reused
across calls, e.g. by Optuna's batches):

- Each (split, family) pair's test prompts are cut into blocks of ``BLOCK`` rows, counted from the
  family's first test prompt. The blocks of all pairs, in order, are cut into one contiguous run
  per actor of about equal rows (:func:`~routerbench.cluster.ray_layout.assign_blocks`).
- Actor ``j`` holds a shard: the rows of its blocks (``data.take``), put in the object store once.
  Actors are spread over the nodes, or pinned to given nodes by node affinity.
- Each family's training rows go to the object store once per split. A cell is fitted per family
  by a Ray task; the fitted router is stored once and every actor holding blocks of that family
  reads it (zero-copy for its arrays). The driver gets the fit without its router.
- An actor adds its blocks' statistics (:class:`~routerbench.sweeps.cells.BlockStats`) along the
  fixed tree over block indices as far as its run allows (:mod:`routerbench.sweeps.tree`) and
  returns those few nodes; the driver collects every answer that is in at once and finishes the
  tree (:func:`~routerbench.sweeps.cells.reduce_stats`), exactly as
  :func:`~routerbench.sweeps.cells.evaluate_cell` does in one process: the numbers are
  bit-identical for any number of actors or nodes, and the driver adds O(log blocks) nodes per
  actor and cell, not every block. Every BLAS product that reaches the results
  (the bootstrap's and the predictors') runs on one BLAS thread
  (:func:`~routerbench.engine.evaluate.one_blas_thread`), in the driver and in the actors alike,
  so sums that OpenBLAS would split by thread come out the same.

Faults: an actor that dies (killed, or its node lost) is replaced by a new actor holding the same
shard, and the calls it had not answered are sent to the replacement; answers are keyed by
(cell, family, tree node), so nothing is lost or counted twice. Fit tasks are retried by Ray, and
fitted routers lost with a node are rebuilt from their lineage.

Starting or joining Ray, with the process-wide state that takes: :mod:`.ray_connect`.
"""

from __future__ import annotations

import itertools
import re
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray
from ray.exceptions import RayActorError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from routerbench.cluster.ray_actors import Actor, fit_family
from routerbench.cluster.ray_connect import join, start_local, stop_local
from routerbench.cluster.ray_layout import plan_shards, store_size
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import ClusterError, UsageError
from routerbench.engine.rowgroups import ParquetRows
from routerbench.sweeps.cells import BlockStats, Cell, CellResult, mean_costs, reduce_stats
from routerbench.sweeps.split import Split
from routerbench.sweeps.tree import Node

WINDOW = 3  # calls in flight per actor: one running, the next ones queued behind it


# ------------------------------------------------------------------------------ driver side
@dataclass
class _Slot:
    """An actor position: its shard (object ref) and the current actor holding it."""

    shard: Any
    node: str | None
    actor: Any = None


@dataclass
class _Layout:
    """Shards and object refs for one data set and set of splits."""

    data: RoutingData | ParquetRows
    splits: dict[str, Split]
    keys: dict[tuple[str, str], int]  # (split, family) -> pair key
    holders: dict[int, list[int]]  # pair key -> slots holding blocks of it
    test_refs: dict[int, Any]  # pair key -> the pair's test rows (global)
    slots: list[_Slot]
    train_refs: dict[int, Any] = field(default_factory=dict)

    def train_ref(self, split: Split, family: str) -> Any:
        key = self.keys[(split.name, family)]
        if key not in self.train_refs:
            rows = split.train[family]
            if isinstance(self.data, ParquetRows):  # the fit task reads them
                self.train_refs[key] = ray.put((self.data, rows))
            else:
                self.train_refs[key] = ray.put(self.data.take(rows))
        return self.train_refs[key]


@dataclass
class _Item:
    """One call: evaluate a fitted (cell, family) on one actor's blocks of it."""

    seq: int
    cell: int
    key: int
    fit: Any


@dataclass
class _Open:
    """A cell whose fits are submitted: the answers gathered so far."""

    cell: Cell
    fits: list[tuple[int, Any]]  # (pair key, ref of the fit without its router) in family order
    waiting: int
    nodes: dict[int, dict[Node, BlockStats]] = field(default_factory=dict)  # per pair key
    errors: dict[int, tuple[int, str]] = field(default_factory=dict)


class RayExecutor:
    """An :data:`~routerbench.sweeps.execute.Executor` on Ray (see the module docstring).

    Connects on first use: to ``address`` (``"auto"`` or ``HOST:PORT``), to the Ray this process
    is already connected to, or else to a new local Ray on this machine's CPUs, which
    :meth:`close` stops. Actors, shards and training sets are kept between calls on the same data
    and splits (Optuna evaluates trials in batches); :meth:`close` releases them.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        shards: int | None = None,
        quiet: bool = False,
        nodes: Sequence[str] | None = None,
    ) -> None:
        self.address = address
        self.shards = shards
        self.quiet = quiet
        self.nodes = list(nodes) if nodes else None
        self.reads_rows = True  # actors read their own rows of a Parquet file (sweeps.run)
        self.replacements = 0  # actors replaced after dying, over this executor's life
        self.last_run: dict[str, float] = {}
        self._stop_own_ray: weakref.finalize | None = None  # set when this executor starts Ray
        self._layout: _Layout | None = None
        self._seq = itertools.count()

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the actors, release stored objects, and stop Ray if this executor started it."""
        self.close_actors()
        if self._stop_own_ray is not None:
            self._stop_own_ray()  # runs once: here, or when the executor is collected or at exit
            self._stop_own_ray = None

    def _connect(self, data: RoutingData | ParquetRows) -> None:
        if ray.is_initialized():
            return
        if self.address is not None:
            join(self.address, self.quiet)
            return
        tmpdir = start_local(store_size(data), self.quiet)
        self._stop_own_ray = weakref.finalize(self, stop_local, tmpdir)

    @property
    def actors(self) -> list[Any]:
        """The current shard actors' handles, in shard order (for monitoring or fault drills)."""
        return [] if self._layout is None else [s.actor for s in self._layout.slots]

    def actor_info(self) -> list[dict[str, Any]]:
        """Per actor (in shard order): node id, pid, rows held, shard bytes, peak memory."""
        if self._layout is None:
            return []
        return list(ray.get([s.actor.info.remote() for s in self._layout.slots]))

    # ---------------------------------------------------------------- layout
    def _prepare(self, data: RoutingData | ParquetRows, used: dict[str, Split]) -> _Layout:
        lay = self._layout
        if (
            lay is not None
            and lay.data is data
            and all(_same_split(s, lay.splits) for s in used.values())
        ):
            return lay
        self.close_actors()
        n_actors = self.shards or max(1, int(ray.cluster_resources().get("CPU", 1)))
        if self.nodes:
            missing = [n for n in self.nodes if n not in _alive_nodes()]
            if missing:
                raise UsageError(f"nodes: {missing[0]!r} is not an alive Ray node id")
        keys, _, parts = plan_shards(used, n_actors)
        holders: dict[int, list[int]] = {}
        for j, part in enumerate(parts):
            for key in part:
                holders.setdefault(key, []).append(j)
        test_refs = {key: ray.put(used[split].test[fam]) for (split, fam), key in keys.items()}
        slots = []
        for j, part in enumerate(parts):
            rows_j = np.unique(np.concatenate([g for _, g in part.values()]))
            plan = {key: (blocks, np.searchsorted(rows_j, g)) for key, (blocks, g) in part.items()}
            node = self.nodes[j % len(self.nodes)] if self.nodes else None
            source = (data, rows_j) if isinstance(data, ParquetRows) else data.take(rows_j)
            slots.append(_Slot(ray.put((source, plan)), node))
        lay = _Layout(data, dict(used), keys, holders, test_refs, slots)
        for slot in slots:
            self._start(slot)
        ray.get([s.actor.ready.remote() for s in slots])
        self._layout = lay
        return lay

    def close_actors(self) -> None:
        """Stop the actors and drop the stored shards (Ray stays up)."""
        if self._layout is not None and ray.is_initialized():
            for slot in self._layout.slots:
                ray.kill(slot.actor)
        self._layout = None

    def _start(self, slot: _Slot) -> None:
        """Start the slot's actor: on its node while that node is alive, else where Ray spreads
        it (Ray's soft affinity was seen placing actors elsewhere with the node alive and idle)."""
        strategy: Any = "SPREAD"
        if slot.node is not None and slot.node in _alive_nodes():
            strategy = NodeAffinitySchedulingStrategy(slot.node, soft=False)
        # Ray's default actor resources: a CPU to be placed, none held while running (so fit tasks
        # still get the CPUs); never on a node started with no CPUs (a driver-only head).
        slot.actor = Actor.options(max_restarts=0, scheduling_strategy=strategy).remote(
            [slot.shard]
        )

    # ---------------------------------------------------------------- run
    def __call__(
        self,
        data: RoutingData | ParquetRows,
        cells: Sequence[Cell],
        splits: dict[str, Split],
        opts: dict[str, Any],
    ) -> Iterator[CellResult]:
        """Evaluate ``cells``; yield each cell's result as soon as all its blocks are in."""
        cells = list(cells)
        if not cells:
            return
        t0 = time.perf_counter()
        self._connect(data)
        t1 = time.perf_counter()
        used = {c.split: splits[c.split] for c in cells}
        lay = self._prepare(data, used)
        t2 = time.perf_counter()
        self.last_run = {"connect_s": t1 - t0, "setup_s": t2 - t1, "actors": len(lay.slots)}
        yield from self._run(lay, cells, splits, opts)
        self.last_run["evaluate_s"] = time.perf_counter() - t2

    def mean_costs(
        self, data: RoutingData | ParquetRows, splits: Sequence[Split]
    ) -> dict[tuple[str, str], np.ndarray]:
        """Per evaluated (split, family): each model's mean known cost on its test prompts,
        from the actors' blocks (:func:`~routerbench.sweeps.cells.mean_costs`: the in-process
        numbers)."""
        self._connect(data)
        lay = self._prepare(data, {s.name: s for s in splits})
        asked = {
            pair: [lay.slots[j].actor.cost_nodes.remote(key, len(lay.splits[pair[0]].test[pair[1]]))
                   for j in lay.holders[key]]
            for pair, key in lay.keys.items()
        }  # fmt: skip
        out = {}
        for (split, fam), refs in asked.items():
            nodes = {k: v for part in ray.get(refs) for k, v in part.items()}
            out[(split, fam)] = mean_costs(nodes, len(lay.splits[split].test[fam]))
        return out

    def _run(
        self, lay: _Layout, cells: list[Cell], splits: dict[str, Split], opts: dict[str, Any]
    ) -> Iterator[CellResult]:
        from routerbench.engine.progress import progress

        todo = deque(cells)
        opened: dict[int, _Open] = {}
        queues: list[deque[_Item]] = [deque() for _ in lay.slots]
        inflight: dict[Any, tuple[int, _Item]] = {}
        max_open = 2 * len(lay.slots) + 2
        total = sum(
            len(rows)
            for c in cells
            for f, rows in splits[c.split].test.items()
            if (c.split, f) in lay.keys
        )
        bar = progress(total, "prompt", quiet=self.quiet, desc="ray")
        try:
            while todo or opened:
                while todo and len(opened) < max_open:
                    cell = todo.popleft()
                    opened[cell.index] = self._open(lay, cell, splits[cell.split], queues, opts)
                for j, slot in enumerate(lay.slots):
                    busy = sum(1 for s, _ in inflight.values() if s == j)
                    while queues[j] and busy < WINDOW:
                        item = queues[j].popleft()
                        ref = slot.actor.evaluate.remote(item.fit, item.key, opts)
                        inflight[ref] = (j, item)
                        busy += 1
                done = [o for o in opened.values() if o.waiting == 0]
                if not done and inflight:
                    refs = list(inflight)
                    if ray.wait(refs, num_returns=1, timeout=1.0)[0]:
                        # every answer that is in, not just the first
                        for ref in ray.wait(refs, num_returns=len(refs), timeout=0)[0]:
                            if ref in inflight:  # not dropped with a dead actor's calls
                                self._collect(lay, ref, inflight, queues, opened, bar)
                    done = [o for o in opened.values() if o.waiting == 0]
                for o in done:
                    del opened[o.cell.index]
                    yield _reduce(o)
        finally:
            bar.close()

    def _open(
        self,
        lay: _Layout,
        cell: Cell,
        split: Split,
        queues: list[deque[_Item]],
        opts: dict[str, Any],
    ) -> _Open:
        """Submit a cell's fits (one task per family) and queue their evaluation calls."""
        fits = []
        waiting = 0
        for fam in split.test:
            key = lay.keys.get((split.name, fam))
            if key is None:
                continue
            ref: Any
            light: Any
            ref, light = fit_family.remote(  # type: ignore[misc]  # num_returns=2
                [lay.train_ref(split, fam)], lay.test_refs[key], cell, fam, opts["fail_fast"]
            )
            fits.append((key, light))
            for j in lay.holders[key]:
                queues[j].append(_Item(next(self._seq), cell.index, key, ref))
                waiting += 1
        return _Open(cell, fits, waiting)

    def _collect(
        self,
        lay: _Layout,
        ref: Any,
        inflight: dict[Any, tuple[int, _Item]],
        queues: list[deque[_Item]],
        opened: dict[int, _Open],
        bar: Any,
    ) -> None:
        """Record one answer; on a dead actor, replace it and requeue its unanswered calls."""
        j, item = inflight.pop(ref)
        try:
            out = ray.get(ref)
        except RayActorError:
            dead = [r for r, (s, _) in inflight.items() if s == j]
            lost = [item] + [inflight.pop(r)[1] for r in dead]
            queues[j].extendleft(sorted(lost, key=lambda it: it.seq, reverse=True))
            self._replace(lay, j)
            return
        except RayTaskError as e:
            raise (e.cause if isinstance(e.cause, BaseException) else e) from None
        o = opened[item.cell]
        o.waiting -= 1
        if isinstance(out, tuple):
            prev = o.errors.get(item.key)
            if prev is None or out[0] < prev[0]:
                o.errors[item.key] = out
            return
        o.nodes.setdefault(item.key, {}).update(out)
        bar.update(sum(st.count for st in out.values()))

    def _replace(self, lay: _Layout, j: int) -> None:
        self.replacements += 1
        limit = 4 * len(lay.slots)
        if self.replacements > limit:
            raise ClusterError(
                f"Ray actors died {self.replacements} times (limit {limit}); the cells finished "
                "so far are stored: run the same command again to resume"
            )
        ray.kill(lay.slots[j].actor)
        self._start(lay.slots[j])


def _reduce(o: _Open) -> CellResult:
    """The cell's result: per family (in the split's order), block statistics in block order."""
    res = CellResult(o.cell)
    for (key, _), fit in zip(o.fits, ray.get([ref for _, ref in o.fits]), strict=True):
        if not fit.error and key in o.errors:
            fit.error = o.errors[key][1]
        res.add(reduce_stats(fit, o.nodes.get(key, {})))
    return res


def _same_split(split: Split, known: dict[str, Split]) -> bool:
    old = known.get(split.name)
    if old is None:
        return False
    return old is split or all(
        a.keys() == b.keys() and all(np.array_equal(a[f], b[f]) for f in a)
        for a, b in ((old.test, split.test), (old.train, split.train))
    )


def _alive_nodes() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


_ADDRESS = re.compile(r"^(auto|[\w.\-]+:\d{1,5})$")


def make_executor(
    *,
    address: str | None = None,
    shards: int | None = None,
    quiet: bool = False,
    nodes: Sequence[str] | None = None,
) -> RayExecutor:
    """A Ray executor: ``address`` ``"auto"``/``HOST:PORT`` joins a cluster (default: a local Ray
    on this machine's CPUs); ``shards`` actors (default one per CPU of the cluster); ``nodes``
    pins actor ``j`` to node id ``nodes[j % len(nodes)]``; ``quiet`` hides progress."""
    if address is not None and not _ADDRESS.match(address):
        raise UsageError(f"--address must be 'auto' or HOST:PORT (got {address!r})")
    if shards is not None and shards < 1:
        raise UsageError(f"--shards must be >= 1 (got {shards})")
    return RayExecutor(address=address, shards=shards, quiet=quiet, nodes=nodes)
