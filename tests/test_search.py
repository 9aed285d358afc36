"""Optuna search: validation split, search space, ask/tell batches, Pareto front, resuming."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Sequence
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from routerbench.cluster.cli import main
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError, SpecError
from routerbench.sweeps.cells import Cell, CellResult
from routerbench.sweeps.execute import Plan, load_data, local_executor, plan
from routerbench.sweeps.search import run_optuna, validation_split
from routerbench.sweeps.spec import Spec, parse
from routerbench.sweeps.split import Split, make_splits, select_families

ROOT = Path(__file__).resolve().parents[1]
DATA: dict[str, Any] = {"synthetic_n": 3000, "synthetic_seed": 1, "families": ["mmlu", "hellaswag"]}
KNN = {"name": "knn", "space": {"k": {"low": 1, "high": 30, "log": True}}}
KNN2 = {
    "name": "knn",
    "space": {
        "k": {"low": 1, "high": 30, "log": True},
        "metric": {"choices": ["cosine", "euclidean"]},
    },
}
MLP = {
    "name": "mlp",
    "params": {"max_iter": 20},
    "space": {
        "hidden": {"choices": [[8], [8, 8]]},
        "alpha": {"low": 1e-5, "high": 1e-1, "log": True},
    },
}


def make_spec(
    routers: Sequence[dict[str, Any]] = (KNN,), bootstrap: int = 20, **search: Any
) -> Spec:
    doc = {
        "data": DATA,
        "routers": list(routers),
        "search": {"kind": "optuna", "trials": 6, "parallel": 2, **search},
        "metrics": {"bootstrap": bootstrap},
    }
    return parse(doc)


@pytest.fixture(scope="module")
def data() -> RoutingData:
    return load_data(make_spec())


class Recorder:
    """An executor that evaluates in this process and records every call it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Cell], dict[str, Split]]] = []

    def __call__(
        self, data: RoutingData, cells: Sequence[Cell], splits: dict[str, Split], opts: Any
    ) -> Iterable[CellResult]:
        self.calls.append((list(cells), splits))
        # yield in reverse: results may come back in any order
        return reversed(list(local_executor(data, cells, splits, opts)))

    def trial_cells(self) -> list[Cell]:
        return [c for cells, _ in self.calls for c in cells if c.split.endswith("-validation")]


def search(
    spec: Spec, data: RoutingData, journal: Path | None = None
) -> tuple[Any, pd.DataFrame, Recorder, Plan]:
    p = plan(spec, data)
    rec = Recorder()
    res, trials = run_optuna(
        spec, p, executor=rec, quiet=True, journal=None if journal is None else str(journal)
    )
    return res, trials, rec, p


def load_trials(journal: Path) -> list[optuna.trial.FrozenTrial]:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=None, storage=storage).get_trials()


class TestValidationSplit:
    @pytest.mark.parametrize("kind", ["upstream", "seeded", "kfold", "ood"])
    def test_carved_from_train_never_test(self, data: RoutingData, kind: str) -> None:
        """Validation and inner train partition the train rows; none is a test row."""
        fams = select_families(data, DATA["families"])
        for sp in make_splits(data, fams, kind, [3], folds=3):
            v = validation_split(sp, 0.25, seed=7)
            for fam in sp.test:
                inner, val = set(v.train[fam]), set(v.test[fam])
                assert not inner & val
                assert inner | val == set(sp.train[fam])
                assert not val & set(sp.test[fam]) and not inner & set(sp.test[fam])
                assert len(val) == round(0.25 * len(sp.train[fam]))

    def test_seeded(self, data: RoutingData) -> None:
        """The same seed draws the same rows; another seed draws others."""
        sp = make_splits(data, ["mmlu"])[0]
        a, b = validation_split(sp, 0.2, 1), validation_split(sp, 0.2, 1)
        c = validation_split(sp, 0.2, 2)
        assert np.array_equal(a.test["mmlu"], b.test["mmlu"])
        assert not np.array_equal(a.test["mmlu"], c.test["mmlu"])

    def test_tiny_family(self) -> None:
        """A family with two train rows keeps one on each side; with one, none is validation."""
        sp = Split("s", 0, train={"a": np.array([4, 9]), "b": np.array([3])}, test={})
        v = validation_split(sp, 0.01, 0)
        assert len(v.train["a"]) == 1 and len(v.test["a"]) == 1
        assert list(v.train["b"]) == [3] and len(v.test["b"]) == 0


