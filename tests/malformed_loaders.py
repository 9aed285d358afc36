"""Malformed Parquet files, CSV and long tables, and odd paths for the command (class ``loaders``).

Built from one synthetic data set (``synth.generate(60, seed)``) written by the project's own
writers: our Parquet layout with bad schema metadata, wrong column types, missing and unknown
columns, values the README refuses (quality outside [0, 1] or subnormal, negative, infinite or
overflowing costs, NaN cost for a known outcome), and invalid text; generic long tables (Parquet
and CSV) with bad numbers, nested lists, duplicate pairs, missing keys; truncated and corrupt
files; FIFOs, folders, devices, empty files and unknown suffixes. The few valid inputs are ``ok``
cases naming where the README says they are accepted.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from malformed_cases import Case, data_verb
from malformed_pickles import SPEC

from routerbench.engine import io, synth

README_FORMATS = "README 'Using your own data': formats table (our Parquet, long table CSV/Parquet)"
NAN, INF = float("nan"), float("inf")


# ------------------------------------------------------------------- our Parquet layout
def _table(data: Any) -> pa.Table:
    return io.to_table(data)


def _with_meta(table: pa.Table, **changes: bytes | None) -> pa.Table:
    meta = dict(table.schema.metadata)
    for key, value in changes.items():
        k = f"routerbench.{key}".encode()
        if value is None:
            meta.pop(k, None)
        else:
            meta[k] = value
    return table.replace_schema_metadata(meta)


def _set(table: pa.Table, name: str, column: pa.Array | pa.ChunkedArray) -> pa.Table:
    i = table.column_names.index(name)
    return table.set_column(i, name, column)


def _matrix(values: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])


def _cell(table: pa.Table, name: str, row: int, col: int, value: float) -> pa.Table:
    flat = np.asarray(table.column(name).combine_chunks().flatten(), dtype=np.float64)
    width = table.schema.field(name).type.list_size
    grid = flat.reshape(-1, width).copy()
    grid[row, col] = value
    return _set(table, name, _matrix(grid))


def _invalid_utf8_strings(n: int) -> pa.Array:
    """A string array whose first value is not UTF-8 (built from buffers, unvalidated)."""
    data = b"\xff\xfe" + b"".join(b"p%d" % i for i in range(1, n))
    ends = [0, 2] + [2 + sum(len(b"p%d" % j) for j in range(1, i + 1)) for i in range(1, n)]
    offsets = pa.py_buffer(np.array(ends, dtype=np.int32).tobytes())
    return pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(data)])


def parquet_cases(data: Any, rng: random.Random) -> Iterator[tuple[str, pa.Table]]:
    """Our routing-data/1 layout, broken one way at a time."""
    t = _table(data)
    n, m = data.n_prompts, data.n_models
    for name, dim in [("superscript", "²"), ("arabic", "٣"), ("text", "abc"), ("empty", "")]:
        yield f"meta-features-dim-{name}", _with_meta(t, features_dim=dim.encode())
    yield "meta-features-dim-negative", _with_meta(t, features_dim=b"-3")
    yield "meta-features-dim-float", _with_meta(t, features_dim=b"1e3")
    yield "meta-features-dim-huge", _with_meta(t, features_dim=b"99999999999999999999")
    yield "meta-features-dim-invalid-utf8", _with_meta(t, features_dim=b"\xff\xfe")
    yield "meta-features-dim-without-column", _with_meta(t, features_dim=b"4")
    yield "meta-format-invalid-utf8", _with_meta(t, format=b"routing-data/\xff")
    yield "meta-format-v2", _with_meta(t, format=b"routing-data/2")
    yield "meta-format-empty", _with_meta(t, format=b"")
    yield "meta-source-invalid-utf8", _with_meta(t, source=b"\xc3\x28")
    models = list(data.models)
    bad_models: list[tuple[str, bytes]] = [
        ("missing", b""),
        ("not-json", b"[gpt-4"),
        ("dict", json.dumps({"a": 1}).encode()),
        ("empty-list", b"[]"),
        ("ints", json.dumps(list(range(m))).encode()),
        ("too-few", json.dumps(models[:-1]).encode()),
        ("too-many", json.dumps([*models, "extra"]).encode()),
        ("duplicate", json.dumps([models[0]] * m).encode()),
        ("lone-surrogate", json.dumps(["m\ud800", *models[1:]]).encode()),
        ("invalid-utf8", b'["\xff"' + b',"x"' * (m - 1) + b"]"),
        ("deep-json", b"[" * 100_000 + b"]" * 100_000),
        ("huge-number", b"[" + b"9" * 5000 + b"]"),
    ]
    for name, value in bad_models:
        yield f"meta-models-{name}", _with_meta(t, models=value)
    for col in ("prompt_id", "eval_name", "family", "quality", "cost"):
        yield f"missing-{col}", t.drop_columns([col])
    yield "unknown-column", t.append_column("notes", pa.array(["x"] * n))
    q = np.asarray(data.quality)
    yield "quality-variable-list", _set(t, "quality", pa.array(q.tolist()))
    yield "quality-wrong-width", _set(t, "quality", _matrix(np.hstack([q, q[:, :1]])))
    yield "quality-int", _set(t, "quality", _matrix(np.ones((n, m), dtype=np.int64)))
    yield (
        "quality-strings",
        _set(t, "quality", pa.FixedSizeListArray.from_arrays(pa.array(["x"] * (n * m)), m)),
    )
    yield (
        "quality-null-row",
        _set(t, "quality", pa.array([None, *q[1:].tolist()], pa.list_(pa.float64(), m))),
    )
    yield "quality-nested", _set(t, "quality", pa.array([[[v] for v in row] for row in q.tolist()]))
    yield "prompt-id-int", _set(t, "prompt_id", pa.array(range(n)))
    yield "prompt-id-null", _set(t, "prompt_id", pa.array([None] + [f"p{i}" for i in range(1, n)]))
    yield "prompt-id-duplicate", _set(t, "prompt_id", pa.array(["p"] * n))
    yield "prompt-id-invalid-utf8", _set(t, "prompt_id", _invalid_utf8_strings(n))
    yield "eval-name-binary", _set(t, "eval_name", pa.array([b"\xff"] * n, pa.binary()))
    cells: list[tuple[str, float]] = [
        ("quality", 1.5),
        ("quality", -0.5),
        ("quality", INF),
        ("quality", 6.95e-310),
        ("quality", 5e-324),
        ("cost", -1.0),
        ("cost", INF),
        ("cost", -INF),
        ("cost", -1e-09),
    ]
    for i, (col, cell) in enumerate(cells):
        yield f"cell-{col}-{i}", _cell(t, col, rng.randrange(n), rng.randrange(m), cell)
    known = rng.randrange(n)
    yield "cost-nan-known-quality", _cell(t, "cost", known, 0, NAN)
    yield "cost-1e308-every-row", _set(t, "cost", _matrix(np.full((n, m), 1e308)))
    yield "cost-1e306-every-row", _set(t, "cost", _matrix(np.full((n, m), 1e306)))
    yield "latency-negative", t.append_column("latency", _matrix(np.full((n, m), -1.0)))
    yield "latency-inf", t.append_column("latency", _matrix(np.full((n, m), INF)))
    yield (
        "features-nan",
        _with_meta(t.append_column("features", _matrix(np.full((n, 2), NAN))), features_dim=b"2"),
    )
    yield (
        "features-width-mismatch",
        _with_meta(t.append_column("features", _matrix(np.ones((n, 3)))), features_dim=b"2"),
    )
    yield "no-rows", t.slice(0, 0)
    yield "prompt-null", _set(t, "prompt", pa.array([None] * n, pa.string()))
    yield "prompt-int", _set(t, "prompt", pa.array(range(n)))
    yield "family-null", _set(t, "family", pa.array([None] * n, pa.string()))
    yield "eval-name-int", _set(t, "eval_name", pa.array(range(n)))
    yield "latency-wrong-width", t.append_column("latency", _matrix(np.ones((n, m + 1))))
    yield (
        "latency-null-row",
        t.append_column("latency", pa.array([None] * n, pa.list_(pa.float64(), m))),
    )
    yield "latency-1e308-every-row", t.append_column("latency", _matrix(np.full((n, m), 1e308)))


# -------------------------------------------------------------------------- long tables
def long_frame(data: Any) -> Any:
    return io.to_long_frame(data)


def long_parquet_cases(data: Any, rng: random.Random) -> Iterator[tuple[str, pa.Table]]:
    """Generic long tables as Parquet (no routerbench metadata)."""
    f = long_frame(data)
    base = pa.Table.from_pandas(f, preserve_index=False).replace_schema_metadata(None)
    rows = base.num_rows

    def col(name: str, values: Any, type_: Any = None) -> pa.Table:
        return _set(base, name, pa.array(values, type_))

    for c in ("prompt_id", "model", "quality", "cost"):
        yield f"missing-{c}", base.drop_columns([c])
    yield "unknown-column", base.append_column("extra", pa.array([1] * rows))
    yield "quality-strings", col("quality", ["high"] * rows)
    yield "quality-bool", col("quality", [True] * rows)
    yield "quality-list", col("quality", [[0.5]] * rows)
    deep: Any = 0.5
    for _ in range(60):
        deep = [deep]
    yield "quality-nested-list", col("quality", [deep] * rows)
    yield "quality-struct", col("quality", [{"v": 0.5}] * rows)
    yield "quality-above-1", col("quality", [1.25] * rows)
    yield "quality-denormal", col("quality", [1e-310] * rows)
    yield "cost-decimal-huge", col("cost", [10**70] * rows, pa.decimal256(76, 0))
    yield "cost-1e308-every-row", col("cost", [1e308] * rows)
    yield "cost-negative", col("cost", [-0.5] * rows)
    yield "cost-nan", col("cost", [NAN] * rows)
    yield "prompt-id-null", col("prompt_id", [None] * rows, pa.string())
    yield "prompt-id-empty", col("prompt_id", [""] * rows)
    yield "model-null", col("model", [None] * rows, pa.string())
    yield "model-list", col("model", [["a"]] * rows)
    yield "duplicate-pairs", col("prompt_id", ["p0"] * rows)
    yield "family-differs-within-prompt", col("family", [f"f{i}" for i in range(rows)])
    yield "latency-inf", base.append_column("latency", pa.array([INF] * rows))
    yield "latency-negative", base.append_column("latency", pa.array([-1.0] * rows))
    yield "no-rows", base.slice(0, 0)
    yield "prompt-id-invalid-utf8", _set(base, "prompt_id", _invalid_utf8_strings(rows))
    yield "quality-timestamp", col("quality", [0] * rows, pa.timestamp("s"))
    yield "quality-binary", col("quality", [b"0.5"] * rows)
    yield "quality-dictionary", _set(base, "quality", pa.array(["a"] * rows).dictionary_encode())
    yield "cost-strings", col("cost", ["0.1"] * rows)
    yield "cost-list", col("cost", [[0.1]] * rows)
    yield "prompt-id-float-nan", col("prompt_id", [NAN] * rows)
    yield "family-null", col("family", [None] * rows, pa.string())
    yield "eval-name-null", col("eval_name", [None] * rows, pa.string())


def csv_text(data: Any) -> str:
    return str(io.to_long_frame(data).to_csv(index=False, lineterminator="\n"))


def csv_cases(data: Any, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Long tables as CSV text, broken one way at a time."""
    text = csv_text(data)
    header, *lines = text.splitlines()
    cols = header.split(",")

    def with_value(column: str, value: str, every: bool = False) -> bytes:
        j = cols.index(column)
        out = [header]
        for i, line in enumerate(lines):
            cells = line.split(",")
            if every or i == 3:
                cells[j] = value
            out.append(",".join(cells))
        return ("\n".join(out) + "\n").encode()

    numbers = ["abc", "1,5", "0x10", "1e999", "--1", "1.0.0", "[[0.5]]", "[0.5]", "{}", "1" * 400]
    numbers += ["null", "½", "١", "True", "+-1", "0x1p-2", "1e", ".", "-", "∞", "50%", "$0.1"]
    for i, v in enumerate(numbers):
        yield f"quality-bad-number-{i}", with_value("quality", f'"{v}"' if "," in v else v)
        yield f"cost-bad-number-{i}", with_value("cost", f'"{v}"' if "," in v else v)
    for v in ("1.0000001", "-0.01", "inf", "-inf", "1e-310", "4.9e-324"):
        yield f"quality-{v}", with_value("quality", v)
    for v in ("-0.01", "inf", "NaN", "nan", "-1e-300"):
        yield f"cost-{v}", with_value("cost", v)
    yield "cost-1e308-every-row", with_value("cost", "1e308", every=True)
    yield "cost-1e307-every-row", with_value("cost", "1e307", every=True)
    yield "latency-inf", _with_latency(text, "inf")
    yield "latency-negative", _with_latency(text, "-2")
    yield "latency-1e308-every-row", _with_latency(text, "1e308")
    yield "prompt-id-empty", with_value("prompt_id", "")
    yield "model-empty", with_value("model", "")
    yield "duplicate-pair", (text + lines[0] + "\n").encode()
    yield "eval-name-differs", with_value("eval_name", "other-eval")
    for c in ("prompt_id", "model", "quality", "cost"):
        j = cols.index(c)
        dropped = [
            ",".join(x for k, x in enumerate(line.split(",")) if k != j)
            for line in text.splitlines()
        ]
        yield f"missing-{c}", ("\n".join(dropped) + "\n").encode()
    yield "unknown-column", text.replace(header, header.replace("family", "familie"), 1).encode()
    yield "duplicate-header", text.replace(header, header.replace("family", "cost"), 1).encode()
    yield "header-only", (header + "\n").encode()
    yield "empty", b""
    yield "only-newlines", b"\n\n\n"
    yield "binary", bytes(rng.randrange(256) for _ in range(4096))
    yield "invalid-utf8", text.encode()[:40] + b"\xff" + text.encode()[40:]
    yield "nul-bytes", text.encode().replace(b",", b"\x00", 3)
    yield "unclosed-quote", text.encode().replace(b"\n", b'\n"', 1)
    yield "ragged-row", (text + "p9,m,0.5,0.1,f,e,extra,extra\n").encode()
    yield "short-row", (text + "p9\n").encode()
    yield "surrogate-bytes", text.encode()[:40] + b"\xed\xa0\x80" + text.encode()[40:]
    yield "latency-text", _with_latency(text, "slow")


