"""The Ray executor on real Ray: the in-process executor's numbers, bit for bit, on a local Ray with
1-3 actors, a 3-node cluster and a head joined by address; actors and nodes lost mid-run."""

from __future__ import annotations

import contextlib
import faulthandler
import io as io_text
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import ray
import yaml
from ray._private.utils import get_ray_client_dependency_error  # as `ray start` checks
from ray.cluster_utils import Cluster

from routerbench.cluster.cli import build_parser, main
from routerbench.cluster.ray_connect import LOCAL_ENV, environ
from routerbench.cluster.ray_executor import RayExecutor, make_executor
from routerbench.cluster.ray_layout import assign_blocks, plan_shards
from routerbench.engine import io, synth
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import ClusterError, RouterError, UsageError
from routerbench.engine.evaluate import BLOCK
from routerbench.engine.rowgroups import ParquetRows
from routerbench.sweeps.cells import CellResult
from routerbench.sweeps.execute import Plan, load_data, open_data, plan, run_grid
from routerbench.sweeps.spec import Spec, parse
from routerbench.sweeps.summary import Results, single_model_ranges, summarize

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
N = 20_000  # prompts: the large families span several blocks of BLOCK
MB = 1 << 20


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in the main thread if the block runs longer than ``seconds``."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"exceeded {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def _timeout() -> Iterator[None]:
    """Every test: TimeoutError after 300 s; and should Ray's C++ code block the interpreter so
    the signal never lands, dump every thread and exit after 420 s rather than hang CI."""
    faulthandler.dump_traceback_later(420, exit=True)
    with deadline(300):
        yield
    faulthandler.cancel_dump_traceback_later()


# -------------------------------------------------------------------------- data and Ray
def make_spec(bootstrap: int = 20, knn_k: int = 10, **split: Any) -> Spec:
    return parse(
        {
            "split": split,
            "routers": [
                {"name": "single", "grid": {"model": ["gpt-4-1106-preview", "claude-v1"]}},
                {"name": "oracle"},
                {"name": "zero"},
                {"name": "random"},
                {"name": "knn", "params": {"k": knn_k}},
            ],
            "metrics": {"bootstrap": bootstrap},
        }
    )


@pytest.fixture(scope="module")
def data():
    return synth.generate(N, 0, with_text=False)


@pytest.fixture(scope="module")
def job(data) -> tuple[Spec, Plan, Results]:
    """The spec, its plan, and the in-process executor's results."""
    spec = make_spec()
    p = plan(spec, data)
    return spec, p, run_grid(spec, p)


@pytest.fixture(scope="module")
def ray_env() -> Iterator[str]:
    """Ray's local settings (LOCAL_ENV) and a private temp dir; Ray stopped at the end."""
    tmp = tempfile.mkdtemp(prefix="rb5-")  # short: Ray's socket paths must fit in 107 bytes
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {**LOCAL_ENV, "RAY_TMPDIR": tmp}.items():
            mp.setenv(k, v)
        yield tmp
        if ray.is_initialized():
            ray.shutdown()
    subprocess.run(["rm", "-rf", tmp], check=False)


@pytest.fixture
def local_ray(ray_env: str) -> None:
    """A local Ray on 2 CPUs, shared by the tests that use it (started once)."""
    if not ray.is_initialized():
        with deadline(120):
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                object_store_memory=200 * MB,
                _temp_dir=ray_env,
                log_to_driver=False,
            )


@pytest.fixture
def no_ray(ray_env: str) -> Iterator[None]:
    """This process not connected to any Ray (the shared local one is stopped first)."""
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


def opts(spec: Spec, fail_fast: bool = False) -> dict[str, Any]:
    return {
        "bootstrap": spec.metrics["bootstrap"],
        "seed": spec.search["seed"],
        "fail_fast": fail_fast,
    }


def summary(spec: Spec, p: Plan, results: list[CellResult]) -> Results:
    results = sorted(results, key=lambda r: r.cell.index)
    return summarize(
        results,
        single_model_ranges(p.data, p.splits),
        aiq_range=spec.metrics["aiq_range"],
        confidence=spec.metrics["confidence"],
    )