class TestSearchSpace:
    @pytest.mark.parametrize(
        ("space", "needle"),
        [
            ({"k": {"low": 30, "high": 1}}, "'routers[0].space.k'"),
            ({"k": {"low": 0, "high": 5}}, "value 0 is refused: router 'knn': k must be"),
            ({"k": {"low": 1.5, "high": 5}}, "value 1.5 is refused"),
            ({"k": {"low": "1", "high": 5}}, "low, high and step must be finite numbers"),
            ({"k": {"low": 1, "high": 5, "log": "yes"}}, "log must be true or false"),
            ({"metric": {"choices": ["cosine", "manhattan"]}}, "'manhattan' is refused"),
        ],
    )
    def test_bad_space_refused_before_journal(
        self, data: RoutingData, tmp_path: Path, space: dict[str, Any], needle: str
    ) -> None:
        """A space the router cannot take is one SpecError naming the key; no journal is made."""
        spec = make_spec([{"name": "knn", "space": space}])
        journal = tmp_path / "run" / "study.journal"
        with pytest.raises(SpecError) as e:
            run_optuna(spec, plan(spec, data), quiet=True, journal=str(journal))
        assert needle in str(e.value) and "\n" not in str(e.value)
        assert not journal.parent.exists()

    def test_one_space_per_router_name(self, data: RoutingData) -> None:
        """Two routers of one name with spaces are refused (their parameters would collide)."""
        with pytest.raises(SpecError, match="two routers named 'knn' have a space"):
            search(make_spec([KNN, KNN2]), data)

    def test_conditional_space(self, data: RoutingData, tmp_path: Path) -> None:
        """Two searched routers: a 'router' choice, then that router's prefixed parameters;
        list choices reach the router as lists of layer sizes."""
        spec = make_spec([KNN, MLP], trials=6, sampler="random")
        _, trials, _, _ = search(spec, data, tmp_path / "j")
        assert set(trials["router"]) == {"knn", "mlp"}
        for t in load_trials(tmp_path / "j"):
            want = {"knn": {"knn.k"}, "mlp": {"mlp.hidden", "mlp.alpha"}}[t.params["router"]]
            assert set(t.params) == {"router"} | want
        hidden = [json.loads(p)["hidden"] for p in trials["params"][trials["router"] == "mlp"]]
        assert hidden and all(h in ([8], [8, 8]) for h in hidden)
        assert all(
            json.loads(p)["max_iter"] == 20 for p in trials["params"][trials.router == "mlp"]
        )

    def test_refused_combination_is_a_failed_trial(self, data: RoutingData) -> None:
        """Values valid on their own but refused together (strong == weak) are accepted in the
        space; a trial drawing them fails with the router's error and counts."""
        models = ["gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"]
        router = {
            "name": "threshold",
            "space": {"strong": {"choices": models}, "weak": {"choices": models[::-1]}},
        }
        _, trials, rec, _ = search(make_spec([router], trials=6, sampler="random"), data)
        failed = trials[trials["state"] == "FAIL"]
        assert len(trials) == 6 and 0 < len(failed) < 6
        assert failed["error"].str.contains("strong and weak must be different").all()
        assert len(rec.trial_cells()) == 6 - len(failed)
        same = [json.loads(p) for p in failed["params"]]
        assert all(p["strong"] == p["weak"] for p in same)

    def test_grid_becomes_choices(self, data: RoutingData) -> None:
        """A searched router's grid entries are categorical choices."""
        router = {**KNN, "grid": {"metric": ["euclidean"]}}
        _, trials, _, _ = search(make_spec([router]), data)
        assert {json.loads(p)["metric"] for p in trials["params"]} == {"euclidean"}