def _with_latency(text: str, value: str) -> bytes:
    header, *lines = text.splitlines()
    return (
        "\n".join([header + ",latency"] + [line + "," + value for line in lines]) + "\n"
    ).encode()


# ------------------------------------------------------------------------------ files
def file_cases(folder: Path, valid_parquet: bytes) -> Iterator[tuple[str, str]]:
    """Paths that are not regular data files: FIFOs, folders, devices, empty, wrong suffixes."""
    for suffix in (".csv", ".parquet", ".pkl"):
        fifo = folder / f"fifo{suffix}"
        os.mkfifo(fifo)
        yield f"fifo{suffix}", str(fifo)
        link = folder / f"link-to-fifo{suffix}"
        link.symlink_to(fifo)
        yield f"symlink-to-fifo{suffix}", str(link)
        d = folder / f"folder{suffix}"
        d.mkdir()
        (d / "part-0.parquet").write_bytes(valid_parquet)
        yield f"folder{suffix}", str(d)
        e = folder / f"empty{suffix}"
        e.write_bytes(b"")
        yield f"empty{suffix}", str(e)
        dev = folder / f"zero{suffix}"
        dev.symlink_to("/dev/zero")
        yield f"dev-zero{suffix}", str(dev)
        null = folder / f"null{suffix}"
        null.symlink_to("/dev/null")
        yield f"dev-null{suffix}", str(null)
    loop = folder / "loop.csv"
    loop.symlink_to(loop)
    yield "symlink-loop", str(loop)
    for suffix in (".json", ".txt", "", ".parquet.gz", ".csv.bak", ".pkl~"):
        p = folder / f"data{suffix}"
        p.write_bytes(valid_parquet)
        yield f"suffix{suffix or '-none'}", str(p)
    for real, named in ((".parquet", ".csv"), (".parquet", ".pkl"), (".csv", ".pkl")):
        p = folder / f"{real[1:]}-named{named}"
        p.write_bytes(valid_parquet if real == ".parquet" else b"prompt_id,model,quality,cost\n")
        yield f"{real[1:]}-named{named}", str(p)
    yield "missing-file", str(folder / "nope.parquet")
    yield "missing-folder", str(folder / "nope" / "x.csv")
    yield "nul-in-path", str(folder / "a\x00b.csv")
    yield "unknown-protocol", "bogusproto://bucket/x.parquet"
    yield "memory-missing", "memory://nothing-here/x.parquet"
    yield "folder-slash", str(folder) + "/"


