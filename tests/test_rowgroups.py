"""Row groups of routing-data/1 files and reading some of their rows (engine.rowgroups)."""

from __future__ import annotations

import dataclasses
import itertools
import pickle
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from s3server import S3Server

from routerbench.cluster.cli import main
from routerbench.engine import data as data_module
from routerbench.engine import io, storage, synth
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import DataError
from routerbench.engine.io_write import _fixed, _parquet_bytes
from routerbench.engine.rowgroups import (
    ROW_GROUP_ROWS,
    ParquetRows,
    grouped_by_family,
    row_group_bounds,
)

EXAMPLES = settings(max_examples=40, deadline=None)
NAMES = ["mmlu-x", "mmlu-y", "hellaswag", "mbpp", "é-eval", "长"]  # 5 families (mmlu-* pool)


def make(
    n: int,
    m: int = 3,
    *,
    seed: int = 0,
    evals: list[str] | None = None,
    prompts: bool = True,
    features: int | None = 4,
    latency: bool = True,
) -> RoutingData:
    """Random data with missing outcomes, non-ASCII text and the optional parts asked for;
    eval names grouped into runs by family unless ``evals`` says otherwise."""
    rng = np.random.default_rng(seed)
    q = rng.random((n, m))
    q[rng.random((n, m)) < 0.1] = np.nan
    c = np.where(np.isnan(q) & (rng.random((n, m)) < 0.5), np.nan, rng.random((n, m)))
    if evals is None:
        evals = sorted(rng.choice(NAMES, n).tolist(), key=NAMES.index)
    return RoutingData(
        quality=q,
        cost=c,
        models=[f"model-{j}-ü" for j in range(m)],
        prompt_ids=[f"p{i}-{'é' * (i % 3)}" for i in range(n)],
        eval_names=evals,
        prompts=[f"prompt {i} 🙂" * (i % 4) for i in range(n)] if prompts else None,
        features=None if features is None else rng.standard_normal((n, features)),
        latency=rng.random((n, m)) if latency else None,
        source="made",
        synthetic=bool(seed % 2),
        features_source="feat.parquet" if features else "",
    )


def write(data: RoutingData, url: str, row_group_rows: int = ROW_GROUP_ROWS) -> str:
    """``data`` at ``url`` as io.save writes it, with row groups of at most ``row_group_rows``."""
    storage.write_bytes(url, _parquet_bytes(io.to_table(data), row_group_rows=row_group_rows))
    return url


def memory_url() -> str:
    return f"memory://rowgroups/{uuid.uuid4().hex}.parquet"


def assert_same(a: RoutingData, b: RoutingData) -> None:
    """Every field equal, bit for bit (float arrays compared as their 64-bit patterns)."""
    for f in dataclasses.fields(RoutingData):
        if not f.init:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray), f.name
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            if x.dtype == object:
                assert [type(v) for v in x] == [type(v) for v in y] and x.tolist() == y.tolist()
            else:
                assert np.array_equal(x.view(np.uint64), y.view(np.uint64)), f.name
        else:
            assert x == y and type(x) is type(y), f.name
    assert a.fingerprint() == b.fingerprint()


def expected_bounds(families: list[str], k: int) -> list[int]:
    """Brute force: cut where the family changes if each family is one run, then every k rows
    since the last cut."""
    n = len(families)
    runs = [i for i in range(1, n) if families[i] != families[i - 1]]
    grouped = len(runs) + 1 == len(set(families))
    out, start = [0], 0
    for i in range(1, n + 1):
        if i == n or (grouped and i in runs) or i - start == k:
            out.append(i)
            start = i
    return out


def file_groups(url: str) -> list[list[str]]:
    """The families of each row group, read with pyarrow from the file itself."""
    with storage.filesystem(url)[0].open(storage.filesystem(url)[1], "rb") as f:
        pf = pq.ParquetFile(f)
        return [
            pf.read_row_group(g, columns=["family"]).column(0).to_pylist()
            for g in range(pf.num_row_groups)
        ]