class TestRunOptuna:
    @pytest.mark.parametrize("sampler", ["tpe", "random"])
    def test_deterministic(self, data: RoutingData, sampler: str) -> None:
        """The same seed gives the same trials (parameters and values) and the same results."""
        spec = make_spec([KNN2], sampler=sampler, trials=12, parallel=3)
        res1, t1, _, _ = search(spec, data)
        res2, t2, _, _ = search(spec, data)
        cols = ["trial", "params", "validation_aiq", "state", "is_best"]
        pd.testing.assert_frame_equal(t1[cols], t2[cols])
        pd.testing.assert_frame_equal(res1.curves, res2.curves)
        other = make_spec([KNN2], sampler=sampler, trials=12, parallel=3, seed=5)
        assert list(search(other, data)[1]["params"]) != list(t1["params"])

    def test_ask_tell_batches(self, data: RoutingData) -> None:
        """`parallel` trials go to the executor together; the last batch takes the remainder."""
        _, trials, rec, _ = search(make_spec(trials=7, parallel=3), data)
        sizes = [len(cells) for cells, _ in rec.calls]
        assert sizes[:3] == [3, 3, 1] and len(rec.calls) == 4  # then the final evaluation
        batches = [[c.index for c in cells] for cells, _ in rec.calls[:3]]
        assert batches == [[0, 1, 2], [3, 4, 5], [6]]
        assert list(trials["trial"]) == list(range(7))
        assert (trials["state"] == "COMPLETE").all()

    def test_trials_scored_on_validation_best_on_test(self, data: RoutingData) -> None:
        """Trial cells see validation rows only (never a test row); the best configuration is
        then fitted on the whole train split and evaluated on the test split."""
        spec = make_spec([KNN])
        res, trials, rec, p = search(spec, data)
        real = p.splits[0]
        for cells, splits in rec.calls[:-1]:
            (val,) = splits.values()
            assert all(c.split == val.name for c in cells)
            for fam in real.test:
                assert not set(val.test[fam]) & set(real.test[fam])
                assert not set(val.train[fam]) & set(real.test[fam])
                assert set(val.test[fam]) < set(real.train[fam])
        final, splits = rec.calls[-1]
        assert splits == {real.name: real} and {c.split for c in final} == {real.name}
        assert [c.router for c in final] == ["knn", "zero", "frontier"]  # references added
        best = trials[trials["is_best"]]
        assert len(best) == 1
        assert best["validation_aiq"].iloc[0] == trials["validation_aiq"].max()
        knn = res.curves[res.curves["router"] == "knn"]
        assert set(knn["params"]) == {best["params"].iloc[0]}
        assert set(res.curves["split"]) == {"upstream"}
        assert set(res.curves["family"]) == set(DATA["families"])
        assert res.curves["aiq_lo"].notna().all()  # bootstrap intervals on the final cells

    def test_objective_is_mean_validation_aiq(self, data: RoutingData) -> None:
        """A trial's value is the mean over families of its cell's AIQ on validation rows."""
        from routerbench.sweeps.cells import evaluate_cell
        from routerbench.sweeps.summary import single_model_ranges, summarize

        spec = make_spec(trials=2)
        _, trials, rec, _ = search(spec, data)
        cell = rec.trial_cells()[0]
        val = rec.calls[0][1][cell.split]
        curves = summarize(
            [evaluate_cell(data, cell, val)], single_model_ranges(data, [val])
        ).curves
        value = trials.loc[trials["trial"] == cell.index, "validation_aiq"].iloc[0]
        assert value == pytest.approx(curves["aiq"].mean(), rel=1e-12)

    def test_pareto_front(self, data: RoutingData) -> None:
        """Two objectives: is_best marks exactly the non-dominated trials, and each of their
        distinct configurations is evaluated on the test split."""
        spec = make_spec([KNN2], objective=["aiq", "max_quality"], trials=10, sampler="random")
        res, trials, _, _ = search(spec, data)
        v = trials[["validation_aiq", "validation_max_quality"]].to_numpy()
        for i in range(len(v)):
            dominated = any(
                (v[j] >= v[i]).all() and (v[j] > v[i]).any() for j in range(len(v)) if j != i
            )
            assert trials["is_best"].iloc[i] == (not dominated)
        knn = res.curves[res.curves["router"] == "knn"]
        assert set(knn["params"]) == set(trials.loc[trials["is_best"], "params"])

    def test_baselines(self, data: RoutingData) -> None:
        """Routers without a space are not searched; they are evaluated beside the best."""
        res, trials, _, _ = search(make_spec([KNN, {"name": "oracle"}]), data)
        assert set(trials["router"]) == {"knn"}
        assert set(res.curves["router"]) == {"knn", "oracle", "zero", "frontier"}

    def test_failed_trials_count(self, data: RoutingData) -> None:
        """A trial whose cell fails is FAIL with its error and counts towards the budget."""
        router = {"name": "knn", "space": {"k": {"choices": [5, 4000]}}}
        _, trials, _, _ = search(make_spec([router], trials=8, sampler="random"), data)
        failed = trials[trials["state"] == "FAIL"]
        assert len(trials) == 8 and 0 < len(failed) < 8
        assert failed["error"].str.contains("k=4000 exceeds").all()
        assert failed["validation_aiq"].isna().all() and not failed["is_best"].any()

    def test_no_trial_completes(self, data: RoutingData) -> None:
        """If every trial fails, one RouterError says so with the first error (a plan made for
        another spec, so the space is not checked against the data first)."""
        router = {"name": "knn", "space": {"k": {"low": 4000, "high": 5000}}}
        p = plan(make_spec(trials=3), data)
        with pytest.raises(RouterError, match=r"none of the 3 trials completed .*k=4"):
            run_optuna(make_spec([router], trials=3), p, executor=Recorder(), quiet=True)

    def test_space_that_fits_no_family_refused(self, data: RoutingData) -> None:
        """Planned against the data, a space none of whose values fits any family is refused
        before any trial; one with some fitting values is not."""
        router = {"name": "knn", "space": {"k": {"low": 4000, "high": 5000}}}
        with pytest.raises(SpecError, match="no value of the space fits the data"):
            plan(make_spec([router], trials=3), data)
        router = {"name": "knn", "space": {"k": {"choices": [5, 4000]}}}
        cells = plan(make_spec([router], trials=3), data).cells
        assert [c.router for c in cells] == ["knn", "zero", "frontier"]


