"""RoutingData validation and views."""

from __future__ import annotations

import doctest
import hashlib
import pickle

import numpy as np
import pytest

from routerbench.engine import data as data_mod
from routerbench.engine.data import RoutingData, family_of
from routerbench.engine.errors import DataError
from routerbench.engine.rng import stable_keys


def make(**kw):
    base = dict(
        quality=[[1.0, 0.0], [0.5, 1.0]],
        cost=[[0.2, 0.1], [0.2, 0.1]],
        models=["a", "b"],
        prompt_ids=["p0", "p1"],
        eval_names=["mmlu-astronomy", "hellaswag"],
        source="t.parquet",
    )
    base.update(kw)
    return RoutingData(**base)


class TestFamilyOf:
    def test_pools_prefixes(self) -> None:
        """MMLU subjects and mtbench variants pool into their family; others keep their name."""
        assert family_of("mmlu-professional-law") == "mmlu"
        assert family_of("mtbench-reference") == "mtbench"
        assert family_of("grade-school-math") == "grade-school-math"
        assert family_of("mmlux") == "mmlux"


class TestRoutingData:
    def test_valid(self) -> None:
        """A valid table gives read-only float arrays and derived families."""
        d = make()
        assert d.quality.dtype == np.float64 and not d.quality.flags.writeable
        assert d.families.tolist() == ["mmlu", "hellaswag"]
        assert d.family_names() == ["mmlu", "hellaswag"]

    @pytest.mark.parametrize(
        ("kw", "needle"),
        [
            ({"quality": [[1.5, 0.0], [0.5, 1.0]]}, "quality must lie in [0, 1], model 'a'"),
            ({"cost": [[-0.2, 0.1], [0.2, 0.1]]}, "cost must be >= 0, model 'a'"),
            ({"cost": [[np.nan, 0.1], [0.2, 0.1]]}, "cost is NaN where quality is known"),
            ({"cost": [[np.inf, 0.1], [0.2, 0.1]]}, "cost must be finite"),
            ({"models": ["a", "a"]}, "model names must be unique"),
            ({"models": ["a"]}, "2 model columns but 1 model names"),
            ({"prompt_ids": ["p0", "p0"]}, "prompt ids must be unique, 'p0'"),
            ({"cost": [[0.1, 0.1]]}, "cost shape"),
            ({"features": np.ones((3, 2))}, "features must be (n=2, d)"),
        ],
    )
    def test_refuses(self, kw: dict, needle: str) -> None:
        """Each invalid field gives a one-line DataError naming the source and the problem."""
        with pytest.raises(DataError) as e:
            make(**kw)
        msg = str(e.value)
        assert needle in msg and "t.parquet" in msg and "\n" not in msg

    def test_missing_outcome_allowed(self) -> None:
        """NaN quality with NaN cost is a missing outcome; complete() drops its prompt."""
        d = make(quality=[[np.nan, 0.0], [0.5, 1.0]], cost=[[np.nan, 0.1], [0.2, 0.1]])
        assert d.missing.sum() == 1
        assert d.complete().prompt_ids.tolist() == ["p1"]

    def test_take_and_fingerprint(self) -> None:
        """take() reorders every field; the fingerprint changes with the content."""
        d = make(prompts=["x", "y"], latency=[[1.0, 2.0], [3.0, 4.0]])
        r = d.take([1, 0])
        assert r.prompt_ids.tolist() == ["p1", "p0"] and r.prompts.tolist() == ["y", "x"]
        assert r.latency[0].tolist() == [3.0, 4.0]
        assert r.fingerprint() != d.fingerprint()
        assert make().fingerprint() == make().fingerprint()
        same_outcomes = make(prompts=["x", "z"])  # the prompt text is part of the identity
        assert same_outcomes.fingerprint() != make(prompts=["x", "y"]).fingerprint()

    def test_take_keeps_invariants(self) -> None:
        """take() of validated rows: read-only arrays, no repeated or out-of-range rows, a mask of
        the wrong length refused, the identity returns the same object."""
        d = make(features=[[1.0], [2.0]])
        r = d.take([1])
        assert not r.quality.flags.writeable and not r.features.flags.writeable
        assert r.families.tolist() == ["hellaswag"] and r.n_prompts == 1
        assert d.take([0, 1]) is d and d.take(np.array([True, True])) is d
        assert d.take([-1]).prompt_ids.tolist() == ["p1"]
        for rows, needle in (
            ([1, 1], "distinct"),
            ([2], "out of range"),
            ([], "at least one"),
            (np.array([True]), "mask needs 2 values"),
        ):
            with pytest.raises(DataError, match=needle):
                d.take(rows)

    def test_keys_cached_and_carried(self) -> None:
        """keys() equals stable_keys of the ids per domain; take() carries computed keys."""
        from routerbench.engine.rng import stable_keys

        d = make()
        k = d.keys(b"x")
        assert k is d.keys(b"x") and not k.flags.writeable
        assert k.tolist() == stable_keys(["p0", "p1"], b"x").tolist()
        assert d.keys().tolist() != k.tolist()
        r = d.take([1])
        assert r._keys[b"x"].tolist() == [k[1]]
        assert r.keys(b"x").tolist() == stable_keys(["p1"], b"x").tolist()

    def test_model_index_suggests(self) -> None:
        """An unknown model name suggests the closest one."""
        with pytest.raises(DataError, match="did you mean 'b'"):
            make(models=["alpha", "b"]).model_index("bb")