def corrupt_parquet(payload: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Truncated, footer-flipped and foreign bytes named .parquet."""
    for i in range(16):
        yield f"truncated-{i}", payload[: rng.randrange(len(payload))]
    end = len(payload)
    # The trailing magic, the leading magic and the footer length's low bytes (no Parquet
    # checksum covers the rest: a flip inside the metadata may leave a valid file).
    places = [end - 1 - k for k in range(4)] + list(range(4)) + [end - 8, end - 7]
    for i, pos in enumerate(places):
        b = bytearray(payload)
        b[pos] ^= 1 << rng.randrange(8)
        yield f"magic-or-length-flip-{i}", bytes(b)
    yield "magic-only", b"PAR1"
    yield "magic-twice", b"PAR1PAR1"
    yield "csv-named-parquet", b"prompt_id,model,quality,cost\np,m,1,0.1\n"
    yield "pickle-named-parquet", b"\x80\x04N."
    yield "random", bytes(rng.randrange(256) for _ in range(2048))


# ------------------------------------------------------------------------------ cases
def _write_parquet(path: Path, table: pa.Table) -> None:
    pq.write_table(table, str(path))


def cases(seed: int, folder: Path) -> list[Case]:
    """At least 250 loader cases, every file written under ``folder``."""
    rng = random.Random(seed)
    data = synth.generate(60, seed)
    spec = folder / "spec.toml"
    spec.write_text(SPEC)
    out: list[Case] = []

    def add(name: str, path: str, ok: bool = False, why: str = "") -> None:
        argv, writes = data_verb(rng, path, str(spec))
        out.append(Case("loaders", name, argv, writes=writes, ok=ok, why=why))

    def write(name: str, suffix: str, payload: bytes | pa.Table | Callable[[Path], None]) -> str:
        path = folder / f"{len(out):03d}-{name}{suffix}"
        if isinstance(payload, pa.Table):
            _write_parquet(path, payload)
        else:
            path.write_bytes(payload)  # type: ignore[arg-type]
        return str(path)

    io.save(data, str(folder / "valid.parquet"))
    valid = (folder / "valid.parquet").read_bytes()
    add("valid-parquet", str(folder / "valid.parquet"), ok=True, why=README_FORMATS)
    add(
        "valid-long-csv",
        write("valid-long", ".csv", csv_text(data).encode()),
        ok=True,
        why=README_FORMATS,
    )
    add(
        "valid-long-parquet",
        write(
            "valid-long", ".parquet", pa.Table.from_pandas(long_frame(data), preserve_index=False)
        ),
        ok=True,
        why=README_FORMATS,
    )
    add("valid-upper-suffix", write("valid", ".PARQUET", valid), ok=True, why=README_FORMATS)
    long = io.to_long_frame(data)
    long.loc[3, "prompt_id"] = "x" * 2_000_000  # one prompt's id, on one of its rows
    long.loc[long["prompt_id"] == long.loc[4, "prompt_id"], "prompt_id"] = "x" * 2_000_000
    add(
        "valid-huge-id",
        write("huge-id", ".csv", long.to_csv(index=False).encode()),
        ok=True,
        why=README_FORMATS,
    )
    long = io.to_long_frame(data)
    long.loc[long["prompt_id"] == long.loc[0, "prompt_id"], "eval_name"] = "e" * 10_000_000
    add(
        "valid-10mb-eval-name",
        write("long-eval", ".parquet", pa.Table.from_pandas(long, preserve_index=False)),
        ok=True,
        why=README_FORMATS,
    )
    for name, table in parquet_cases(data, rng):
        add(f"parquet-{name}", write(name, ".parquet", table))
    for name, table in long_parquet_cases(data, rng):
        add(f"long-parquet-{name}", write(name, ".parquet", table))
    for name, text in csv_cases(data, rng):
        add(f"csv-{name}", write(name, ".csv", text))
    for name, blob in corrupt_parquet(valid, rng):
        add(f"corrupt-{name}", write(name, ".parquet", blob))
    for name, path in file_cases(folder, valid):
        add(f"file-{name}", path)
    return out