def _interrupting(after: int) -> Any:
    """An executor that stops (like a killed process: KeyboardInterrupt) after ``after`` results,
    each batch's results yielded last slot first (they may come back in any order)."""
    seen = [0]

    def executor(
        data: RoutingData, cells: Sequence[Cell], splits: dict[str, Split], opts: Any
    ) -> Iterable[CellResult]:
        for cell in reversed(cells):
            if seen[0] == after:
                raise KeyboardInterrupt
            seen[0] += 1
            yield from local_executor(data, [cell], splits, opts)

    return executor


def _stop(spec: Spec, data: RoutingData, after: int, journal: str, **kw: Any) -> None:
    """Run the search on ``journal`` and stop it after ``after`` results."""
    with pytest.raises(KeyboardInterrupt):
        run_optuna(spec, plan(spec, data), executor=_interrupting(after), quiet=True,
                   journal=journal, **kw)  # fmt: skip


def assert_same_tables(resumed: tuple[Any, pd.DataFrame], whole: tuple[Any, pd.DataFrame]) -> None:
    """Resumed and uninterrupted searches agree exactly: points (but their wall seconds),
    curves, and trials without the "interrupted" rows and the duration column."""
    (res_r, t_r), (res_w, t_w) = resumed, whole
    pd.testing.assert_frame_equal(res_r.points.drop(columns="seconds"),
                                  res_w.points.drop(columns="seconds"))  # fmt: skip
    pd.testing.assert_frame_equal(res_r.curves, res_w.curves)
    kept = t_r[t_r["error"] != "interrupted"].drop(columns="duration").reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, t_w.drop(columns="duration"))
    assert list(t_w["trial"]) == list(range(len(t_w)))


TABLES = ("points", "curves", "trials")
RESUMED = {"trials": 16, "parallel": 3}  # TPE models from slot 12 on (10 startup trials)


LINEAR = {  # a continuous space: TPE's draws there depend on the order of its history
    "name": "linear",
    "params": {"per_model": False},
    "space": {"C": {"low": 1e-3, "high": 1e3, "log": True}},
}
SPACES = {"knn": KNN2, "linear": LINEAR}


@pytest.fixture(scope="module")
def whole(data: RoutingData) -> Any:
    """Uninterrupted searches (in memory), by space and sampler."""
    done: dict[tuple[str, str], tuple[Any, pd.DataFrame]] = {}

    def get(space: str = "knn", sampler: str = "tpe") -> tuple[Any, pd.DataFrame]:
        if (space, sampler) not in done:
            spec = make_spec([SPACES[space]], sampler=sampler, bootstrap=0, **RESUMED)
            done[space, sampler] = search(spec, data)[:2]
        return done[space, sampler]

    return get