class TestCaches:
    def test_fingerprint_computed_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A second fingerprint() of one instance hashes nothing again and gives the same text."""
        d = make()
        calls = []
        real = hashlib.sha256
        monkeypatch.setattr(data_mod.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
        first = d.fingerprint()
        assert d.fingerprint() == first and len(calls) == 1

    def test_take_recomputes_fingerprint(self) -> None:
        """take() of a data set whose fingerprint is cached fingerprints the taken rows, as the
        same rows built directly do."""
        d = make()
        d.fingerprint()
        direct = make(
            quality=[[0.5, 1.0]], cost=[[0.2, 0.1]], prompt_ids=["p1"], eval_names=["hellaswag"]
        )
        assert d.take([1]).fingerprint() == direct.fingerprint() != d.fingerprint()

    def test_with_features_recomputes_fingerprint(self) -> None:
        """with_features() after a cached fingerprint gives the fingerprint of the new content."""
        d = make()
        d.fingerprint()
        feats = np.array([[1.0], [2.0]])
        got = d.with_features(feats, source="f.parquet").fingerprint()
        assert got == make(features=feats, features_source="f.parquet").fingerprint()
        assert got != d.fingerprint()

    def test_pickle_round_trip(self) -> None:
        """A pickled copy (as sent to a Ray worker) has the same content, fingerprint and keys,
        with or without caches computed, and takes rows with the right keys."""
        plain = pickle.loads(pickle.dumps(make()))
        d = make()
        k, fp = d.keys(b"x"), d.fingerprint()
        copy = pickle.loads(pickle.dumps(d))
        assert np.array_equal(copy.quality, d.quality) and copy.models == d.models
        assert copy.fingerprint() == fp == plain.fingerprint()
        assert copy.keys(b"x").tolist() == k.tolist() == plain.keys(b"x").tolist()
        assert copy.take([1]).keys(b"x").tolist() == stable_keys(["p1"], b"x").tolist()

    def test_cache_not_a_parameter(self) -> None:
        """The key cache is not a constructor argument and not in the repr."""
        with pytest.raises(TypeError, match="_keys"):
            make(_keys={b"x": np.zeros(2, np.uint64)})
        assert "_keys" not in repr(make())


class TestDocstrings:
    def test_examples_run(self) -> None:
        """The docstring examples of engine/data.py run and give what they show."""
        result = doctest.testmod(data_mod)
        assert result.attempted >= 3 and result.failed == 0
