"""Loaders, writers and the summary of routerbench.engine.io."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import uuid
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_safepickle import G4, M7, PANDAS_2_1_PROTOCOL_5, _blob

from routerbench.engine import io, io_write
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError

NAN = float("nan")
TMP = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _rd(**fields: Any) -> RoutingData:
    """A RoutingData from plain lists (its fields are annotated as arrays)."""
    return RoutingData(**fields)


def _wide() -> pd.DataFrame:
    """A hand-built frame in the published wide schema; quality columns alphabetical, responses
    and costs in another (response) order, as in the published files."""
    obj = lambda *v: pd.Series(list(v), dtype=object)  # noqa: E731
    return pd.DataFrame(
        {
            "sample_id": obj("mmlu-astronomy.val.0", "hellaswag.dev.1", "mtbench.dev.2"),
            "prompt": obj("['Answer A or B.']", "['Finish: the cat']", "['Write, \"please\"']"),
            "eval_name": obj("mmlu-astronomy", "hellaswag", "mtbench"),
            "a/model": obj(0.0, 0.25, 1.0),
            "b-model": obj(1.0, 0.5, NAN),
            "b-model|model_response": obj("['B']", "['x']", "['y']"),
            "a/model|model_response": obj("['A']", "['z']", "['w']"),
            "b-model|total_cost": [0.01, 0.02, NAN],
            "a/model|total_cost": [0.1, 0.2, 0.3],
            "oracle_model_to_route_to": obj("b-model", "b-model", "a/model"),
        }
    )


def _pickle(tmp_path: Path, frame: pd.DataFrame, name: str = "f.pkl") -> str:
    path = str(tmp_path / name)
    frame.to_pickle(path)
    return path


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _mem(name: str) -> str:
    return f"memory://test-io/{uuid.uuid4().hex}/{name}"


def _fails(url: str, column: str | None, **kw: Any) -> str:
    """Load ``url`` expecting a one-line DataError naming the file (and ``column``)."""
    with pytest.raises(DataError) as err:
        io.load(url, **kw)
    msg = str(err.value)
    assert url in msg and "\n" not in msg, msg
    if column is not None:
        assert repr(column) in msg, msg
    return msg


def _same(a: RoutingData, b: RoutingData, *, lossless: bool = True) -> None:
    """Every field equal (NaN == NaN); ``lossless=False`` skips features and source."""
    np.testing.assert_array_equal(a.quality, b.quality)
    np.testing.assert_array_equal(a.cost, b.cost)
    assert a.models == b.models
    for field in ("prompt_ids", "eval_names", "families"):
        assert getattr(a, field).tolist() == getattr(b, field).tolist(), field
    for field in ("prompts", "latency") + (("features",) if lossless else ()):
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None) == (y is None), field
        if x is not None:
            np.testing.assert_array_equal(x, y)
            assert x.shape == y.shape
    assert a.synthetic == b.synthetic
    if lossless:
        assert a.source == b.source


# ---------------------------------------------------------------------------- random data
_chars = st.characters(codec="utf-8", exclude_characters="\x00")
_text = st.text(_chars, max_size=8)


@st.composite
def routing_data(draw: st.DrawFn, *, extras: bool = True) -> RoutingData:
    n, m = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    grid = st.sampled_from([0.0, 0.25, 0.5, 1.0, 0.1 + 0.2, NAN])
    q = np.array(draw(st.lists(grid, min_size=n * m, max_size=n * m))).reshape(n, m)
    c = np.array(
        draw(st.lists(st.floats(0, 10, allow_nan=False), min_size=n * m, max_size=n * m))
    ).reshape(n, m)
    c[
        np.isnan(q)
        & np.array(draw(st.lists(st.booleans(), min_size=n * m, max_size=n * m))).reshape(n, m)
    ] = NAN
    key = st.one_of(st.text(_chars, min_size=1, max_size=8), st.sampled_from(["001", "NA", "nan"]))
    ids = draw(st.lists(key, min_size=n, max_size=n, unique=True))
    models = draw(
        st.lists(
            st.sampled_from(["gpt-4", "a/b", "m,1", "x y", 'q"z']),
            min_size=m,
            max_size=m,
            unique=True,
        )
    )
    evals = draw(
        st.lists(
            st.sampled_from(["mmlu-x", "hellaswag", "mtbench-math", "other"]),
            min_size=n,
            max_size=n,
        )
    )
    kw: dict[str, Any] = {}
    if extras:
        if draw(st.booleans()):
            kw["prompts"] = draw(st.lists(_text, min_size=n, max_size=n))
        if draw(st.booleans()):
            d = draw(st.integers(0, 3))
            kw["features"] = np.array(
                draw(st.lists(st.floats(-2, 2), min_size=n * d, max_size=n * d))
            ).reshape(n, d)
        if draw(st.booleans()):
            kw["latency"] = np.array(
                draw(
                    st.lists(
                        st.one_of(st.floats(0, 5), st.just(NAN)), min_size=n * m, max_size=n * m
                    )
                )
            ).reshape(n, m)
        if draw(st.booleans()):
            kw["families"] = draw(st.lists(st.sampled_from(["f1", "f2"]), min_size=n, max_size=n))
        kw["source"] = draw(_text)
        kw["synthetic"] = draw(st.booleans())
    return _rd(quality=q, cost=c, models=models, prompt_ids=ids, eval_names=evals, **kw)


def _brute_oracle(data: RoutingData) -> list[str]:
    out = []
    for qs, cs in zip(data.quality.tolist(), data.cost.tolist(), strict=True):
        known = [v for v in qs if not math.isnan(v)]
        best = max(known) if known else 0.0
        if best <= 0:
            out.append("no_model_correct")
            continue
        pick = None
        for j, (v, c) in enumerate(zip(qs, cs, strict=True)):
            if v == best and (pick is None or c < cs[pick]):
                pick = j
        out.append(data.models[pick])  # type: ignore[index]
    return out


# ------------------------------------------------------------------------------- loaders
class TestLoadUpstreamWide:
    def test_reads_published_schema(self, tmp_path: Path) -> None:
        """Models in response order (not the alphabetical quality columns), costs matched by
        name, responses and oracle ignored."""
        d = io.load(_pickle(tmp_path, _wide()))
        assert d.models == ("b-model", "a/model")
        np.testing.assert_array_equal(d.quality, [[1.0, 0.0], [0.5, 0.25], [NAN, 1.0]])
        np.testing.assert_array_equal(d.cost, [[0.01, 0.1], [0.02, 0.2], [NAN, 0.3]])
        assert d.prompt_ids.tolist() == ["mmlu-astronomy.val.0", "hellaswag.dev.1", "mtbench.dev.2"]
        assert d.families.tolist() == ["mmlu", "hellaswag", "mtbench"]
        assert d.prompts is not None and d.prompts[2] == "['Write, \"please\"']"
        assert d.source.endswith("f.pkl") and not d.synthetic

    def test_pandas_2_1_file(self, tmp_path: Path) -> None:
        """A wide pickle written by pandas 2.1.2 / NumPy 1.26 loads with its values."""
        path = tmp_path / "old.pkl"
        path.write_bytes(_blob(PANDAS_2_1_PROTOCOL_5))
        d = io.load(str(path))
        assert d.models == (G4, M7)
        np.testing.assert_array_equal(d.quality, [[1.0, 0.0], [NAN, 0.25], [0.7, 0.5]])
        np.testing.assert_array_equal(d.cost, [[0.003, 4e-5], [NAN, 5e-5], [0.004, 6e-5]])
        assert d.eval_names.tolist() == ["mmlu-astronomy", "grade-school-math", "mtbench"]

    def test_none_and_numpy_scalars(self, tmp_path: Path) -> None:
        """None in a quality column is a missing outcome; NumPy scalars are numbers."""
        f = _wide()
        f["b-model"] = pd.Series([np.float64(1.0), None, None], dtype=object)
        f["b-model|total_cost"] = [0.01, NAN, NAN]
        d = io.load(_pickle(tmp_path, f))
        np.testing.assert_array_equal(d.quality[:, 0], [1.0, NAN, NAN])

    def test_format_override(self, tmp_path: Path) -> None:
        """format='upstream-wide' reads a pickle whatever its name."""
        d = io.load(_pickle(tmp_path, _wide(), "data.bin"), format="upstream-wide")
        assert d.n_prompts == 3

    @pytest.mark.parametrize(
        ("column", "mutate"),
        [
            ("sample_id", lambda f: f.drop(columns="sample_id")),
            ("eval_name", lambda f: f.drop(columns="eval_name")),
            ("a/model|total_cost", lambda f: f.drop(columns="a/model|total_cost")),
            ("c|total_cost", lambda f: f.assign(**{"c|total_cost": 0.1})),
            ("a/model|latency", lambda f: f.assign(**{"a/model|latency": 0.1})),
            ("a/model", lambda f: f.assign(**{"a/model": ["0.5", "1", "0"]})),
            ("a/model", lambda f: f.assign(**{"a/model": [True, False, True]})),
            (
                "a/model",
                lambda f: f.assign(**{"a/model": pd.Series([0.5, "x", 1.0], dtype=object)}),
            ),
            ("a/model", lambda f: f.assign(**{"a/model": [0.5, 1.5, 1.0]})),
            ("b-model", lambda f: f.assign(**{"b-model": [0.5, -0.25, NAN]})),
            ("a/model|total_cost", lambda f: f.assign(**{"a/model|total_cost": [0.1, -1.0, 0.3]})),
            ("a/model|total_cost", lambda f: f.assign(**{"a/model|total_cost": [0.1, NAN, 0.3]})),
            (
                "a/model|total_cost",
                lambda f: f.assign(**{"a/model|total_cost": [0.1, np.inf, 0.3]}),
            ),
            ("a/model|total_cost", lambda f: f.assign(**{"a/model|total_cost": ["a", "b", "c"]})),
            ("sample_id", lambda f: f.assign(sample_id=["x", "y", "x"])),
            ("sample_id", lambda f: f.assign(sample_id=["x", None, "z"])),
            ("eval_name", lambda f: f.assign(eval_name=["x", NAN, "z"])),
        ],
    )
    def test_mistakes_name_file_and_column(self, tmp_path: Path, column: str, mutate: Any) -> None:
        """Each mistake in a wide file is a one-line DataError naming the file and the column."""
        _fails(_pickle(tmp_path, mutate(_wide())), column)

    def test_empty_frame(self, tmp_path: Path) -> None:
        """A wide frame with no rows is refused."""
        assert "empty" in _fails(_pickle(tmp_path, _wide().iloc[:0]), None)

    def test_no_quality_columns(self, tmp_path: Path) -> None:
        """A frame with only the key columns is refused."""
        assert "quality" in _fails(
            _pickle(tmp_path, _wide()[["sample_id", "prompt", "eval_name"]]), None
        )

    def test_not_a_frame(self, tmp_path: Path) -> None:
        """A pickle holding something other than a DataFrame is refused."""
        path = tmp_path / "x.pkl"
        path.write_bytes(pickle.dumps(np.zeros(3)))
        assert "DataFrame" in _fails(str(path), None)


class TestLoadUpstreamLong:
    def _raw(self) -> pd.DataFrame:
        rows = [  # (sample_id, model_name, performance, cost); s1 has no row for "m2"
            ("s0", "m2", 1.0, 0.2),
            ("s0", "m1", 0.5, 0.1),
            ("s1", "m1", 0.0, 0.3),
        ]
        f = pd.DataFrame(rows, columns=["sample_id", "model_name", "performance", "cost"])
        f["prompt"] = ["['p0']", "['p0']", "['p1']"]
        f["eval_name"] = ["mmlu-a", "mmlu-a", "winogrande"]
        f["model_response"] = "['r']"
        return f.reset_index()  # the published raw file has an extra "index" column

    def test_pivot(self, tmp_path: Path) -> None:
        """Models in order of appearance; an absent pair is a missing outcome (NaN, NaN)."""
        d = io.load(_pickle(tmp_path, self._raw()))
        assert d.models == ("m2", "m1") and d.prompt_ids.tolist() == ["s0", "s1"]
        np.testing.assert_array_equal(d.quality, [[1.0, 0.5], [NAN, 0.0]])
        np.testing.assert_array_equal(d.cost, [[0.2, 0.1], [NAN, 0.3]])
        assert d.families.tolist() == ["mmlu", "winogrande"]
        assert d.prompts is not None and d.prompts.tolist() == ["['p0']", "['p1']"]

    def test_duplicate_pair(self, tmp_path: Path) -> None:
        """A (sample_id, model_name) pair given twice is refused, naming the pair."""
        f = self._raw()
        f = pd.concat([f, f.iloc[[1]]], ignore_index=True)
        msg = _fails(_pickle(tmp_path, f), None)
        assert "('s0', 'm1')" in msg and "sample_id" in msg and "model_name" in msg

    def test_inconsistent_eval_name(self, tmp_path: Path) -> None:
        """A sample whose rows disagree on eval_name is refused."""
        f = self._raw()
        f.loc[1, "eval_name"] = "mmlu-b"
        _fails(_pickle(tmp_path, f), "eval_name")

    @pytest.mark.parametrize("column", ["performance", "cost", "model_name", "prompt"])
    def test_missing_column(self, tmp_path: Path, column: str) -> None:
        """Each required raw column is checked."""
        f = self._raw().drop(columns=column)
        _fails(_pickle(tmp_path, f), column, format="upstream-long")

    def test_bad_performance(self, tmp_path: Path) -> None:
        """A performance outside [0, 1] names the column, the sample and the model."""
        f = self._raw()
        f.loc[2, "performance"] = 2.0
        msg = _fails(_pickle(tmp_path, f), "performance")
        assert "'s1'" in msg and "'m1'" in msg

    @TMP
    @given(data=routing_data(extras=False), seed=st.integers(0, 2**32 - 1))
    def test_matches_brute_force(self, tmp_path: Path, data: RoutingData, seed: int) -> None:
        """Shuffled long rows with pairs left out pivot to what a dict lookup gives."""
        rng = np.random.default_rng(seed)
        rows = [
            (p, m, data.quality[i, j], data.cost[i, j], data.eval_names[i])
            for i, p in enumerate(data.prompt_ids)
            for j, m in enumerate(data.models)
            if j == 0 or rng.random() < 0.7
        ]
        rows = [rows[k] for k in rng.permutation(len(rows))]
        f = pd.DataFrame(
            rows, columns=["sample_id", "model_name", "performance", "cost", "eval_name"]
        )
        f["prompt"] = "p"
        out = io.load(_pickle(tmp_path, f, f"{seed}.pkl"))
        table = {(p, m): (q, c) for p, m, q, c, _ in rows}
        for i, p in enumerate(out.prompt_ids):
            for j, m in enumerate(out.models):
                q, c = table.get((p, m), (NAN, NAN))
                assert out.quality[i, j] == q or (math.isnan(q) and math.isnan(out.quality[i, j]))
                assert out.cost[i, j] == c or (math.isnan(c) and math.isnan(out.cost[i, j]))
        assert list(out.models) == list(dict.fromkeys(m for _, m, *_ in rows))
        assert list(out.prompt_ids) == list(dict.fromkeys(p for p, *_ in rows))


class TestLoadLong:
    def test_minimal_csv(self, tmp_path: Path) -> None:
        """Only the required columns: eval_name = family = 'all'; ids stay strings."""
        url = _csv(
            tmp_path, "prompt_id,model,quality,cost\n001,b,1,0.5\n001,a,0.5,0.25\n002,a,0,0\n"
        )
        d = io.load(url)
        assert d.prompt_ids.tolist() == ["001", "002"] and d.models == ("b", "a")
        np.testing.assert_array_equal(d.quality, [[1.0, 0.5], [NAN, 0.0]])
        assert d.eval_names.tolist() == ["all", "all"] and d.families.tolist() == ["all", "all"]

    def test_family_only(self, tmp_path: Path) -> None:
        """A family column and no eval_name: eval_name defaults to the family."""
        d = io.load(_csv(tmp_path, "prompt_id,model,quality,cost,family\np,a,1,0,fam\n"))
        assert d.eval_names.tolist() == ["fam"] and d.families.tolist() == ["fam"]

    def test_eval_name_only(self, tmp_path: Path) -> None:
        """An eval_name column and no family: the family is derived from it."""
        d = io.load(_csv(tmp_path, "prompt_id,model,quality,cost,eval_name\np,a,1,0,mmlu-law\n"))
        assert d.eval_names.tolist() == ["mmlu-law"] and d.families.tolist() == ["mmlu"]

    def test_latency_and_prompt(self, tmp_path: Path) -> None:
        """Optional latency and prompt columns are read (prompt with a comma and quotes)."""
        text = (
            "prompt_id,model,quality,cost,latency,prompt\n"
            'p,a,1,0,2.5,"say ""hi"", then"\np,b,0,1,,"say ""hi"", then"\n'
        )
        d = io.load(_csv(tmp_path, text))
        np.testing.assert_array_equal(d.latency, [[2.5, NAN]])  # type: ignore[arg-type]
        assert d.prompts is not None and d.prompts.tolist() == ['say "hi", then']

    def test_parquet_without_metadata(self, tmp_path: Path) -> None:
        """A Parquet file without our metadata is read as a long table."""
        path = str(tmp_path / "t.parquet")
        pd.DataFrame(
            {
                "prompt_id": ["p", "p"],
                "model": ["a", "b"],
                "quality": [1.0, 0.0],
                "cost": [0.1, 0.2],
            }
        ).to_parquet(path)
        d = io.load(path)
        assert d.models == ("a", "b") and d.quality.tolist() == [[1.0, 0.0]]

    @pytest.mark.parametrize(
        ("text", "column"),
        [
            ("prompt_id,model,quality,cost,qualty\np,a,1,0,1\n", "qualty"),
            ("prompt_id,model,quality\np,a,1\n", "cost"),
            ("prompt_id,model,cost\np,a,1\n", "quality"),
            ("prompt_id,model,quality,cost\np,a,good,0\n", "quality"),
            ("prompt_id,model,quality,cost\np,a,1.5,0\n", "quality"),
            ("prompt_id,model,quality,cost\np,a,1,-0.5\n", "cost"),
            ("prompt_id,model,quality,cost\np,a,1,\n", "cost"),
            ("prompt_id,model,quality,cost\np,a,1,cheap\n", "cost"),
            ("prompt_id,model,quality,cost\n,a,1,0\n", "prompt_id"),
            ("prompt_id,model,quality,cost\np,,1,0\n", "model"),
            ("prompt_id,model,quality,cost,latency\np,a,1,0,-1\n", "latency"),
            ("prompt_id,model,quality,cost,family\np,a,1,0,x\np,b,1,0,y\n", "family"),
        ],
    )
    def test_mistakes_name_file_and_column(self, tmp_path: Path, text: str, column: str) -> None:
        """Each mistake in a long table is a one-line DataError naming the file and the column."""
        _fails(_csv(tmp_path, text), column)

    def test_unknown_column_lists_allowed(self, tmp_path: Path) -> None:
        """An unknown column is refused with the allowed names."""
        msg = _fails(_csv(tmp_path, "prompt_id,model,quality,cost,score\np,a,1,0,1\n"), "score")
        assert "'latency'" in msg and "'eval_name'" in msg

    def test_duplicate_pair(self, tmp_path: Path) -> None:
        """A (prompt_id, model) pair given twice is refused, naming the pair and rows."""
        msg = _fails(
            _csv(tmp_path, "prompt_id,model,quality,cost\np,a,1,0\nq,a,1,0\np,a,0,0\n"), None
        )
        assert "('p', 'a')" in msg and "rows 0 and 2" in msg

    def test_empty_table(self, tmp_path: Path) -> None:
        """A header without rows is refused."""
        assert "empty" in _fails(_csv(tmp_path, "prompt_id,model,quality,cost\n"), None)


class TestLoadErrors:
    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file names the URL."""
        assert "not found" in _fails(str(tmp_path / "nope.parquet"), None)

    def test_missing_memory_object(self) -> None:
        """A missing memory:// object names the URL."""
        assert "not found" in _fails(_mem("nope.pkl"), None)

    def test_unknown_suffix(self, tmp_path: Path) -> None:
        """A name with no known suffix asks for a format."""
        assert "format=" in _fails(str(tmp_path / "data.json"), None)

    def test_unknown_format(self, tmp_path: Path) -> None:
        """An unknown format= value lists the allowed ones."""
        msg = _fails(str(tmp_path / "d.pkl"), None, format="wide")
        assert all(f"'{f}'" in msg for f in io.FORMATS)

    @pytest.mark.parametrize("name", ["d.parquet", "d.pkl"])
    def test_truncated(self, tmp_path: Path, name: str) -> None:
        """A truncated Parquet file or pickle is a one-line DataError."""
        data = _rd(quality=[[1.0]], cost=[[0.1]], models=["a"], prompt_ids=["p"], eval_names=["e"])
        fmt = "parquet" if name.endswith("parquet") else "upstream-wide"
        io.save(data, str(tmp_path / name), format=fmt)
        payload = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(payload[: len(payload) // 2])
        assert "not a readable" in _fails(str(tmp_path / name), None)

    def test_binary_csv(self, tmp_path: Path) -> None:
        """Binary garbage named .csv is a one-line DataError."""
        path = tmp_path / "x.csv"
        path.write_bytes(b"\xff\xfe\x00\x81" * 50)
        _fails(str(path), None)

    def test_format_parquet_needs_our_layout(self, tmp_path: Path) -> None:
        """format='parquet' refuses a Parquet file without our metadata."""
        path = str(tmp_path / "t.parquet")
        pd.DataFrame(
            {"prompt_id": ["p"], "model": ["a"], "quality": [1.0], "cost": [0.1]}
        ).to_parquet(path)
        assert "routerbench.format" in _fails(path, None, format="parquet")

    def test_unsafe_pickle_refused(self, tmp_path: Path) -> None:
        """A pickle that would call os.system is refused and nothing runs."""
        from test_safepickle import _Touch

        target = tmp_path / "pwned"
        path = tmp_path / "evil.pkl"
        path.write_bytes(pickle.dumps(_Touch(str(target))))
        assert "refusing to unpickle" in _fails(str(path), None)
        assert not target.exists()


def _two_by_two(**fields: Any) -> RoutingData:
    """Two prompts x two models (override any field)."""
    kw: dict[str, Any] = {
        "quality": [[1.0, 0.0], [0.5, 1.0]],
        "cost": [[0.1, 0.2], [0.3, 0.4]],
        "models": ["a", "b"],
        "prompt_ids": ["p0", "p1"],
        "eval_names": ["mmlu-x", "hellaswag"],
    }
    return _rd(**(kw | fields))


def _unchecked(data: RoutingData, **fields: Any) -> RoutingData:
    """``data`` with fields replaced without validation: to write files that must be refused."""
    new = object.__new__(RoutingData)
    for f in dataclasses.fields(data):
        value = fields.get(f.name, getattr(data, f.name)) if f.init else {}  # {}: a fresh cache
        object.__setattr__(new, f.name, value)
    return new


def _parquet_meta(tmp_path: Path, **meta: bytes) -> str:
    """Our Parquet layout with schema metadata ``routerbench.<key>`` replaced."""
    table = io.to_table(_two_by_two())
    new = dict(table.schema.metadata) | {f"routerbench.{k}".encode(): v for k, v in meta.items()}
    path = str(tmp_path / "m.parquet")
    pq.write_table(table.replace_schema_metadata(new), path)
    return path


class TestLoadRefusesHostileFiles:
    @pytest.mark.parametrize("dim", [b"\xc2\xb2", b"\xd9\xa3", b"\xff\xfe", b"-3", b"1e3"])
    def test_features_dim_is_an_integer(self, tmp_path: Path, dim: bytes) -> None:
        """features_dim "²", an Arabic digit, invalid UTF-8 or a negative number is refused in one
        line naming the key (not a ValueError or UnicodeDecodeError)."""
        msg = _fails(_parquet_meta(tmp_path, features_dim=dim), None)
        assert "'routerbench.features_dim'" in msg

    @pytest.mark.parametrize("key", ["format", "models", "source"])
    def test_metadata_must_be_utf8(self, tmp_path: Path, key: str) -> None:
        """Schema metadata that is not UTF-8 is refused, naming the key."""
        msg = _fails(_parquet_meta(tmp_path, **{key: b"\xc3\x28"}), None)
        assert f"'routerbench.{key}'" in msg or "routerbench.format" in msg

    def test_models_json_too_deep(self, tmp_path: Path) -> None:
        """A models list nested 100,000 deep (RecursionError in json) is refused."""
        deep = b"[" * 100_000 + b"]" * 100_000
        assert "'routerbench.models'" in _fails(_parquet_meta(tmp_path, models=deep), None)

    @pytest.mark.parametrize("column", ["a|total_cost", "a"])
    def test_int_too_large_for_float64(self, tmp_path: Path, column: str) -> None:
        """An object cell holding 10**400 (OverflowError) is refused, naming the column."""
        frame = _wide().rename(columns=lambda c: c.replace("a/model", "a"))
        frame[column] = pd.Series([10**400, 0.5, 0.25], dtype=object)
        msg = _fails(_pickle(tmp_path, frame), column)
        assert "float64" in msg or "1000000" in msg

    def test_nested_list_in_quality_cell(self, tmp_path: Path) -> None:
        """A quality cell holding a list nested 100,000 deep (RecursionError) is refused."""
        frame = _wide()
        frame["a/model"] = pd.Series(["<nested>", 0.5, 0.25], dtype=object)
        payload = pickle.dumps(frame, protocol=2)
        op = pickle.BINUNICODE + (8).to_bytes(4, "little") + b"<nested>"
        assert payload.count(op) == 1
        nested = pickle.EMPTY_LIST * 100_000 + pickle.APPEND * 99_999
        path = tmp_path / "n.pkl"
        path.write_bytes(payload.replace(op, nested))
        assert "may hold only numbers, text and missing values" in _fails(str(path), None)

    @pytest.mark.parametrize("big", [1e308, 5e307])
    def test_costs_whose_sum_overflows(self, tmp_path: Path, big: float) -> None:
        """Costs so large that a sum of them overflows (1e308 on every row; 5e307 on each of
        the 4 cells: each model's sum is finite, all of them are not) are refused at load."""
        table = io.to_table(_two_by_two())
        cost = pa.FixedSizeListArray.from_arrays(pa.array([big] * 4), 2)
        path = str(tmp_path / "c.parquet")
        pq.write_table(table.set_column(table.column_names.index("cost"), "cost", cost), path)
        assert "would overflow float64" in _fails(path, None)

    def test_large_costs_whose_sum_is_finite(self) -> None:
        """The control: costs of 1e300 load."""
        url = _mem("c.parquet")
        io.save(_two_by_two(cost=[[1e300, 0.1], [1e300, 0.1]]), url)
        assert io.load(url).cost[0, 0] == 1e300

    @pytest.mark.parametrize("q", [6.95e-310, 5e-324, 1e-309])
    def test_subnormal_quality(self, q: float) -> None:
        """A subnormal quality (a flipped bit of 0.0, 6.95e-310) is refused; 0 and 1e-300 not."""
        url = _mem("q.parquet")
        io.save(_unchecked(_two_by_two(), quality=np.array([[q, 0.0], [1e-300, 1.0]])), url)
        assert "subnormal" in _fails(url, "quality")
        with pytest.raises(DataError, match="subnormal"):  # nor can such data be made
            _two_by_two(quality=[[q, 0.0], [1e-300, 1.0]])

    def test_infinite_latency(self) -> None:
        """An infinite latency is refused."""
        url = _mem("lat.parquet")
        io.save(_unchecked(_two_by_two(), latency=np.array([[np.inf, 1.0], [1.0, 1.0]])), url)
        assert "latency" in _fails(url, None)
        with pytest.raises(DataError, match="latency"):
            _two_by_two(latency=[[np.inf, 1.0], [1.0, 1.0]])

    def test_lone_surrogate_in_names(self, tmp_path: Path) -> None:
        """A model name or sample id that is not valid text is refused at load, in one line."""
        frame = _wide()
        names = [c.replace("a/model", "a\ud800") for c in frame.columns]
        frame = frame.set_axis(pd.Index(names, dtype=object), axis=1)
        assert "not valid text" in _fails(_pickle(tmp_path, frame), None)
        frame = _wide()
        frame["sample_id"] = pd.Series(["s\udfff", "t", "u"], dtype=object)
        assert "not valid text" in _fails(_pickle(tmp_path, frame), None)

    @pytest.mark.parametrize("value", [["x"], {"k": "v"}, b"\xff"])
    def test_text_columns_hold_text(self, tmp_path: Path, value: object) -> None:
        """A list, struct or bytes where text is expected is refused, not turned into its repr."""
        table = pa.table(
            {
                "prompt_id": ["p0", "p1"],
                "model": ["a", "a"],
                "quality": [1.0, 0.5],
                "cost": [0.1, 0.2],
                "prompt": pa.array([value, value]),
            }
        )
        path = str(tmp_path / "t.parquet")
        pq.write_table(table, path)
        assert "must hold text" in _fails(path, "prompt")

    @pytest.mark.parametrize("suffix", [".csv", ".parquet", ".pkl"])
    def test_fifo_refused_without_blocking(self, tmp_path: Path, suffix: str) -> None:
        """A FIFO given as data is refused at once (it used to block forever)."""
        import signal

        fifo = tmp_path / f"f{suffix}"
        os.mkfifo(fifo)

        def hung(*_: object) -> None:
            raise TimeoutError("io.load blocked on a FIFO")

        old = signal.signal(signal.SIGALRM, hung)
        signal.alarm(5)
        try:
            assert "is a FIFO, expected a regular file" in _fails(str(fifo), None)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)

    def test_folder_and_device_refused(self, tmp_path: Path) -> None:
        """A folder and a character device are refused, named as such."""
        (tmp_path / "d.parquet").mkdir()
        assert "is a folder" in _fails(str(tmp_path / "d.parquet"), None)
        (tmp_path / "z.csv").symlink_to("/dev/zero")
        assert "is a device" in _fails(str(tmp_path / "z.csv"), None)

    def test_parquet_magic_checked(self, tmp_path: Path) -> None:
        """A Parquet file whose leading magic is damaged is refused (pyarrow reads the footer)."""
        path = tmp_path / "d.parquet"
        io.save(_two_by_two(), str(path))
        payload = bytearray(path.read_bytes())
        payload[1] ^= 1
        path.write_bytes(bytes(payload))
        assert "PAR1" in _fails(str(path), None)

    def test_storage_options_reach_the_filesystem(self) -> None:
        """``storage_options`` are given to the fsspec filesystem that opens the data."""
        from fsspec.implementations.memory import MemoryFileSystem

        seen: list[dict[str, Any]] = []

        class Recording(MemoryFileSystem):  # type: ignore[misc]
            protocol = "rbrecord"

            def __init__(self, **kw: Any) -> None:
                seen.append(kw)
                super().__init__()

        fsspec.register_implementation("rbrecord", Recording, clobber=True)
        url = _mem("s.parquet")
        io.save(_two_by_two(), url)
        with fsspec.open(url, "rb") as f:
            payload = f.read()
        with fsspec.open("rbrecord://so/s.parquet", "wb") as f:
            f.write(payload)
        seen.clear()
        data = io.load("rbrecord://so/s.parquet", storage_options={"token": "t-123"})
        assert data.n_prompts == 2 and {"token": "t-123"} in seen

    def test_parquet_read_without_threads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every Parquet read and its conversion run with use_threads=False (threads made the
        process abort at exit after an error)."""
        calls: list[dict[str, Any]] = []
        real = pq.read_table

        class Table:  # the real table, recording to_pandas' arguments
            def __init__(self, table: pa.Table) -> None:
                self.table = table

            def __getattr__(self, name: str) -> Any:
                return getattr(self.table, name)

            def to_pandas(self, **kw: Any) -> pd.DataFrame:
                calls.append({"to_pandas": kw})
                return self.table.to_pandas(**kw)

        def read_table(source: Any, **kw: Any) -> Table:
            calls.append({"read_table": kw})
            return Table(real(source, **kw))

        monkeypatch.setattr(io.pq, "read_table", read_table)
        url = _mem("long.parquet")
        io.save(_two_by_two(), url, format="long")
        io.load(url)
        assert calls == [
            {"read_table": {"use_threads": False}},
            {"to_pandas": {"use_threads": False}},
        ]


# -------------------------------------------------------------------------- Parquet layout
class TestParquetLayout:
    @TMP
    @given(data=routing_data())
    def test_lossless_round_trip(self, data: RoutingData) -> None:
        """Every RoutingData field survives save/load in our layout."""
        url = _mem("d.parquet")
        io.save(data, url)
        _same(io.load(url), data)

    def test_schema(self, tmp_path: Path) -> None:
        """The file carries the documented columns and metadata."""
        data = _rd(
            quality=[[1.0, NAN]],
            cost=[[0.1, NAN]],
            models=["b", "a"],
            prompt_ids=["p"],
            eval_names=["mmlu-x"],
            prompts=["hi"],
            features=[[0.5, 0.25]],
            source="src",
            synthetic=True,
        )
        io.save(data, str(tmp_path / "d.parquet"))
        table = pq.read_table(tmp_path / "d.parquet")
        assert table.column_names == [
            "prompt_id",
            "eval_name",
            "family",
            "quality",
            "cost",
            "prompt",
            "features",
        ]
        assert table.schema.field("quality").type == pa.list_(pa.float64(), 2)
        meta = table.schema.metadata
        assert meta[b"routerbench.format"] == b"routing-data/1"
        assert json.loads(meta[b"routerbench.models"]) == ["b", "a"]
        assert (
            meta[b"routerbench.synthetic"] == b"true" and meta[b"routerbench.features_dim"] == b"2"
        )

    def _table(self) -> pa.Table:
        data = _rd(
            quality=[[1.0, 0.0]],
            cost=[[0.1, 0.2]],
            models=["a", "b"],
            prompt_ids=["p"],
            eval_names=["e"],
        )
        return io.to_table(data)

    @pytest.mark.parametrize(
        ("change", "needle"),
        [
            (
                lambda t: t.replace_schema_metadata(
                    {**t.schema.metadata, b"routerbench.format": b"routing-data/9"}
                ),
                "routing-data/9",
            ),
            (
                lambda t: t.replace_schema_metadata(
                    {**t.schema.metadata, b"routerbench.models": b"[1, 2]"}
                ),
                "routerbench.models",
            ),
            (
                lambda t: t.replace_schema_metadata(
                    {**t.schema.metadata, b"routerbench.models": b"[]"}
                ),
                "routerbench.models",
            ),
            (
                lambda t: t.set_column(
                    4, "cost", pa.FixedSizeListArray.from_arrays(pa.array(["a", "b"]), 2)
                ),
                "'cost'",
            ),
            (
                lambda t: t.replace_schema_metadata(
                    {**t.schema.metadata, b"routerbench.models": b'["a"]'}
                ),
                "'quality'",
            ),
            (lambda t: t.drop_columns(["cost"]), "'cost'"),
            (lambda t: t.append_column("extra", pa.array([1])), "'extra'"),
            (
                lambda t: t.set_column(3, "quality", io_write._fixed(np.array([[1.0, 2.0]]))),
                "'quality'",
            ),
            (lambda t: t.set_column(0, "prompt_id", pa.array([None], pa.string())), "'prompt_id'"),
        ],
    )
    def test_tampered_file(self, tmp_path: Path, change: Any, needle: str) -> None:
        """A damaged routing-data file is a one-line DataError naming the file and what is wrong."""
        path = str(tmp_path / "d.parquet")
        pq.write_table(change(self._table()), path)
        assert needle in _fails(path, None)


# --------------------------------------------------------------------------------- writers
class TestToUpstreamWideFrame:
    def test_exact_schema(self) -> None:
        """Columns in the published order and dtypes (quality columns alphabetical, the others
        in model order); quality cells are Python floats."""
        data = _rd(
            quality=[[1.0, NAN], [0.0, 0.5]],
            cost=[[0.3, NAN], [0.1, 0.2]],
            models=["m1", "m/2"],
            prompt_ids=["a.val.0", "b.val.1"],
            eval_names=["a", "b"],
        )
        f = io.to_upstream_wide_frame(data)
        assert list(f.columns) == [
            "sample_id", "prompt", "eval_name", "m/2", "m1", "m1|model_response",
            "m/2|model_response", "m1|total_cost", "m/2|total_cost", "oracle_model_to_route_to",
        ]  # fmt: skip
        assert f["m1"].dtype == object and all(type(v) is float for v in f["m/2"])
        assert f["m1|total_cost"].dtype == np.float64 and f["sample_id"].dtype == object
        assert f["m1|model_response"].tolist() == ["['<synthetic response>']"] * 2
        assert f["oracle_model_to_route_to"].tolist() == ["m1", "m/2"]

    def test_prompt_is_list_repr(self) -> None:
        """Plain prompts become the repr of a one-turn list; list reprs are kept."""
        data = _rd(
            quality=[[1.0], [1.0]],
            cost=[[0.1], [0.1]],
            models=["m"],
            prompt_ids=["p", "q"],
            eval_names=["e", "e"],
            prompts=["it's", "['kept']"],
        )
        assert io.to_upstream_wide_frame(data)["prompt"].tolist() == ['["it\'s"]', "['kept']"]

    @TMP
    @given(data=routing_data())
    def test_oracle_matches_brute_force(self, data: RoutingData) -> None:
        """The oracle column follows the published rule (loop version)."""
        f = io.to_upstream_wide_frame(data)
        assert f["oracle_model_to_route_to"].tolist() == _brute_oracle(data)

    @TMP
    @given(data=routing_data())
    def test_round_trip(self, data: RoutingData) -> None:
        """save(upstream-wide) then load gives back the outcomes, ids, eval names and label."""
        url = _mem("d.pkl")
        io.save(data, url, format="upstream-wide")
        out = io.load(url)
        np.testing.assert_array_equal(out.quality, data.quality)
        np.testing.assert_array_equal(out.cost, data.cost)
        assert out.models == data.models and out.prompt_ids.tolist() == data.prompt_ids.tolist()
        assert out.eval_names.tolist() == data.eval_names.tolist()
        assert out.synthetic == data.synthetic


class TestToUpstreamLongFrame:
    def test_schema_and_rows(self) -> None:
        """Published raw columns; one row per known outcome, none for a missing one."""
        data = _rd(
            quality=[[1.0, NAN], [0.0, 0.5]],
            cost=[[0.3, NAN], [0.1, 0.2]],
            models=["m1", "m2"],
            prompt_ids=["p", "q"],
            eval_names=["e", "e"],
        )
        f = io.to_upstream_long_frame(data)
        assert list(f.columns) == [
            "sample_id",
            "prompt",
            "eval_name",
            "performance",
            "model_response",
            "model_name",
            "cost",
        ]
        assert list(zip(f["sample_id"], f["model_name"], f["performance"], strict=True)) == [
            ("p", "m1", 1.0),
            ("q", "m1", 0.0),
            ("q", "m2", 0.5),
        ]

    @TMP
    @given(data=routing_data(extras=False), synthetic=st.booleans())
    def test_round_trip(self, data: RoutingData, synthetic: bool) -> None:
        """save(upstream-long) then load gives back the data (and the synthetic label) when no
        prompt lacks every model."""
        if data.missing.all(axis=1).any():
            return
        data = dataclasses.replace(data, synthetic=synthetic)
        url = _mem("raw.pkl")
        io.save(data, url, format="upstream-long")
        out = io.load(url)
        order = [data.models.index(m) for m in out.models]  # models in order of appearance
        np.testing.assert_array_equal(out.quality, data.quality[:, order])
        np.testing.assert_array_equal(out.cost, np.where(data.missing, NAN, data.cost)[:, order])
        assert out.synthetic == data.synthetic


class TestLongTable:
    @TMP
    @given(data=routing_data(), csv=st.booleans())
    def test_round_trip(self, data: RoutingData, csv: bool) -> None:
        """The generic long table (CSV or Parquet) keeps everything but features and source
        (the synthetic label included)."""
        url = _mem("t.csv" if csv else "t.parquet")
        io.save(data, url, format="long")
        _same(io.load(url), data, lossless=False)

    def test_rows(self) -> None:
        """One row per (prompt, model), prompt-major."""
        data = _rd(
            quality=[[1.0, NAN]],
            cost=[[0.3, NAN]],
            models=["m1", "m2"],
            prompt_ids=["p"],
            eval_names=["mmlu-x"],
        )
        f = io.to_long_frame(data)
        assert list(f.columns) == ["prompt_id", "model", "quality", "cost", "family", "eval_name"]
        assert f["model"].tolist() == ["m1", "m2"] and f["family"].tolist() == ["mmlu", "mmlu"]


class TestSave:
    def _data(self) -> RoutingData:
        return _rd(quality=[[1.0]], cost=[[0.1]], models=["a"], prompt_ids=["p"], eval_names=["e"])

    @pytest.mark.parametrize(
        ("fmt", "name"),
        [
            ("parquet", "d.parquet"),
            ("upstream-wide", "d.pkl"),
            ("upstream-long", "r.pkl"),
            ("long", "t.csv"),
            ("long", "t.parquet"),
        ],
    )
    def test_local_leaves_only_the_file(self, tmp_path: Path, fmt: str, name: str) -> None:
        """A local save leaves exactly the target file (no temporary) and it loads."""
        io.save(self._data(), str(tmp_path / name), format=fmt)
        assert os.listdir(tmp_path) == [name]
        assert io.load(str(tmp_path / name)).quality.tolist() == [[1.0]]

    def test_file_url(self, tmp_path: Path) -> None:
        """file:// URLs work for save and load."""
        url = f"file://{tmp_path}/d.parquet"
        io.save(self._data(), url)
        assert io.load(url).models == ("a",)

    def test_missing_folder(self, tmp_path: Path) -> None:
        """Saving into a folder that does not exist makes it (as results do); a file in the way
        of the folder is a DataError naming the URL."""
        url = str(tmp_path / "no" / "d.parquet")
        io.save(self._data(), url)
        assert io.load(url).models == self._data().models
        (tmp_path / "f").write_text("")
        with pytest.raises(DataError) as err:
            io.save(self._data(), str(tmp_path / "f" / "d.parquet"))
        assert "f/d.parquet" in str(err.value)

    def test_directory_in_the_way(self, tmp_path: Path) -> None:
        """A folder at the target path is a DataError and no temporary file is left."""
        (tmp_path / "d.parquet").mkdir()
        with pytest.raises(DataError, match="cannot write"):
            io.save(self._data(), str(tmp_path / "d.parquet"))
        assert os.listdir(tmp_path) == ["d.parquet"]

    def test_failed_rename_keeps_old_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If the final rename fails, the old file is intact and no temporary file is left."""
        target = tmp_path / "d.parquet"
        target.write_bytes(b"old")

        def broken(src: str, dst: str) -> None:
            raise PermissionError("no")

        monkeypatch.setattr(io.os, "replace", broken)
        with pytest.raises(DataError, match="cannot write"):
            io.save(self._data(), str(target))
        assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["d.parquet"]

    def test_failed_encoding_writes_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An error while building the bytes leaves nothing behind, locally or in memory://."""

        def broken(*a: object, **k: object) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(io.pq, "write_table", broken)
        monkeypatch.setattr(io.pq, "ParquetWriter", broken)  # routing-data/1: by row group
        url = _mem("d.parquet")
        for target in (str(tmp_path / "d.parquet"), url):
            with pytest.raises(RuntimeError):
                io.save(self._data(), target)
        assert os.listdir(tmp_path) == [] and not fsspec.filesystem("memory").exists(url)

    def test_unknown_format(self, tmp_path: Path) -> None:
        """An unknown format is refused before anything is written."""
        with pytest.raises(DataError, match="'csv'"):
            io.save(self._data(), str(tmp_path / "d.csv"), format="csv")
        assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def s3() -> Any:
    """storage_options for a bucket on a moto S3 server on loopback, stopped afterwards."""
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = {"endpoint_url": f"http://{host}:{port}"}
    opts = {"key": "test", "secret": "test", "client_kwargs": endpoint}
    fsspec.filesystem("s3", **opts).mkdir("bucket")
    yield opts
    server.stop()


class TestS3:
    @pytest.mark.parametrize(
        ("fmt", "name"), [("parquet", "d.parquet"), ("upstream-wide", "d.pkl")]
    )
    def test_round_trip(self, s3: dict[str, Any], fmt: str, name: str) -> None:
        """save/load through s3:// (a local moto server) with storage_options."""
        data = _rd(
            quality=[[1.0, NAN]],
            cost=[[0.1, NAN]],
            models=["a", "b"],
            prompt_ids=["p"],
            eval_names=["e"],
        )
        io.save(data, f"s3://bucket/x/{name}", format=fmt, storage_options=s3)
        out = io.load(f"s3://bucket/x/{name}", storage_options=s3)
        np.testing.assert_array_equal(out.quality, data.quality)

    def test_missing_object(self, s3: dict[str, Any]) -> None:
        """A missing S3 object is a DataError naming the URL."""
        assert "not found" in _fails("s3://bucket/none.parquet", None, storage_options=s3)


# ---------------------------------------------------------------------------- synthetic label
_FORMATS = [
    ("parquet", "d.parquet"),
    ("upstream-wide", "w.pkl"),
    ("upstream-long", "r.pkl"),
    ("long", "t.csv"),
    ("long", "t.parquet"),
]


def _labelled(synthetic: bool) -> RoutingData:
    return _rd(
        quality=[[1.0, 0.5], [0.0, 0.25]],
        cost=[[0.1, 0.2], [0.3, 0.4]],
        models=["a", "b"],
        prompt_ids=["p", "q"],
        eval_names=["mmlu-x", "mbpp"],
        prompts=["['hi']", "['yo']"],
        synthetic=synthetic,
    )


def _long_csv(tmp_path: Path, column: list[str]) -> str:
    rows = [f"p{i},a,1.0,0.1,{v}" for i, v in enumerate(column)]
    return _csv(tmp_path, "\n".join(["prompt_id,model,quality,cost,synthetic", *rows]) + "\n")


class TestSyntheticLabel:
    @pytest.mark.parametrize(("fmt", "name"), _FORMATS)
    def test_each_format_keeps_the_label(self, fmt: str, name: str) -> None:
        """Synthetic data loads back synthetic, real data not, with the same fingerprint."""
        loaded = {}
        for synthetic in (True, False):
            url = _mem(name)
            io.save(_labelled(synthetic), url, format=fmt)
            loaded[synthetic] = io.load(url)
            assert loaded[synthetic].synthetic is synthetic
        assert loaded[True].fingerprint() == loaded[False].fingerprint()

    def test_plain_readers(self, tmp_path: Path) -> None:
        """The markers are what the module docstring says, read by plain pandas/pyarrow calls;
        real data gets none of them."""
        for synthetic in (True, False):
            path = tmp_path / str(synthetic)
            path.mkdir()
            for fmt, name in _FORMATS[1:]:
                io.save(_labelled(synthetic), str(path / name), format=fmt)
            for name in ("w.pkl", "r.pkl"):
                want = {"routerbench.synthetic": True} if synthetic else {}
                assert pd.read_pickle(path / name).attrs == want
            frame = pd.read_csv(path / "t.csv")
            flags = frame.filter(["synthetic"]).to_numpy().ravel().tolist()
            assert flags == [True] * (len(frame) if synthetic else 0)
            meta = pq.read_table(path / "t.parquet").schema.metadata
            assert meta.get(b"routerbench.synthetic") == (b"true" if synthetic else None)

    def test_user_files_without_marker(self, tmp_path: Path) -> None:
        """Files written by other tools (no marker) load as real data."""
        wide, raw = _pickle(tmp_path, _wide()), tmp_path / "raw.pkl"
        io.to_upstream_long_frame(_labelled(True)).to_pickle(raw)
        long = pd.DataFrame({"prompt_id": ["p"], "model": ["a"], "quality": [1.0], "cost": [0.1]})
        long.to_csv(tmp_path / "t.csv", index=False)
        long.to_parquet(tmp_path / "t.parquet")
        for url in (wide, raw, tmp_path / "t.csv", tmp_path / "t.parquet"):
            assert io.load(str(url)).synthetic is False, url

    @pytest.mark.parametrize(
        ("column", "synthetic"),
        [(["True", "True"], True), (["true", "TRUE"], True), (["False", "false"], False)],
    )
    def test_csv_column_values(self, tmp_path: Path, column: list[str], synthetic: bool) -> None:
        """A synthetic column of one true/false value in any case gives the label."""
        assert io.load(_long_csv(tmp_path, column)).synthetic is synthetic

    @pytest.mark.parametrize("column", [["True", "False"], ["yes", "yes"], ["1", "1"], ["", ""]])
    def test_csv_column_refused(self, tmp_path: Path, column: list[str]) -> None:
        """Mixed or non-boolean values in the synthetic column are a DataError naming it."""
        _fails(_long_csv(tmp_path, column), "synthetic")

    @pytest.mark.parametrize("value", ["true", "True", 1, 1.0, None, False])
    def test_pickle_attrs_only_true(self, tmp_path: Path, value: object) -> None:
        """Only the bool True in the pickle's attrs labels the data; text or numbers do not."""
        frame = _wide()
        frame.attrs = {"routerbench.synthetic": value, "other": "kept out"}
        assert io.load(_pickle(tmp_path, frame)).synthetic is False

    def test_pickle_attrs_cannot_run_code(self, tmp_path: Path) -> None:
        """An object that would run a command, hidden in attrs, is refused; nothing runs."""
        from test_safepickle import _Touch

        target = tmp_path / "pwned"
        frame = _wide()
        frame.attrs = {"routerbench.synthetic": _Touch(str(target))}
        path = tmp_path / "evil.pkl"
        path.write_bytes(pickle.dumps(frame, protocol=4))
        assert "refusing to unpickle" in _fails(str(path), None)
        assert not target.exists()

    @pytest.mark.parametrize("value", [b"false", b"TRUE", b"1"])
    def test_long_parquet_metadata_only_true(self, tmp_path: Path, value: bytes) -> None:
        """A long Parquet file is synthetic only with routerbench.synthetic = "true"."""
        table = pa.table({"prompt_id": ["p"], "model": ["a"], "quality": [1.0], "cost": [0.1]})
        pq.write_table(
            table.replace_schema_metadata({b"routerbench.synthetic": value}),
            path := str(tmp_path / "t.parquet"),
        )
        assert io.load(path).synthetic is False

    def test_summary_reports_it(self) -> None:
        """summarize of a loaded synthetic long CSV says synthetic."""
        url = _mem("t.csv")
        io.save(_labelled(True), url, format="long")
        assert io.summarize(io.load(url)).attrs["synthetic"] is True


# --------------------------------------------------------------------------------- summary
class TestSummarize:
    def test_long_family_name_costs_no_fixed_width_copy(self) -> None:
        """A 10 MB family name on one of 20 rows: summarize allocates about the name, not
        rows x 4 bytes x its length (a fixed-width ``<U`` copy: 800 MB here)."""
        import tracemalloc

        n = 20
        evals = ["e" * 10_000_000] + ["mmlu-x"] * (n - 1)
        data = _rd(
            quality=[[1.0]] * n,
            cost=[[0.1]] * n,
            models=["a"],
            prompt_ids=[f"p{i}" for i in range(n)],
            eval_names=evals,
        )
        tracemalloc.start()
        try:
            s = io.summarize(data)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert list(s.attrs["families"].values()) == [1, n - 1]
        assert peak < 50_000_000, peak

    @TMP
    @given(data=routing_data())
    def test_matches_loops(self, data: RoutingData) -> None:
        """Per-model means, totals and missing counts equal plain loops; attrs hold the counts."""
        s = io.summarize(data)
        assert s["model"].tolist() == list(data.models)
        for j in range(data.n_models):
            qs = [v for v in data.quality[:, j].tolist() if not math.isnan(v)]
            cs = [v for v in data.cost[:, j].tolist() if not math.isnan(v)]
            row = s.iloc[j]
            assert row["n_missing"] == data.n_prompts - len(qs)
            assert (math.isnan(row["mean_quality"]) and not qs) or row[
                "mean_quality"
            ] == pytest.approx(sum(qs) / len(qs))
            assert row["total_cost"] == pytest.approx(sum(cs))
            assert (math.isnan(row["mean_cost"]) and not cs) or row["mean_cost"] == pytest.approx(
                sum(cs) / len(cs)
            )
        fams: dict[str, int] = {}
        for f in data.families.tolist():
            fams[f] = fams.get(f, 0) + 1
        assert s.attrs["families"] == fams and list(s.attrs["families"]) == list(fams)
        assert (s.attrs["rows"], s.attrs["models"]) == (data.n_prompts, data.n_models)
