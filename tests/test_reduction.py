"""The block reduction against direct computation on whole arrays.

Every number of the points and curves tables (sums, means, counts, AIQ, max quality, hulls, the
centres of the intervals) is recomputed here without the production reduction: the router fitted
on the family's train prompts decides (or gives outcomes) for the family's whole test set at once,
and the sums are taken over the whole arrays. Families span several blocks with a ragged last one;
every registered router runs, in process (with the real block size and with small ones) and on
Ray with 1-3 actors.
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import ray
from hypothesis import given, settings
from hypothesis import strategies as st

from routerbench.cluster.ray_connect import LOCAL_ENV
from routerbench.cluster.ray_executor import make_executor
from routerbench.engine import synth
from routerbench.engine.bootstrap import poisson_weights
from routerbench.engine.data import RoutingData
from routerbench.engine.evaluate import BLOCK, NO_CALL
from routerbench.engine.metrics import aiq, aiq_upstream, aiq_upstream_path, ndch
from routerbench.routers.base import REGISTRY, Fitted, create, load_all, name_of
from routerbench.sweeps import cells as cells_module
from routerbench.sweeps.cells import (
    Cell,
    CellResult,
    FamilyFit,
    block_nodes,
    evaluate_cell,
    reduce_stats,
    shard_stats,
)
from routerbench.sweeps.execute import Plan, plan, run_grid
from routerbench.sweeps.run import evaluate
from routerbench.sweeps.spec import Spec, parse
from routerbench.sweeps.split import Split
from routerbench.sweeps.summary import Results

N = 30_000  # prompts; with a train share of 0.25, mmlu has 8,657 test prompts: 3 blocks
FAMILIES = ["mmlu", "hellaswag", "winogrande"]  # 3 blocks (last 465), 2 (last 31), 1
BOOT = 100
SEED = 7
COARSE = [2000.0]  # one lambda: a grid curve far below the exact path (re-centring shows)
ROUTERS: list[dict[str, Any]] = [
    {"name": "single", "grid": {"model": ["claude-v1", "gpt-4-1106-preview"]}},
    {"name": "oracle", "grid": {"no_model_correct": ["cheapest", "upstream"]}},
    {"name": "random", "params": {"seed": 1}},
    {"name": "zero", "params": {"seed": 2}},
    {"name": "zero", "params": {"seed": 3}, "knobs": [1e-4, 5e-4, 2e-3, 1e-2]},
    {"name": "cascade", "grid": {"eps": [0.0, 0.2]}},
    {"name": "cascade", "params": {"judge": "learned", "k": 5}, "knobs": [1e-4, 1e-3, 1e-2]},
    {"name": "threshold", "grid": {"predictor": ["knn", "linear"]}},
    {"name": "knn", "grid": {"k": [5, 20]}},
    {"name": "knn", "params": {"k": 10}, "knobs": COARSE},
    {"name": "mlp", "params": {"hidden": [16], "max_iter": 30}},
    {"name": "linear", "grid": {"per_model": [False, True]}},
]
RTOL = 1e-12  # block-then-block-order sums vs one sum over the whole array: rounding only
MB = 1 << 20


def make_spec(routers: list[dict[str, Any]] = ROUTERS, bootstrap: int = BOOT) -> Spec:
    return parse(
        {
            "data": {"families": FAMILIES},
            "split": {"kind": "seeded", "seeds": [SEED], "train_fraction": 0.25},
            "search": {"seed": SEED},
            "metrics": {"bootstrap": bootstrap},
            "routers": routers,
        }
    )


# ------------------------------------------------------------------------ direct computation
@dataclasses.dataclass
class Direct:
    """One (router, family) computed on the whole test set: realised outcomes ``[K, n]`` and the
    curve's points (the exact path's means where the router has one, else the grid's)."""

    knobs: np.ndarray
    cost: np.ndarray
    quality: np.ndarray
    curve: tuple[np.ndarray, np.ndarray]
    grid: tuple[np.ndarray, np.ndarray]
    c_range: tuple[float, float]
    rows: np.ndarray