class TestResumeGivesUninterruptedNumbers:
    @pytest.mark.parametrize(
        ("space", "sampler", "stops"),
        [
            ("knn", "tpe", [0]),  # before any result
            ("knn", "tpe", [4]),  # mid-batch: slots 3..5, one told
            ("knn", "tpe", [6]),  # at a batch boundary
            ("knn", "tpe", [13]),  # mid-batch of a TPE-modelled batch (12..14)
            ("knn", "tpe", [5, 1, 4]),  # killed three times, each resume killed mid-batch again
            ("linear", "tpe", [1] * 11),  # stopped after every result: slots told out of order
            ("knn", "random", [7]),
        ],
    )
    def test_killed_and_resumed(
        self,
        data: RoutingData,
        tmp_path: Path,
        whole: Any,
        space: str,
        sampler: str,
        stops: list[int],
    ) -> None:
        """Stopped after k results (several k, several times), the resumed search ends with
        exactly the tables of an uninterrupted one, evaluating only the unfinished slots; an
        interrupted trial's slot is run again with the same parameters."""
        spec = make_spec([SPACES[space]], sampler=sampler, bootstrap=0, **RESUMED)
        journal = tmp_path / "study.journal"
        for k in stops:
            _stop(spec, data, k, str(journal))
        before = load_trials(journal)
        told = sum(t.state.name == "COMPLETE" for t in before)
        running = sum(t.state.name in ("RUNNING", "FAIL") for t in before)
        res, trials, rec, _ = search(spec, data, journal)
        assert len(rec.trial_cells()) == RESUMED["trials"] - told
        assert_same_tables((res, trials), whole(space, sampler))
        gone = trials[trials["error"] == "interrupted"]
        assert len(gone) == running and set(gone["state"]) <= {"FAIL"}
        for slot in gone["trial"]:
            rows = trials[trials["trial"] == slot]
            assert rows["params"].nunique() == 1 and rows["state"].iloc[-1] == "COMPLETE"

    def test_journal_on_fsspec_url(self, data: RoutingData, tmp_path: Path, whole: Any) -> None:
        """A journal on a memory:// URL is stored back after each told trial: a search stopped
        mid-batch resumes from it to the uninterrupted tables."""
        import fsspec

        spec = make_spec([KNN2], bootstrap=0, **RESUMED)
        url = f"memory://runs/{time.monotonic_ns()}/study.journal"
        _stop(spec, data, 8, url)
        (tmp_path / "copy.journal").write_bytes(fsspec.filesystem("memory").cat_file(url))
        stored = load_trials(tmp_path / "copy.journal")  # the object holds every told trial
        assert sorted(t.user_attrs["slot"] for t in stored if t.state.name == "COMPLETE") == [
            *range(6),
            7,
            8,  # slots 6..8 come back last first: 8, 7, then the stop
        ]
        rec = Recorder()
        res, trials = run_optuna(spec, plan(spec, data), executor=rec, quiet=True, journal=url)
        assert len(rec.trial_cells()) == RESUMED["trials"] - 8
        assert_same_tables((res, trials), whole())
        again = Recorder()
        run_optuna(spec, plan(spec, data), executor=again, quiet=True, journal=url)
        assert again.trial_cells() == []

    def test_journal_on_s3(self, data: RoutingData, s3: Any, whole: Any) -> None:
        """The same against an S3 server: the journal is one object beside the run."""
        spec = make_spec([KNN2], bootstrap=0, **RESUMED)
        url, so = f"{s3.bucket()}/run/study.journal", s3.options()
        _stop(spec, data, 10, url, storage_options=so)
        rec = Recorder()
        res, trials = run_optuna(
            spec, plan(spec, data), executor=rec, quiet=True, journal=url, storage_options=so
        )
        assert len(rec.trial_cells()) == RESUMED["trials"] - 10
        assert_same_tables((res, trials), whole())