# ------------------------------------------------------------------------------------ writing
class TestWriting:
    @EXAMPLES
    @given(
        families=st.lists(st.sampled_from("abcd"), min_size=1, max_size=60),
        k=st.integers(1, 9),
        group=st.booleans(),
    )
    def test_bounds_brute_force(self, families: list[str], k: int, group: bool) -> None:
        """Bounds equal the brute-force cuts: at family changes for grouped rows, every k rows."""
        if group:
            families = sorted(families, key=families.index)
        got = row_group_bounds(families, k)
        assert got.dtype == np.int64 and got.tolist() == expected_bounds(families, k)

    @EXAMPLES
    @given(n=st.integers(1, 80), k=st.integers(1, 12), seed=st.integers(0, 3))
    def test_file_row_groups(self, n: int, k: int, seed: int) -> None:
        """Written files: row groups of at most k rows, one family each for grouped rows, the
        statistics name it, and io.load reads the data back exactly, in its order."""
        data = make(n, seed=seed)
        url = write(data, memory_url(), k)
        groups = file_groups(url)
        assert [len(g) for g in groups] == np.diff(expected_bounds(list(data.families), k)).tolist()
        assert all(1 <= len(g) <= k and len(set(g)) == 1 for g in groups)
        rows = ParquetRows.open(url)
        assert list(rows.row_group_families) == [g[0] for g in groups]
        assert_same(io.load(url), data)

    def test_interleaved_families_keep_their_order(self) -> None:
        """Rows not grouped by family are written in their order, in blocks of k rows."""
        data = make(20, evals=["mbpp", "hellaswag"] * 10)
        url = write(data, memory_url(), 6)
        assert [len(g) for g in file_groups(url)] == [6, 6, 6, 2]
        assert_same(io.load(url), data)

    def test_save_uses_the_bound(self, tmp_path: Path) -> None:
        """io.save writes one family per row group, ROW_GROUP_ROWS at most; a long table is
        written in pyarrow's row groups as before."""
        data = make(50)
        path = str(tmp_path / "d.parquet")
        io.save(data, path)
        assert [len(set(g)) for g in file_groups(path)] == [1] * len(data.family_names())
        assert ROW_GROUP_ROWS >= 1024
        io.save(data, str(tmp_path / "long.parquet"), format="long")
        assert pq.ParquetFile(str(tmp_path / "long.parquet")).num_row_groups == 1

    def test_grouped_by_family(self) -> None:
        """A stable reorder: families in order of first appearance, rows in their order."""
        evals = ["mbpp", "mmlu-a", "hellaswag", "mmlu-b", "mbpp", "hellaswag", "mmlu-a"]
        data = make(7, evals=evals)
        out = grouped_by_family(data)
        assert out.prompt_ids.tolist() == [data.prompt_ids[i] for i in (0, 4, 1, 3, 6, 2, 5)]
        assert out.family_names() == ["mbpp", "mmlu", "hellaswag"]
        assert grouped_by_family(out) is out


# ------------------------------------------------------------------------------------ reading
OPTIONAL = st.fixed_dictionaries(
    {
        "prompts": st.booleans(),
        "features": st.sampled_from([None, 0, 3]),
        "latency": st.booleans(),
    }
)