def realise(values: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """``values[i, choice[k, i]]``, 0 for NO_CALL (written here, not the engine's helper)."""
    picked = values[np.arange(values.shape[0])[None, :], np.maximum(choice, 0)]
    return np.where(choice == NO_CALL, 0.0, picked)


def direct(
    data: RoutingData,
    router: Any,
    knobs: Any,
    train: np.ndarray,
    test_rows: np.ndarray,
) -> Direct:
    """Fit on ``train``, then decide for every test prompt in one call and sum whole arrays."""
    test = data.take(test_rows)
    fitted = router.fit(data.take(train))
    knobs = np.asarray(fitted.default_knobs() if knobs is None else knobs, dtype=np.float64)
    scores = fitted.score(test)
    if type(fitted).decide is Fitted.decide:  # no decisions: the router's own outcomes
        cost, quality = fitted.outcomes(scores, test, knobs)
    else:
        choice = fitted.decide(scores, knobs)
        cost, quality = realise(test.cost, choice), realise(test.quality, choice)
    n = len(test_rows)
    grid = (cost.sum(axis=1) / n, quality.sum(axis=1) / n)
    curve = grid
    if (path := fitted.exact_path(scores, test)) is not None:
        lams, pc, pq, count = path
        assert count == n
        # Prompts switching at the same λ (common for the frontier) are one step of the
        # function: its value after the last of them.
        last = np.append(lams[1:] != lams[:-1], True)
        curve = (pc[last] / n, pq[last] / n)
    model_means = data.cost[test_rows].sum(axis=0) / n
    return Direct(
        knobs, cost, quality, curve, grid, (model_means.min(), model_means.max()), test_rows
    )


def boot_means(data: RoutingData, ref: Direct, seed: int, b: int) -> tuple[np.ndarray, ...]:
    """Replicate means ``[B, K]`` of cost and quality, with Poisson weights keyed by prompt."""
    w = poisson_weights(seed, data.keys()[ref.rows], b)
    total = w.sum(axis=1)[:, None]
    return (w @ ref.cost.T) / total, (w @ ref.quality.T) / total


def close(got: Any, want: Any, what: str) -> None:
    np.testing.assert_allclose(
        np.asarray(got, dtype=np.float64), want, rtol=RTOL, atol=1e-14, err_msg=what
    )


def check_points(points: Any, cell_id: str, family: str, ref: Direct) -> None:
    """The points rows of one (cell, family) equal the direct sums and means."""
    got = points[(points["cell_id"] == cell_id) & (points["family"] == family)]
    n = len(ref.rows)
    what = f"{cell_id} {family}"
    assert (got["status"] == "ok").all(), what
    assert got["n"].tolist() == [n] * len(ref.knobs), what
    close(got["knob"], ref.knobs, what)
    close(got["cost_sum"], ref.cost.sum(axis=1), what + " cost_sum")
    close(got["cost_mean"], ref.cost.sum(axis=1) / n, what + " cost_mean")
    close(got["quality_mean"], ref.quality.sum(axis=1) / n, what + " quality_mean")


def upstream_pair(refs: list[Direct], names: list[str]) -> list[tuple[float, float] | None]:
    """Per direct curve: calc_AIQ on its grid points (cost sums), and on its curve's points,
    over the routers the original has (None for the frontier, which it lacks)."""
    theirs = [d for d, name in zip(refs, names, strict=True) if name != "frontier"]
    up, _ = aiq_upstream([(d.cost.sum(axis=1), d.grid[1]) for d in theirs])
    path = aiq_upstream_path([d.curve for d in theirs])
    pairs = iter(zip(up.tolist(), path.tolist(), strict=True))
    return [None if name == "frontier" else next(pairs) for name in names]


def same_hull(got_c: Any, got_q: Any, hc: np.ndarray, hq: np.ndarray, what: str) -> None:
    """The same hull: equal vertices, or (where a path has many nearly collinear points, as the
    frontier's) the same function, its vertex set differing only by rounding."""
    got_c, got_q = np.asarray(got_c), np.asarray(got_q)
    tol = {"rtol": RTOL, "atol": 1e-14}
    if len(got_c) == len(hc) and np.allclose(got_c, hc, **tol) and np.allclose(got_q, hq, **tol):
        return
    close(got_c[[0, -1]], hc[[0, -1]], what + " hull_cost ends")
    x = np.union1d(got_c, hc)
    np.testing.assert_allclose(np.interp(x, got_c, got_q), np.interp(x, hc, hq), atol=1e-12)


def check_curve(row: Any, ref: Direct, upstream: tuple[float, float] | None) -> None:
    """A curves row equals the hull, AIQ and max quality of the direct curve."""
    what = f"{row['cell_id']} {row['family']}"
    c, q = ref.curve
    c_min, c_max = ref.c_range
    hc, hq = ndch(c, q)
    close(row["c_min"], c_min, what + " c_min")
    close(row["c_max"], c_max, what + " c_max")
    same_hull(row["hull_cost"], row["hull_quality"], hc, hq, what)
    close(row["aiq"], aiq(hc, hq, c_min, c_max), what + " aiq")
    if upstream is None:  # the frontier: not among the original's routers
        assert np.isnan(row["aiq_upstream"]) and row["aiq_upstream_note"], what
        upstream = (np.nan, np.nan)
    close(row["aiq_upstream"], upstream[0], what + " aiq_upstream")
    close(row["aiq_upstream_path"], upstream[1], what + " aiq_upstream_path")
    assert (row["aiq_upstream_note"] != "") == np.isnan(upstream[0]), what
    assert row["n_test"] == len(ref.rows), what
    i = int(np.argmax(q))  # the first point reaching the maximum, in parameter order
    close(row["max_quality"], q[i], what + " max_quality")
    close(row["cost_at_max_quality"], c[i], what + " cost_at_max_quality")


def check_results(p: Plan, got: Results, refs: dict[tuple[str, str], Direct]) -> None:
    """Every points and curves number of a run equals the direct computation."""
    assert len(got.points) == sum(len(r.knobs) for r in refs.values())
    assert len(got.curves) == len(refs)
    for (cell_id, fam), ref in refs.items():
        check_points(got.points, cell_id, fam, ref)
    for fam in FAMILIES:
        ids = [cell.cell_id for cell in p.cells]
        names = [cell.router for cell in p.cells]
        up = upstream_pair([refs[(i, fam)] for i in ids], names)
        for cell_id, value in zip(ids, up, strict=True):
            curves = got.curves
            (row,) = curves[(curves["cell_id"] == cell_id) & (curves["family"] == fam)].to_dict(
                "records"
            )
            check_curve(row, refs[(cell_id, fam)], value)


# --------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data() -> RoutingData:
    return synth.generate(N, 0, with_text=False)


@pytest.fixture(scope="module")
def job(data: RoutingData) -> tuple[Spec, Plan, Results, dict[str, CellResult]]:
    """The spec, its plan, and the in-process run's tables and cell results."""
    spec = make_spec()
    p = plan(spec, data)
    cells: dict[str, CellResult] = {}
    res = run_grid(spec, p, on_result=lambda r: cells.__setitem__(r.cell.cell_id, r))
    return spec, p, res, cells


@pytest.fixture(scope="module")
def refs(data: RoutingData, job: Any) -> dict[tuple[str, str], Direct]:
    """The direct computation for every (cell, family) of the run."""
    _, p, _, _ = job
    (sp,) = p.splits
    return {
        (cell.cell_id, fam): direct(data, cell.build(), cell.knobs, sp.train[fam], sp.test[fam])
        for cell in p.cells
        for fam in FAMILIES
    }


# ------------------------------------------------------------------------------ in process
class TestRunGrid:
    def test_covers_every_router_and_several_blocks(self, job) -> None:
        """The run has every registered router, and families of 1, 2 and 3 blocks (ragged)."""
        load_all()
        _, p, _, _ = job
        assert {c.router for c in p.cells} == set(REGISTRY)
        sizes = [len(p.splits[0].test[f]) for f in FAMILIES]
        assert sizes[0] > 2 * BLOCK and BLOCK < sizes[1] < 2 * BLOCK and sizes[2] < BLOCK
        assert all(s % BLOCK for s in sizes)

    def test_every_number_equals_direct(self, job, refs) -> None:
        """Points (sums, means, n) and curves (hull, AIQ, max quality) equal whole-array sums."""
        _, p, res, _ = job
        check_results(p, res, refs)

    def test_bootstrap_replicates_equal_direct(self, data, job, refs) -> None:
        """The replicate means of a large family equal Poisson-weighted whole-array sums."""
        _, p, _, cells = job
        for cell in p.cells:
            for fam in ("mmlu", "hellaswag"):
                bc, bq = boot_means(data, refs[(cell.cell_id, fam)], SEED, BOOT)
                got_c, got_q = cells[cell.cell_id].boot[fam]
                close(got_c, bc, f"{cell.cell_id} {fam} boot cost")
                close(got_q, bq, f"{cell.cell_id} {fam} boot quality")

    def test_point_intervals_centred_on_direct_bootstrap(self, data, job, refs) -> None:
        """Points' intervals hold the mean, centred as an independent bootstrap's (± half width)."""
        _, p, res, _ = job
        pts = res.points
        for cell in p.cells:
            ref = refs[(cell.cell_id, "mmlu")]
            got = pts[(pts["cell_id"] == cell.cell_id) & (pts["family"] == "mmlu")]
            for col, boot, mean in zip(
                ("cost", "quality"), boot_means(data, ref, SEED, BOOT), ref.grid, strict=True
            ):
                lo, hi = got[f"{col}_lo"].to_numpy(), got[f"{col}_hi"].to_numpy()
                want_lo, want_hi = np.quantile(boot, [0.025, 0.975], axis=0)
                tol = 0.5 * (want_hi - want_lo) + 1e-12
                assert (lo <= mean + 1e-12).all() and (mean <= hi + 1e-12).all(), cell.cell_id
                assert (abs((lo + hi) / 2 - (want_lo + want_hi) / 2) <= tol).all(), cell.cell_id

    def test_aiq_interval_recentred_on_exact_path(self, data, job, refs) -> None:
        """AIQ and max-quality intervals of a coarse grid are moved onto the exact estimate."""
        # Each contains the exact estimate and each end lies within one width of an independent
        # bootstrap's percentile interval shifted by (exact - grid); the shift exceeds the width,
        # so an interval left around the grid's estimate fails. The method (percentile, how it
        # is moved, clipping) may vary within that.
        _, p, res, _ = job
        (cell,) = [c for c in p.cells if c.knobs == tuple(COARSE)]
        ref = refs[(cell.cell_id, "mmlu")]
        c_min, c_max = ref.c_range
        bc, bq = boot_means(data, ref, SEED, BOOT)
        reps = np.array([aiq(*ndch(c, q), c_min, c_max) for c, q in zip(bc, bq, strict=True)])
        samples = {"aiq": reps, "max_quality": bq.max(axis=1)}
        exact = {"aiq": aiq(*ndch(*ref.curve), c_min, c_max), "max_quality": ref.curve[1].max()}
        grid = {"aiq": aiq(*ndch(*ref.grid), c_min, c_max), "max_quality": ref.grid[1].max()}
        cv = res.curves
        (row,) = cv[(cv["cell_id"] == cell.cell_id) & (cv["family"] == "mmlu")].to_dict("records")
        for m in ("aiq", "max_quality"):
            shift = exact[m] - grid[m]
            want = np.quantile(samples[m], [0.025, 0.975]) + shift
            width = want[1] - want[0]
            assert shift > 1.5 * width, m  # an interval left on the grid's estimate shows
            got = np.array([row[f"{m}_lo"], row[f"{m}_hi"]])
            close(row[m], exact[m], m)
            assert got[0] <= row[m] <= got[1], m
            assert (abs(got - want) <= width).all(), (m, got, want)


PARAMS: dict[str, dict[str, Any]] = {
    "mlp": {"max_iter": 30, "hidden": (16,)},
    "single": {"model": "claude-v2"},
}


class TestEvaluate:
    def test_notebook_entry_equals_direct(self, data) -> None:
        """``evaluate`` on router objects (every registered router) with a custom train mask."""
        load_all()
        routers = [create(name, **PARAMS.get(name, {})) for name in sorted(REGISTRY)]
        mask = np.random.default_rng(3).random(data.n_prompts) < 0.3
        res = evaluate(data, routers, train_mask=mask, families=["mmlu", "hellaswag"])
        ids = list(dict.fromkeys(res.points["cell_id"]))
        assert len(ids) == len(routers)
        for fam in ("mmlu", "hellaswag"):
            rows = np.flatnonzero(data.families == fam)
            assert len(rows[~mask[rows]]) > BLOCK
            ref = [direct(data, r, None, rows[mask[rows]], rows[~mask[rows]]) for r in routers]
            up = upstream_pair(ref, [name_of(r) for r in routers])
            for cell_id, d, u in zip(ids, ref, up, strict=True):
                check_points(res.points, cell_id, fam, d)
                cv = res.curves
                (row,) = cv[(cv["cell_id"] == cell_id) & (cv["family"] == fam)].to_dict("records")
                check_curve(row, d, u)


@pytest.fixture(scope="module")
def small_data() -> RoutingData:
    return synth.generate(3000, 5, with_text=False)


class TestEvaluateCell:
    @pytest.mark.parametrize("block", [7, 64])
    def test_every_router_equals_direct(self, small_data, block: int) -> None:
        """Blocks of 7 or 64 (many, last ragged): rows, path and replicates equal direct ones."""
        load_all()
        data = small_data
        spec = make_spec(bootstrap=20)
        p = plan(spec, data)
        (sp,) = p.splits
        fams = ["mmlu", "hellaswag"]
        train, test = ({f: rows[f] for f in fams} for rows in (sp.train, sp.test))
        split = Split(sp.name, sp.seed, train, test)
        assert all(len(split.test[f]) % block for f in fams)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(cells_module, "BLOCK", block)
            for cell in p.cells:
                got = evaluate_cell(data, cell, split, bootstrap=20, seed=SEED)
                for fam in fams:
                    ref = direct(data, cell.build(), cell.knobs, split.train[fam], split.test[fam])
                    check_rows(got, fam, ref)
                    bc, bq = boot_means(data, ref, SEED, 20)
                    close(got.boot[fam][0], bc, f"{cell.cell_id} {fam} boot cost")
                    close(got.boot[fam][1], bq, f"{cell.cell_id} {fam} boot quality")
                    if fam in got.exact:
                        check_path(got.exact[fam], ref.curve)


def check_rows(got: CellResult, family: str, ref: Direct) -> None:
    rows = [r for r in got.rows if r["family"] == family]
    n = len(ref.rows)
    assert [r["n"] for r in rows] == [n] * len(ref.knobs)
    close([r["knob"] for r in rows], ref.knobs, "knob")
    close([r["cost_sum"] for r in rows], ref.cost.sum(axis=1), "cost_sum")
    close([r["cost_mean"] for r in rows], ref.cost.sum(axis=1) / n, "cost_mean")
    close([r["quality_mean"] for r in rows], ref.quality.sum(axis=1) / n, "quality_mean")


def check_path(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    """The merged exact path has the whole set's hull, AIQ and maximum."""
    hc, hq = ndch(*want)
    same_hull(*ndch(*got), hc, hq, "path")
    close(got[1].max(), want[1].max(), "path max quality")


# ----------------------------------------------------------------------- the pure reduction
def tiny(n: int, seed: int) -> RoutingData:
    rng = np.random.default_rng(seed)
    m = 4
    q = np.where(rng.random((n, m)) < 0.5, rng.random((n, m)).round(2), 0.0)
    c = np.exp(np.linspace(-9, -5, m)) * rng.uniform(0.5, 1.5, (n, m))
    return RoutingData(
        quality=q,
        cost=c,
        models=[f"m{j}" for j in range(m)],
        prompt_ids=[f"p{seed}-{i}" for i in range(n)],
        eval_names=["mmlu-x"] * n,
    )


KERNEL_ROUTERS = [
    ("zero", {"seed": 4}),
    ("oracle", {"no_model_correct": "upstream"}),
    ("random", {"seed": 5}),
    ("cascade", {"eps": 0.3, "order": "cost"}),
]


class TestShardReduce:
    @settings(max_examples=100, deadline=None)
    @given(
        n=st.integers(1, 150),
        block=st.integers(1, 40),
        cuts=st.lists(st.integers(1, 20), max_size=4),
        router=st.sampled_from(KERNEL_ROUTERS),
        seed=st.integers(0, 2**16),
    )
    def test_any_rows_blocks_and_shards(
        self, n: int, block: int, cuts: list[int], router: tuple[str, dict], seed: int
    ) -> None:
        """Any rows, block size and block-aligned shards: rows, replicates, path equal direct."""
        data = tiny(n + 20, seed)
        rng = np.random.default_rng(seed)
        test_rows = np.sort(rng.choice(data.n_prompts, n, replace=False))
        train = np.setdiff1d(np.arange(data.n_prompts), test_rows)
        name, params = router
        fitted = create(name, **params).fit(data.take(train))
        knobs = fitted.default_knobs()
        fit = FamilyFit(Cell(0, name, params, "s"), "f", test_rows, fitted, knobs, 0.0)
        bootstrap = 8 if n >= 30 else 0  # no replicate of all-zero weights (p < 1e-13)
        bounds = sorted({0, n, *(min(n, c * block) for c in cuts)})
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(cells_module, "BLOCK", block)
            nodes = {}  # each shard pre-reduces its blocks; the tree finishes them
            for lo, hi in itertools.pairwise(bounds):
                part = shard_stats(data, fit, lo, hi, bootstrap=bootstrap, seed=seed)
                nodes.update(block_nodes(fit, lo // block, part))
            whole = shard_stats(data, fit, 0, n, bootstrap=bootstrap, seed=seed)
            assert len(whole) == -(-n // block)
            got = reduce_stats(fit, nodes)
            whole_res = reduce_stats(fit, block_nodes(fit, 0, whole))
        ref = direct(data, create(name, **params), None, train, test_rows)
        check_rows(got, "f", ref)
        pd.testing.assert_frame_equal(  # bit-identical for any sharding
            pd.DataFrame(got.rows), pd.DataFrame(whole_res.rows), check_exact=True
        )
        if bootstrap:
            bc, bq = boot_means(data, ref, seed, bootstrap)
            close(got.boot["f"][0], bc, "boot cost")
            close(got.boot["f"][1], bq, "boot quality")
        if "f" in got.exact:
            check_path(got.exact["f"], ref.curve)


# -------------------------------------------------------------------------------------- Ray
@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray on 2 CPUs, set up as in test_ray_executor; stopped at the end."""
    tmp = tempfile.mkdtemp(prefix="rb10-")  # short: Ray's socket paths must fit in 107 bytes
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {**LOCAL_ENV, "RAY_TMPDIR": tmp}.items():
            mp.setenv(k, v)
        if not ray.is_initialized():
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                object_store_memory=200 * MB,
                _temp_dir=tmp,
                log_to_driver=False,
            )
        yield
        ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.ray
class TestRay:
    @pytest.mark.parametrize("shards", [1, 2, 3])
    def test_every_number_equals_direct(self, job, refs, local_ray, shards: int) -> None:
        """On Ray with 1, 2 and 3 actors every points and curves number equals the direct one."""
        spec, p, _, _ = job
        with make_executor(shards=shards, quiet=True) as ex:
            res = run_grid(spec, p, executor=ex)
            info = ex.actor_info()
        assert len(info) == shards
        assert sum(i["rows"] for i in info) == sum(len(r.rows) for r in refs.values()) // len(
            p.cells
        )
        check_results(p, res, refs)