class TestJournal:
    def test_resume_reruns_interrupted(self, data: RoutingData, tmp_path: Path) -> None:
        """A stopped search leaves running trials; the rerun marks them interrupted, evaluates
        their slots again (same parameters) and only the slots still missing."""
        spec = make_spec([KNN2], trials=8, parallel=2)
        journal = tmp_path / "study.journal"
        _stop(spec, data, 5, str(journal))
        before = load_trials(journal)
        complete = [t for t in before if t.state.name == "COMPLETE"]
        running = [t for t in before if t.state.name == "RUNNING"]
        assert len(complete) == 5 and len(running) == 1
        _, trials, rec, _ = search(spec, data, journal)
        assert len(rec.trial_cells()) == 8 - 5
        assert (trials["state"] == "COMPLETE").sum() == 8
        gone = trials[trials["error"] == "interrupted"]
        assert list(gone["trial"]) == [running[0].user_attrs["slot"]]
        retry = [t for t in load_trials(journal) if t.number > running[0].number]
        same = [t for t in retry if t.user_attrs["slot"] == running[0].user_attrs["slot"]]
        assert [t.params for t in same] == [running[0].params]
        assert same[0].state.name == "COMPLETE"

    def test_finished_study_not_rerun(self, data: RoutingData, tmp_path: Path) -> None:
        """Rerunning a finished search evaluates no trial and returns the same table."""
        spec = make_spec(trials=4)
        journal = tmp_path / "study.journal"
        _, first, _, _ = search(spec, data, journal)
        _, again, rec, _ = search(spec, data, journal)
        assert rec.trial_cells() == [] and len(rec.calls) == 1
        cols = ["trial", "params", "validation_aiq", "state", "is_best"]
        pd.testing.assert_frame_equal(first[cols], again[cols])

    def test_torn_last_line(self, data: RoutingData, tmp_path: Path) -> None:
        """A write cut short at the end of the journal is dropped; the study stays readable."""
        journal = tmp_path / "study.journal"
        spec_a, spec_b = make_spec(trials=2), make_spec(trials=3)
        search(spec_a, data, journal)
        with open(journal, "ab") as f:
            f.write(b'{"op_code": 5, "worker_id": "x", "trial_')
        search(spec_b, data, journal)  # appends after the repaired end
        _, trials, rec, _ = search(spec_a, data, journal)
        assert rec.trial_cells() == [] and len(trials) == 2

    def test_resume_after_kill(self, data: RoutingData, tmp_path: Path) -> None:
        """Killed (SIGKILL) halfway, a search rerun on the same journal evaluates exactly the
        trials not complete before the kill and ends with the tables of an uninterrupted run."""
        trials_n = 12
        doc = {
            "data": DATA,
            "routers": [KNN2],
            "search": {"kind": "optuna", "trials": trials_n, "parallel": 2},
            "metrics": {"bootstrap": 0},
        }
        journal, log = tmp_path / "study.journal", tmp_path / "evaluated.log"
        script = tmp_path / "search.py"
        script.write_text(
            textwrap.dedent(
                """
                import json, sys, time
                from routerbench.sweeps.execute import load_data, local_executor, plan
                from routerbench.sweeps.search import run_optuna
                from routerbench.sweeps.spec import parse

                spec = parse(json.loads(sys.argv[1]))
                def slow(data, cells, splits, opts):
                    for res in local_executor(data, cells, splits, opts):
                        time.sleep(0.4)  # a slower search: room to kill it halfway
                        with open(sys.argv[3], "a") as f:
                            f.write(f"{res.cell.index}\\n")
                        yield res
                run_optuna(spec, plan(spec, load_data(spec)), executor=slow, quiet=True,
                           journal=sys.argv[2])
                """
            )
        )
        stderr = tmp_path / "stderr.txt"
        with open(stderr, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(script), json.dumps(doc), str(journal), str(log)],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and proc.poll() is None:
                if journal.exists() and journal.stat().st_size:
                    done = [t for t in load_trials(journal) if t.state.name == "COMPLETE"]
                    if len(done) >= 4:
                        break
                time.sleep(0.05)
            assert proc.poll() is None, f"the search ended before the kill: {stderr.read_text()}"
        finally:
            proc.kill()  # SIGKILL, by PID: no chance to clean up
            proc.wait(timeout=30)
        before = [t for t in load_trials(journal) if t.state.name == "COMPLETE"]
        assert 4 <= len(before) < trials_n
        spec = parse(doc)
        res, trials, rec, _ = search(spec, data, journal)
        assert len(rec.trial_cells()) == trials_n - len(before)
        whole = search(spec, data)
        assert_same_tables((res, trials), whole[:2])
        assert (trials["state"] == "COMPLETE").sum() == trials_n
        assert set(trials["state"]) <= {"COMPLETE", "FAIL"}
        assert (trials.loc[trials["state"] == "FAIL", "error"] == "interrupted").all()
        first_run = {int(line) for line in log.read_text().split()}
        assert {t.user_attrs["slot"] for t in before} <= first_run