class TestRead:
    @EXAMPLES
    @given(
        n=st.integers(1, 60),
        k=st.integers(1, 10),
        parts=OPTIONAL,
        seed=st.integers(0, 2**16),
        interleaved=st.booleans(),
    )
    def test_read_equals_load_take(
        self, n: int, k: int, parts: dict[str, Any], seed: int, interleaved: bool
    ) -> None:
        """read(rows) is load(url).take(rows), field by field, bit for bit, for random rows."""
        evals = [NAMES[i % 3] for i in range(n)] if interleaved else None
        data = make(n, seed=seed, evals=evals, **parts)
        url = write(data, memory_url(), k)
        rng = np.random.default_rng(seed)
        rows = np.flatnonzero(rng.random(n) < rng.random())
        rows = rows if rows.size else np.array([int(rng.integers(n))])
        parquet = ParquetRows.open(url)
        assert_same(parquet.read(rows), io.load(url).take(rows))
        assert_same(parquet.read(np.arange(n)), data)

    def test_reads_only_the_row_groups_of_its_rows(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Rows 5..9 of groups of 4 rows: row groups 1 and 2 only."""
        url = write(make(40, evals=["mbpp"] * 40), memory_url(), 4)
        read: list[int] = []
        real = pq.ParquetFile.read_row_group

        def spy(self: pq.ParquetFile, i: int, *args: Any, **kwargs: Any) -> pa.Table:
            read.append(i)
            return real(self, i, *args, **kwargs)

        monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
        ParquetRows.open(url).read(np.arange(5, 10))
        assert read == [1, 2]

    def test_attributes_from_the_footer(self) -> None:
        """The attributes say what the file holds; a ParquetRows pickles and reads the same."""
        data = make(9, features=None, latency=False, prompts=False, seed=1)
        url = write(data, memory_url(), 4)
        p = ParquetRows.open(url, storage_options={})
        assert (p.url, p.storage_options, p.models, p.n_prompts) == (url, {}, data.models, 9)
        assert (p.source, p.synthetic, p.features_dim) == ("made", True, None)
        assert (p.has_prompts, p.has_latency) == (False, False)
        assert ParquetRows.open(write(make(3, features=0), memory_url())).features_dim == 0
        again = pickle.loads(pickle.dumps(p))
        assert_same(again.read([1, 7]), data.take([1, 7]))

    @pytest.mark.parametrize(
        "rows",
        [[], [3, 1], [1, 1], [-1], [9], np.array([[1]]), np.array([0.0])],
    )
    def test_bad_rows(self, rows: Any) -> None:
        """Rows must be increasing indices in range: else one line naming the URL."""
        url = write(make(9), memory_url(), 4)
        with pytest.raises(DataError, match=r"rows|row index") as e:
            ParquetRows.open(url).read(rows)
        assert url in str(e.value) and "\n" not in str(e.value)

    def test_changed_file_is_refused(self) -> None:
        """A file rewritten with other row groups or metadata after open() is refused."""
        data = make(12, evals=["mbpp", "hellaswag"] * 6)
        url = write(data, memory_url(), 4)
        p = ParquetRows.open(url)
        for changed in (data, dataclasses.replace(data, source="other")):
            write(changed, url, 5 if changed is data else 4)
            with pytest.raises(DataError, match="changed since it was opened"):
                p.read([0])

    def test_values_are_checked(self) -> None:
        """read() checks the values as io.load does (a quality above 1 here)."""
        table = io.to_table(make(6))
        table = table.set_column(3, "quality", _fixed(np.full((6, 3), 2.0)))
        url = memory_url()
        storage.write_bytes(url, _parquet_bytes(table, row_group_rows=4))
        with pytest.raises(DataError, match="quality"):
            ParquetRows.open(url).read([4])

    def test_local_file_and_old_layout(self, tmp_path: Path) -> None:
        """A local file written as before (one row group of all rows) reads the same."""
        data = make(30, evals=[NAMES[i % 4] for i in range(30)])
        path = str(tmp_path / "old.parquet")
        pq.write_table(io.to_table(data), path)
        p = ParquetRows.open(path)
        assert len(p.row_group_bounds) == 2 and p.row_group_families == (None,)
        assert_same(p.read([2, 3, 29]), data.take([2, 3, 29]))
        assert p.families().tolist() == data.families.tolist()
        assert p.fingerprint() == data.fingerprint()


# ------------------------------------------------------------------------------------ families
class TestFamilies:
    def test_from_statistics_without_reading(self) -> None:
        """Grouped rows: families() and family_names() come from the footer: they still answer
        once the file is gone."""
        data = make(40)
        url = write(data, memory_url(), 7)
        p = ParquetRows.open(url)
        storage.remove(url)
        families = p.families()
        assert families.dtype == object and families.tolist() == data.families.tolist()
        assert p.family_names() == data.family_names()

    def test_from_the_column(self) -> None:
        """Families interleaved within row groups: read from the family column alone."""
        data = make(40, evals=[NAMES[(i * 7) % 6] for i in range(40)])
        url = write(data, memory_url(), 6)
        p = ParquetRows.open(url)
        assert None in p.row_group_families
        families = p.families()
        assert families.dtype == object and families.tolist() == io.load(url).families.tolist()
        assert p.family_names() == data.family_names()
        storage.remove(url)
        with pytest.raises(DataError, match="not found"):
            p.families()


# ------------------------------------------------------------------------------------ fingerprint
class TestFingerprint:
    @pytest.mark.parametrize(
        "parts",
        [
            {},
            {"prompts": False, "features": None, "latency": False},
            {"features": 0},
            {"prompts": False, "features": 7, "latency": True},
        ],
    )
    @pytest.mark.parametrize("k", [1, 3, 1000])
    def test_equals_load(self, parts: dict[str, Any], k: int) -> None:
        """The streaming fingerprint equals io.load's, for several files and row groups."""
        url = write(make(23, seed=k, **parts), memory_url(), k)
        assert ParquetRows.open(url).fingerprint() == io.load(url).fingerprint()

    @EXAMPLES
    @given(n=st.integers(1, 40), k=st.integers(1, 9), chunk=st.integers(1, 8))
    def test_string_chunks_across_row_groups(self, n: int, k: int, chunk: int) -> None:
        """Strings are hashed in chunks that cross row groups: equal for any chunk size."""
        url = write(make(n, seed=n), memory_url(), k)
        old = data_module._CHUNK
        data_module._CHUNK = chunk
        try:
            assert ParquetRows.open(url).fingerprint() == io.load(url).fingerprint()
        finally:
            data_module._CHUNK = old

    def test_more_strings_than_a_chunk(self) -> None:
        """More rows than a hash chunk of strings (65,536), in row groups of another size."""
        n = data_module._CHUNK + 1000
        data = make(n, m=1, prompts=False, features=None, latency=False)
        url = write(data, memory_url(), 10_000)
        assert ParquetRows.open(url).fingerprint() == data.fingerprint()

    def test_differs_with_content(self) -> None:
        """Another value, another fingerprint (the hash sees the data)."""
        a, b = make(10, seed=1), make(10, seed=2)
        fa = ParquetRows.open(write(a, memory_url(), 3)).fingerprint()
        assert fa == a.fingerprint() != ParquetRows.open(write(b, memory_url(), 3)).fingerprint()


# ------------------------------------------------------------------------------------ memory
class TestMemorySize:
    def test_numbers_exact_text_estimated(self) -> None:
        """Float arrays counted exactly (latency and features add their nbytes); the estimate of
        ASCII text is within 25% of the Python objects' size."""
        base = synth.generate(3000, seed=1, features_dim=0)
        n, m = base.quality.shape
        more = dataclasses.replace(base, latency=np.ones((n, m)), features=np.ones((n, 6)))
        size = {
            name: ParquetRows.open(write(d, memory_url(), 256)).nbytes_in_memory()
            for name, d in (("base", base), ("more", more))
        }
        assert size["more"] - size["base"] == more.latency.nbytes + more.features.nbytes
        numbers = base.quality.nbytes + base.cost.nbytes
        texts = (base.prompt_ids, base.eval_names, base.families, base.prompts)
        actual = sum(8 + sys.getsizeof(s) for col in texts for s in col)
        assert 0.75 * actual <= size["base"] - numbers <= 1.25 * actual


# ------------------------------------------------------------------------------------ refused
def _long_parquet(path: str) -> None:
    io.save(make(3), path, format="long")


def _other_version(path: str) -> None:
    table = io.to_table(make(3))
    meta = {**table.schema.metadata, b"routerbench.format": b"routing-data/9"}
    pq.write_table(table.replace_schema_metadata(meta), path)


def _unknown_column(path: str) -> None:
    table = io.to_table(make(3))
    pq.write_table(table.append_column("extra", pa.array([1, 2, 3])), path)


def _wrong_type(path: str) -> None:
    table = io.to_table(make(3))
    pq.write_table(table.set_column(0, "prompt_id", pa.array([1, 2, 3])), path)


def _empty_table(path: str) -> None:
    pq.write_table(io.to_table(make(3)).slice(0, 0), path)


def _not_parquet(path: str) -> None:
    Path(path).write_text("prompt_id,model\n")


def _empty_file(path: str) -> None:
    Path(path).write_bytes(b"")


def _truncated(path: str) -> None:
    io.save(make(3), path)
    Path(path).write_bytes(Path(path).read_bytes()[:-20])


REFUSED = {
    "long table": (_long_parquet, "not a routing-data/1 file"),
    "other version": (_other_version, "routing-data/9"),
    "unknown column": (_unknown_column, "unknown column 'extra'"),
    "wrong type": (_wrong_type, "'prompt_id' must be of type string"),
    "no rows": (_empty_table, "empty"),
    "CSV": (_not_parquet, "PAR1"),
    "empty file": (_empty_file, "empty file"),
    "truncated": (_truncated, "not a readable Parquet file"),
    "missing": (lambda path: None, "file not found"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_in_one_line(case: str, tmp_path: Path) -> None:
    """A file that is not a routing-data/1 table is a one-line DataError naming the URL."""
    make_file, needle = REFUSED[case]
    path = str(tmp_path / "x.parquet")
    make_file(path)
    with pytest.raises(DataError) as e:
        ParquetRows.open(path)
    message = str(e.value)
    assert needle in message and path in message and "\n" not in message


def test_a_folder_is_refused(tmp_path: Path) -> None:
    """A local path must be a regular file, as for io.load."""
    with pytest.raises(DataError, match="is a folder"):
        ParquetRows.open(str(tmp_path))


# ------------------------------------------------------------------------------------ S3
class TestS3:
    def test_read_row_groups(self, s3: S3Server) -> None:
        """Row groups read from an S3 object equal load().take(); a short outage is retried."""
        so = s3.options()
        url = s3.bucket() + "/d.parquet"
        data = make(30)
        storage.write_bytes(
            url, _parquet_bytes(io.to_table(data), row_group_rows=4), storage_options=so
        )
        p = ParquetRows.open(url, storage_options=so)
        rows = np.array([0, 5, 6, 29])
        assert_same(p.read(rows), data.take(rows))
        assert p.fingerprint() == data.fingerprint()
        s3.stop()
        timer = s3.restart_after(1.0)
        try:
            got = p.read(rows)
        finally:
            timer.join(timeout=30)
        assert_same(got, data.take(rows))


# ------------------------------------------------------------------------------------ CLI
def test_convert_groups_by_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """data convert IN OUT.parquet writes the rows grouped by family (stable), one family per
    row group, and the same prompts; other formats keep the order."""
    evals = [NAMES[(i * 5) % 6] for i in range(40)]
    data = make(40, evals=evals)
    src = str(tmp_path / "in.parquet")
    io.save(data, src)
    dst = str(tmp_path / "out.parquet")
    assert main(["data", "convert", src, dst]) == 0
    capsys.readouterr()
    out = io.load(dst)
    assert_same(out, grouped_by_family(data))
    runs = [f for f, _ in itertools.groupby(out.families)]
    assert runs == data.family_names()
    assert Counter(out.prompt_ids.tolist()) == Counter(data.prompt_ids.tolist())
    p = ParquetRows.open(dst)
    assert None not in p.row_group_families and p.family_names() == data.family_names()
    csv = str(tmp_path / "out.csv")
    assert main(["data", "convert", src, csv]) == 0
    assert io.load(csv).prompt_ids.tolist() == data.prompt_ids.tolist()


def test_synth_parquet_is_grouped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """data synth --out X.parquet: every row group holds one family."""
    out = str(tmp_path / "s.parquet")
    assert main(["data", "synth", "--out", out, "--n", "2000"]) == 0
    capsys.readouterr()
    p = ParquetRows.open(out)
    assert None not in p.row_group_families
    assert len(p.family_names()) == len(p.row_group_families) == len(set(p.families()))