def assert_same(a: Results, b: Results) -> None:
    """Points and curves equal bit for bit, timings aside."""
    pd.testing.assert_frame_equal(
        a.points.drop(columns="seconds"), b.points.drop(columns="seconds"), check_exact=True
    )
    pd.testing.assert_frame_equal(a.curves, b.curves, check_exact=True)


def run_until_first(
    ex: RayExecutor, p: Plan, spec: Spec
) -> tuple[Iterator[CellResult], CellResult]:
    it = iter(ex(p.data, p.cells, {s.name: s for s in p.splits}, opts(spec)))
    return it, next(it)


# ---------------------------------------------------------------------------------- units
class TestAssignBlocks:
    def test_balanced_contiguous_runs(self) -> None:
        """Every actor holds one non-empty run of consecutive blocks, its rows within one block
        of an even share."""
        sizes = [BLOCK] * 9 + [100, 3000, 7]
        owner = assign_blocks(sizes, 4)
        assert (np.diff(owner) >= 0).all() and set(owner.tolist()) == {0, 1, 2, 3}
        loads = np.bincount(owner, weights=sizes, minlength=4)
        assert np.abs(loads - sum(sizes) / 4).max() <= BLOCK

    def test_deterministic(self) -> None:
        """The same sizes give the same owners."""
        sizes = [5, BLOCK, 17, BLOCK, 1]
        assert assign_blocks(sizes, 3).tolist() == assign_blocks(sizes, 3).tolist()


class TestPlanShards:
    def test_partition_of_test_rows(self, job) -> None:
        """Every block of every (split, family) is in exactly one shard; together, the test rows."""
        _, p, _ = job
        splits = {s.name: s for s in p.splits}
        keys, n_blocks, parts = plan_shards(splits, 3)
        assert len(parts) == 3
        for (split, fam), key in keys.items():
            got = {}
            for part in parts:
                if key in part:
                    blocks, rows = part[key]
                    for i, b in enumerate(blocks.tolist()):
                        got[b] = rows[i * BLOCK : (i + 1) * BLOCK]
            assert sorted(got) == list(range(n_blocks[key]))
            whole = np.concatenate([got[b] for b in range(n_blocks[key])])
            np.testing.assert_array_equal(whole, splits[split].test[fam])

    def test_fewer_blocks_than_shards(self, job) -> None:
        """Asking for more shards than blocks gives one shard per block."""
        _, p, _ = job
        _, n_blocks, parts = plan_shards({s.name: s for s in p.splits}, 10_000)
        assert len(parts) == sum(n_blocks.values())