class TestCli:
    def test_run_writes_trials(self, tmp_path: Path) -> None:
        """`routerbench run` on an Optuna spec writes the trials table beside points and curves."""
        spec = tmp_path / "search.toml"
        spec.write_text(
            textwrap.dedent(
                """
                [data]
                synthetic_n = 3000
                families = ["mmlu"]
                [[routers]]
                name = "knn"
                space = { k = { low = 1, high = 20 } }
                [search]
                kind = "optuna"
                trials = 3
                [metrics]
                bootstrap = 0
                """
            )
        )
        out = tmp_path / "out"
        rc = main(["run", str(spec), "--out", str(out), "--run-id", "r", "--quiet", "--no-plots"])
        assert rc == 0
        trials = pd.read_parquet(out / "r" / "trials.parquet")
        assert len(trials) == 3 and trials["is_best"].sum() == 1
        curves = pd.read_parquet(out / "r" / "curves.parquet")
        assert set(curves["router"]) == {"knn", "zero", "frontier"}
        assert (curves.loc[curves["router"] == "knn", "trial"] >= 0).all()  # labelled knn#<slot>
        assert curves.loc[curves["router"] == "knn", "label"].str.match(r"knn#\d+$").all()

    def test_run_on_s3_resumes(
        self, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`routerbench run --out s3://…` keeps the study's journal beside the run: stopped
        mid-batch, the rerun writes the tables of an uninterrupted run."""
        from routerbench.cluster.cli import run as cli_run
        from routerbench.engine import storage as store

        spec = tmp_path / "search.toml"
        spec.write_text(
            textwrap.dedent(
                """
                [data]
                synthetic_n = 1500
                families = ["mmlu"]
                [[routers]]
                name = "knn"
                [routers.space]
                k = { low = 1, high = 20 }
                metric = { choices = ["cosine", "euclidean"] }
                [search]
                kind = "optuna"
                trials = 8
                parallel = 3
                [metrics]
                bootstrap = 0
                """
            )
        )
        so, base = s3.options(), s3.bucket()
        opts = [f"--storage-option={k}={json.dumps(v)}" for k, v in so.items()]
        argv = ["run", str(spec), "--run-id", "r", "--quiet", "--no-plots", *opts]
        assert main([*argv, "--out", f"{base}/whole"]) == 0
        with monkeypatch.context() as m:
            m.setattr(cli_run, "executor", lambda args: _interrupting(4))
            assert main([*argv, "--out", f"{base}/resumed"]) == 130
        assert store.exists(f"{base}/resumed/r/study.journal", so)
        assert main([*argv, "--out", f"{base}/resumed"]) == 0

        def tables(run: str) -> tuple[Any, pd.DataFrame]:
            read = [
                pd.read_parquet(BytesIO(store.read_bytes(f"{base}/{run}/r/{t}.parquet", so)))
                for t in TABLES
            ]
            return SimpleNamespace(points=read[0], curves=read[1]), read[2]

        resumed = tables("resumed")
        assert list(resumed[1].loc[resumed[1]["error"] == "interrupted", "trial"]) == [3, 4]
        assert_same_tables(resumed, tables("whole"))

    def test_shipped_spec_valid(self) -> None:
        """sweeps/optuna-knn-mlp.toml validates: 50 TPE trials over knn and mlp spaces."""
        from routerbench.sweeps.search_space import search_space
        from routerbench.sweeps.spec import load

        spec = load(str(ROOT / "sweeps" / "optuna-knn-mlp.toml"))
        assert spec.search["kind"] == "optuna" and spec.search["trials"] == 50
        assert [s.name for s in search_space(spec)] == ["knn", "mlp"]
        assert main(["validate", str(ROOT / "sweeps" / "optuna-knn-mlp.toml")]) == 0
