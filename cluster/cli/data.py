"""``routerbench data info|convert|synth|fetch``: inspect, convert, make or fetch outcome data."""

from __future__ import annotations

import argparse
import posixpath

from routerbench.cluster.cli.options import STORAGE_OPTION, Arg, Verb, parse_storage_options
from routerbench.engine import io, storage
from routerbench.engine.errors import UsageError
from routerbench.engine.rowgroups import ROW_GROUP_ROWS, grouped_by_family
from routerbench.engine.synth import DEFAULT_N

# The format a file's extension asks for (``--format`` overrides it).
BY_EXTENSION = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "long",
    ".pkl": "upstream-wide",
    ".pickle": "upstream-wide",
}
ALIASES = {"upstream-pickle": "upstream-wide"}  # the older name data synth had for it


def output_format(url: str, given: str | None) -> str:
    """The format to write ``url`` in: ``given`` (``--format``), else the one of its extension;
    an extension that names no format is a one-line :class:`UsageError`.

    >>> output_format("s3://b/x.CSV", None), output_format("x.csv", "parquet")
    ('long', 'parquet')
    """

    if given is not None:
        return ALIASES.get(given, given)
    ext = posixpath.splitext(url.rstrip("/").rsplit("/", 1)[-1])[1].lower()
    if ext not in BY_EXTENSION:
        what = f"the extension {ext!r} names no" if ext else "no extension to tell the"
        raise UsageError(
            f"{url}: {what} output format; end the name in {', '.join(BY_EXTENSION)} or pass "
            "--format"
        )
    return BY_EXTENSION[ext]


def cmd_data_info(args: argparse.Namespace) -> int:
    if args.url is None:  # the embedded default, as `run` loads it without SPEC or --data
        from routerbench.sweeps.execute import load_data
        from routerbench.sweeps.run import load_spec

        data = load_data(load_spec(None))
    else:
        data = io.load(args.url, storage_options=parse_storage_options(args.storage_option))
    tag = "  [synthetic]" if data.synthetic else ""
    print(f"{data.source}{tag}")
    print(
        f"{data.n_prompts} prompts x {data.n_models} models, {len(set(data.eval_names))} eval "
        f"names, {len(set(data.families))} families, {int(data.missing.sum())} missing outcomes"
    )
    summary = io.summarize(data)
    print(summary.to_string(index=False))
    families = sorted(summary.attrs["families"].items())
    width = max(len(f) for f, _ in families)
    print(f"\nprompts per family ({len(families)}):")
    for fam, n in families:
        print(f"  {fam.ljust(width)}  {n}")
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    so = parse_storage_options(args.storage_option)
    fmt = output_format(args.dst, args.format)
    dst = storage.check_output_file(args.dst, so)
    data = io.load(args.src, storage_options=so)
    if fmt == "parquet":  # row groups that actors read one family at a time
        data = grouped_by_family(data)
    io.save(data, dst, format=fmt, storage_options=so)
    print(f"wrote {args.dst} ({data.n_prompts} prompts x {data.n_models} models, {fmt})")
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from routerbench.engine import synth

    if not 1 <= args.n <= 50_000_000:
        raise UsageError(f"--n must be in [1, 50000000] (got {args.n})")
    fmt = output_format(args.out, args.format)
    out = storage.check_output_file(args.out)
    data = synth.generate(args.n, args.seed)
    io.save(grouped_by_family(data) if fmt == "parquet" else data, out, format=fmt)
    print(f"wrote {args.out}: synthetic, {data.n_prompts} prompts x {data.n_models} models, {fmt}")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from routerbench.engine import fetch

    for f in fetch.fetch(tuple(args.files), cache_dir=args.cache_dir, revision=args.revision):
        print(f"{f.path}  sha256={f.sha256}  {f.size} bytes")
    return 0


# ------------------------------------------------------------------------------------- verbs
FORMAT_HELP = (
    "output format (default: from OUT's extension: .parquet/.pq parquet, .csv long, "
    ".pkl/.pickle the upstream pickle)"
)
FORMATS = ["parquet", *(f for f in io.FORMATS if f != "parquet")]  # engine.io's, ours first
GROUPED = (
    "Parquet output gets its rows grouped by family (families in order of first appearance, "
    f"each family's rows in their order) in row groups of at most {ROW_GROUP_ROWS:,} rows that "
    "never span two families, so that each worker reads its own rows."
)


INFO_ARGS = [
    Arg(
        "url",
        nargs="?",
        metavar="URL",
        help="outcome data file or URL (default: the embedded synthetic set 'run' uses)",
    ),
    STORAGE_OPTION,
]
CONVERT_ARGS = [
    Arg("src", metavar="IN", help="outcome data file or URL to read"),
    Arg("dst", metavar="OUT", help="file or URL to write"),
    Arg("--format", choices=FORMATS, help=FORMAT_HELP),
    STORAGE_OPTION,
]
SYNTH_ARGS = [
    Arg("--out", required=True, metavar="URL", help="file or URL to write"),
    Arg("--n", type=int, default=DEFAULT_N, help=f"prompts (default {DEFAULT_N})"),
    Arg("--seed", type=int, default=0, help="generator seed (default 0)"),
    Arg(
        "--format",
        choices=[*FORMATS, "upstream-pickle"],
        help=FORMAT_HELP + "; upstream-pickle is another name for upstream-wide",
    ),
]
FETCH_ARGS = [
    Arg(
        "--files",
        nargs="+",
        default=["routerbench_0shot.pkl", "routerbench_5shot.pkl"],
        metavar="FILE",
        help="files of the data set to fetch (default: the 0-shot and 5-shot pickles)",
    ),
    Arg("--cache-dir", metavar="DIR", help="cache folder (default: the Hub's)"),
    Arg("--revision", help="branch, tag or commit of the data set (default: main)"),
]


def verbs() -> list[Verb]:
    """``data`` and its verbs."""
    info = Verb(
        "info",
        "models, families, rows, NaN counts, mean quality and cost",
        "Summarise outcome data: per model its mean quality, mean and total cost and missing "
        "outcomes; per family its prompts (sorted by name).",
        cmd_data_info,
        INFO_ARGS,
    )
    convert = Verb(
        "convert",
        "convert between formats (format of IN is detected)",
        "Read outcome data in any layout (detected from IN) and write it to OUT in the format "
        "of OUT's extension, or --format. " + GROUPED,
        cmd_data_convert,
        CONVERT_ARGS,
    )
    synth = Verb(
        "synth",
        "write the synthetic RouterBench-shaped data set",
        "Write the deterministic synthetic data set (RouterBench's models, prices, eval names "
        "and row counts) that runs use by default; files keep the synthetic flag. " + GROUPED,
        cmd_data_synth,
        SYNTH_ARGS,
    )
    fetch = Verb(
        "fetch",
        "download the published files (needs routerbench[hub])",
        "Download RouterBench's published outcome files (withmartian/routerbench on the "
        "Hugging Face Hub) into the local cache; print each path with its sha256.",
        cmd_data_fetch,
        FETCH_ARGS,
    )
    return [
        Verb(
            "data",
            "inspect, convert, generate or fetch outcome data",
            "Outcome data: a summary of a file (or the embedded default), a conversion between "
            "layouts, the synthetic RouterBench-shaped set, or the published files.",
            verbs=[info, convert, synth, fetch],
            verbs_help="what to do with outcome data",
        )
    ]