class TestMakeExecutor:
    def test_bad_shards(self) -> None:
        """--shards 0 is a usage error naming the flag."""
        with pytest.raises(UsageError, match="--shards must be >= 1"):
            make_executor(shards=0)

    def test_bad_address(self) -> None:
        """An address that is neither auto nor HOST:PORT is a usage error."""
        with pytest.raises(UsageError, match="--address must be 'auto' or HOST:PORT"):
            make_executor(address="head node")

    def test_cli_one_line_error(self, tmp_path: Path, capsys) -> None:
        """The CLI prints one line and exits 2 for --shards 0, writing nothing."""
        rc = main(["run", "--executor", "ray", "--shards", "0", "--quiet", "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert rc == 2
        assert err.strip().splitlines() == ["routerbench: error: --shards must be >= 1 (got 0)"]
        assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------ local Ray
class TestBitIdentical:
    @pytest.mark.parametrize("shards", [1, 2, 3])
    def test_same_as_in_process(self, job, local_ray, shards: int) -> None:
        """Points and curves equal the in-process executor's, bit for bit, for 1, 2 and 3 actors."""
        spec, p, expected = job
        with make_executor(shards=shards, quiet=True) as ex:
            got = run_grid(spec, p, executor=ex)
            info = ex.actor_info()
        assert_same(expected, got)
        assert len(info) == shards
        assert sum(i["rows"] for i in info) == sum(len(r) for r in p.splits[0].test.values())

    def test_second_call_reuses_actors(self, job, local_ray) -> None:
        """A second call on the same data and splits reuses the actors and gives the same rows."""
        spec, p, expected = job
        with make_executor(shards=2, quiet=True) as ex:
            first = run_grid(spec, p, executor=ex)
            pids = [i["pid"] for i in ex.actor_info()]
            second = run_grid(spec, p, executor=ex)
            assert [i["pid"] for i in ex.actor_info()] == pids
        assert_same(expected, first)
        assert_same(expected, second)

    def test_leaves_a_joined_ray_running(self, job, local_ray) -> None:
        """An executor that found Ray running leaves it running when closed."""
        spec, p, _ = job
        with make_executor(shards=1, quiet=True) as ex:
            list(ex(p.data, p.cells[:1], {s.name: s for s in p.splits}, opts(spec)))
        assert ray.is_initialized()


class TestFailedCells:
    def test_failed_rows_as_in_process(self, data, local_ray) -> None:
        """A fit that fails (k above a family's training rows) gives the same failed rows."""
        spec = make_spec(bootstrap=0, knn_k=40)
        p = plan(spec, data)
        expected = run_grid(spec, p)
        assert (expected.points["status"] == "failed").any()
        with make_executor(shards=2, quiet=True) as ex:
            assert_same(expected, run_grid(spec, p, executor=ex))

    def test_fail_fast_raises_the_error(self, data, local_ray) -> None:
        """With fail_fast, the router's own error reaches the caller (one line in the CLI)."""
        spec = make_spec(bootstrap=0, knn_k=40)
        p = plan(spec, data)
        with make_executor(shards=2, quiet=True) as ex, pytest.raises(RouterError, match="k=40"):
            run_grid(spec, p, executor=ex, fail_fast=True)


class TestActorsReadTheirRows:
    def test_parquet_path_equals_in_process(
        self, data, local_ray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """From a Parquet file the driver holds only the footer (never loads the table: io.load
        is broken in this process); actors read their row groups and fit tasks their training
        rows; points and curves equal the in-process run on the loaded file, bit for bit, with
        the training sets capped by split.max_train on both paths."""
        url = str(tmp_path / "d.parquet")
        src = str(tmp_path / "src.parquet")
        io.save(data, src)
        with contextlib.redirect_stdout(io_text.StringIO()):
            assert main(["data", "convert", src, url]) == 0  # row groups by family
        spec = make_spec(max_train=900)
        expected = run_grid(spec, plan(spec, load_data(spec, url)))
        with make_executor(shards=3, quiet=True) as ex:
            p = plan(spec, open_data(spec, url))
            assert isinstance(p.data, ParquetRows)
            assert max(len(r) for r in p.splits[0].train.values()) == 900
            monkeypatch.setattr(io, "load", _refuse)
            got = run_grid(spec, p, executor=ex)
        assert_same(expected, got)

    def test_long_table_is_loaded(self, tmp_path: Path) -> None:
        """A Parquet file in another layout (a long table) is loaded by this process."""
        url = str(tmp_path / "long.parquet")
        io.save(synth.generate(300, 0, with_text=False), url, format="long")
        assert isinstance(open_data(make_spec(), url), RoutingData)


def _refuse(*a: object, **k: object) -> None:
    raise AssertionError("the driver loaded the table")


@pytest.fixture(scope="module")
def wide_job(data) -> tuple[Spec, Plan, Results]:
    """A job with more cells than the executor opens at once (every single model), so work for
    every actor is still to be sent after the first result."""
    spec = parse(
        {
            "routers": [{"name": "single"}, {"name": "oracle"}, {"name": "random"}],
            "metrics": {"bootstrap": 5},
        }
    )
    p = plan(spec, data)
    return spec, p, run_grid(spec, p)


class TestActorKilled:
    def test_killed_actor_replaced(self, wide_job, local_ray) -> None:
        """An actor killed after the first result is replaced; every row comes once, unchanged."""
        spec, p, expected = wide_job
        assert len(p.cells) > 2 * 2 + 2  # more than the cells open at once (max_open)
        with make_executor(shards=2, quiet=True) as ex:
            it, first = run_until_first(ex, p, spec)
            victim = ex.actor_info()[1]["pid"]
            ray.kill(ex.actors[1], no_restart=True)
            results = [first, *it]
            pids = [i["pid"] for i in ex.actor_info()]
            assert ex.replacements >= 1
        assert victim not in pids
        assert sorted(r.cell.index for r in results) == [c.index for c in p.cells]
        got = summary(spec, p, results)
        keys = ["cell_id", "family", "knob"]
        assert not got.points.duplicated(subset=keys).any()
        assert_same(expected, got)

    def test_too_many_deaths_one_error(self, wide_job, local_ray) -> None:
        """Past the replacement limit the executor stops with a ClusterError saying so."""
        spec, p, _ = wide_job
        with make_executor(shards=2, quiet=True) as ex:
            it, _first = run_until_first(ex, p, spec)
            ex.replacements = 4 * 2  # at the limit: the next death is one too many
            ray.kill(ex.actors[1], no_restart=True)
            with pytest.raises(ClusterError, match="died 9 times"):
                list(it)

    def test_cluster_error_is_one_line(self, monkeypatch, capsys) -> None:
        """The command prints a ClusterError as one line and exits 1 (a fault, not bad input)."""
        from routerbench.cluster import cli
        from routerbench.cluster.cli import run as run_verbs

        def boom(args: object) -> int:
            raise ClusterError("Ray actors died 9 times (limit 8)")

        monkeypatch.setattr(run_verbs, "cmd_run", boom)
        assert cli.main(["run"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "died 9 times" in err[0] and "Traceback" not in err[0]


def cli_run(argv: list[str], env: dict[str, str] | None = None) -> pd.DataFrame:
    """``routerbench run ARGV --run-id r`` in a fresh process; its points table."""
    out = argv[argv.index("--out") + 1]
    proc = subprocess.run(
        [str(VENV_BIN / "routerbench"), "run", *argv, "--run-id", "r"],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    return pd.read_parquet(Path(out) / "r" / "points.parquet")


def cli_local(argv: list[str]) -> pd.DataFrame:
    """The same with the in-process executor, in this process."""
    out = argv[argv.index("--out") + 1]
    with contextlib.redirect_stdout(io_text.StringIO()):
        assert main(["run", *argv, "--run-id", "r", "--executor", "local"]) == 0
    return pd.read_parquet(Path(out) / "r" / "points.parquet")


def assert_same_points(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.drop(columns="seconds"), b.drop(columns="seconds"), check_exact=True
    )


@pytest.fixture(scope="module")
def small_url(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("data") / "d.parquet")
    io.save(synth.generate(12000, 1, with_text=False), url)  # knn k = 10 fits every family
    return url


class TestCommandLine:
    def test_run_starts_and_stops_its_own_ray(self, tmp_path: Path, small_url: str) -> None:
        """`routerbench run --executor ray` in a fresh process writes the in-process executor's
        points, and leaves no Ray process or temp dir behind."""
        short = Path(tempfile.mkdtemp(prefix="rb5c-"))  # Ray's socket paths must stay short
        common = ["--data", small_url, "--quiet", "--no-plots"]
        got = cli_run(
            [*common, "--out", str(tmp_path / "ray"), "--executor", "ray", "--shards", "2"],
            env={"TMPDIR": str(short)},
        )
        leftover = list(short.iterdir())
        short.rmdir()
        assert not leftover
        assert not _pids_mentioning(str(short))
        assert_same_points(cli_local([*common, "--out", str(tmp_path / "local")]), got)


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line mentions ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry.name))
    return found


# ------------------------------------------------------------------------------ clusters
@pytest.fixture(scope="class")
def cluster(ray_env: str) -> Iterator[tuple[Cluster, list[Any]]]:
    """A head and two worker nodes on this machine (1 CPU each), with fast node-death detection."""
    if ray.is_initialized():
        ray.shutdown()
    with deadline(180):
        c = Cluster(
            initialize_head=True,
            connect=True,
            head_node_args={
                "num_cpus": 1,
                "object_store_memory": 100 * MB,
                "include_dashboard": False,
                "_system_config": {
                    "health_check_initial_delay_ms": 0,
                    "health_check_period_ms": 500,
                    "health_check_failure_threshold": 3,
                },
            },
        )
        workers = [c.add_node(num_cpus=1, object_store_memory=100 * MB) for _ in range(2)]
        c.wait_for_nodes()
    yield c, workers
    ray.shutdown()
    c.shutdown()


class TestMultiNode:
    def test_pinned_actors(self, job, cluster) -> None:
        """Actors pinned to the two worker nodes run there and give the in-process numbers."""
        spec, p, expected = job
        _, workers = cluster
        nodes = [w.node_id for w in workers]
        with make_executor(shards=4, quiet=True, nodes=nodes) as ex:
            got = run_grid(spec, p, executor=ex)
            placed = [i["node_id"] for i in ex.actor_info()]
        assert placed == [nodes[0], nodes[1], nodes[0], nodes[1]]
        assert_same(expected, got)

    def test_worker_node_lost(self, job, cluster) -> None:
        """A worker node removed mid-run: its actors move elsewhere; same rows, each once."""
        spec, p, expected = job
        c, workers = cluster
        nodes = [w.node_id for w in workers]
        with make_executor(shards=4, quiet=True, nodes=nodes) as ex:
            it, first = run_until_first(ex, p, spec)
            c.remove_node(workers[1])
            results = [first, *it]
            placed = {i["node_id"] for i in ex.actor_info()}
            assert ex.replacements >= 2
        assert nodes[1] not in placed
        got = summary(spec, p, results)
        assert not got.points.duplicated(subset=["cell_id", "family", "knob"]).any()
        assert_same(expected, got)


HEAD_ARGS = [
    "--head", "--port=0", "--block", "--num-cpus=2", "--node-ip-address=127.0.0.1",
    "--include-dashboard=false", "--object-store-memory=150000000",
    "--dashboard-port=0", "--disable-usage-stats",
]  # fmt: skip


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (Ray's client server takes no port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_head(ray_env: str) -> tuple[subprocess.Popen[bytes], str, str]:
    """``ray start --head --block`` on free ports: (process, temp dir, address). A head that
    exits while starting (seen once in a full run: its raylet timed out) is started once more;
    twice, and the test is skipped with the tails of its logs."""
    reasons = []
    for _ in range(2):
        temp = tempfile.mkdtemp(prefix="rbh-", dir=ray_env)
        argv = [str(VENV_BIN / "ray"), "start", *HEAD_ARGS, f"--temp-dir={temp}"]
        if get_ray_client_dependency_error() is None:  # else no client server starts at all
            argv.append(f"--ray-client-server-port={free_port()}")
        # Ports that default to fixed numbers: free ones, so another Ray on the machine (a
        # developer's, a benchmark's) does not make this head fail to start.
        for flag in (
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--metrics-export-port",
            "--runtime-env-agent-port",
        ):
            argv.append(f"{flag}={free_port()}")
        log = Path(temp) / "ray-start.log"
        head = subprocess.Popen(
            argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        address_file = Path(temp) / "ray_current_cluster"
        with deadline(120):
            while not address_file.exists() or not address_file.read_text().strip():
                if head.poll() is not None:
                    break
                time.sleep(0.5)
        if head.poll() is None:
            return head, temp, address_file.read_text().strip()
        tail = log.read_text(errors="replace").strip().splitlines()[-2:]
        for f in sorted(Path(temp).glob("session_*/logs/raylet.*")):
            tail += [f.name, *f.read_text(errors="replace").splitlines()[-5:]]
        reasons.append(f"exited {head.returncode}: {tail}")
    pytest.skip(f"`ray start --head` failed twice: {reasons}")


class TestJoinByAddress:
    def test_joins_a_started_head(self, ray_env: str, tmp_path: Path, small_url: str) -> None:
        """`routerbench run --address` joins a head started by `ray start --head --port=0`; same
        points as in process; the head is stopped by its PID with everything it started."""
        head, temp, address = start_head(ray_env)
        common = ["--data", small_url, "--quiet", "--no-plots"]
        try:
            got = cli_run(
                [*common, "--out", str(tmp_path / "ray"), "--executor", "ray", "--shards", "2",
                 "--address", address],
                env=LOCAL_ENV,  # read when Ray is imported: the driver stays on 127.0.0.1
            )  # fmt: skip
        finally:
            head.terminate()  # `ray start --block` stops the processes it started on SIGTERM
            head.wait(timeout=90)
        with deadline(60):
            while _pids_mentioning(temp):
                time.sleep(0.5)
        assert_same_points(cli_local([*common, "--out", str(tmp_path / "local")]), got)

    def test_unreachable_address(self, no_ray, tmp_path: Path, small_url: str, capsys) -> None:
        """An address where no Ray answers ends with one line and exit code 2, at once."""
        argv = ["run", "--data", small_url, "--quiet", "--out", str(tmp_path)]
        rc = main([*argv, "--executor", "ray", "--address", f"127.0.0.1:{free_port()}"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2
        assert len(err) == 1 and err[0].startswith("routerbench: error: --address 127.0.0.1:")
        assert not ray.is_initialized()
        assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------ deployment
DEPLOY = ROOT / "cluster" / "deploy"
COMMAND = re.compile(r"(?<![\w/~.-])routerbench\s+(?:run|leaderboard)\b[^;&|'\"#>]*")


def commands(doc: Any) -> list[list[str]]:
    """The routerbench command lines in every string of a YAML document."""
    if isinstance(doc, dict):
        return [c for v in doc.values() for c in commands(v)]
    if isinstance(doc, list):
        return [c for v in doc for c in commands(v)]
    if isinstance(doc, str):
        return [shlex.split(m.group(0))[1:] for m in COMMAND.finditer(doc)]
    return []


def has_verb(verb: str) -> bool:
    """Whether ``routerbench VERB`` exists (its --help exits 0; an unknown verb exits 2)."""
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        with contextlib.redirect_stderr(null):
            try:
                build_parser().parse_args([verb, "--help"])
            except SystemExit as e:
                return e.code == 0
    return True


class TestDeployFiles:
    def test_cluster_launcher_config_is_valid(self) -> None:
        """ray-cluster.yaml passes Ray's own cluster-config schema."""
        from ray.autoscaler._private.util import prepare_config, validate_config

        config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
        validate_config(prepare_config(config))

    def test_rayjobs(self) -> None:
        """rayjob.yaml holds two KubeRay RayJobs (a sweep and the nightly) with a worker group."""
        docs = list(yaml.safe_load_all((DEPLOY / "rayjob.yaml").read_text()))
        assert [d["kind"] for d in docs] == ["RayJob", "RayJob"]
        for d in docs:
            assert d["apiVersion"] == "ray.io/v1"
            assert d["spec"]["rayClusterSpec"]["workerGroupSpecs"]
            assert "--executor ray --address auto" in d["spec"]["entrypoint"]

    @pytest.mark.parametrize("name", ["ray-cluster.yaml", "rayjob.yaml"])
    def test_run_commands_parse(self, name: str) -> None:
        """Every `routerbench run` in the file parses with our CLI, with a spec file that exists."""
        docs = list(yaml.safe_load_all((DEPLOY / name).read_text()))
        runs = [argv for d in docs for argv in commands(d) if argv[0] == "run"]
        assert runs
        for argv in runs:
            args = build_parser().parse_args(argv)
            assert args.executor == "ray" and args.address == "auto"
            assert (ROOT / args.spec).is_file()

    @pytest.mark.parametrize("name", ["ray-cluster.yaml", "rayjob.yaml"])
    def test_nightly_commands_parse(self, name: str) -> None:
        """Every `routerbench leaderboard nightly` in the file parses with our CLI."""
        if not has_verb("leaderboard"):
            pytest.skip("the leaderboard verb is not in the CLI yet (issue 6)")
        docs = list(yaml.safe_load_all((DEPLOY / name).read_text()))
        nightly = [
            argv for d in docs for argv in commands(d) if argv[:2] == ["leaderboard", "nightly"]
        ]
        assert nightly
        for argv in nightly:
            args = build_parser().parse_args(argv)
            assert all((ROOT / s).is_file() for s in args.specs)


class TestEnviron:
    def test_sets_unset_variables_for_the_block_only(self, monkeypatch) -> None:
        """Ray's local settings are set only while Ray starts: an unset variable is removed
        afterwards and a variable the user set is never overridden."""
        monkeypatch.delenv("RB_TEST_UNSET", raising=False)
        monkeypatch.setenv("RB_TEST_USER", "mine")
        with environ({"RB_TEST_UNSET": "1", "RB_TEST_USER": "theirs"}):
            assert os.environ["RB_TEST_UNSET"] == "1"
            assert os.environ["RB_TEST_USER"] == "mine"
        assert "RB_TEST_UNSET" not in os.environ
        assert os.environ["RB_TEST_USER"] == "mine"
