"""``routerbench report``, ``plot`` and ``runs``: a run's results and plots, a URL's runs."""

from __future__ import annotations

import argparse
import io
import json
from collections import Counter
from typing import Any

from routerbench.cluster.cli.options import STORAGE_OPTION, Arg, Verb, parse_storage_options
from routerbench.engine import storage
from routerbench.engine.errors import DataError
from routerbench.sweeps.runs import CELLS, JOURNAL, LOCK, MANIFEST

# What marks a folder as a run folder (complete or not): written by `routerbench run`.
RUN_MARKERS = (MANIFEST, CELLS, JOURNAL, LOCK)


# ------------------------------------------------------------------------------ report, plot
def cmd_report(args: argparse.Namespace) -> int:
    from routerbench.sweeps.report import compare_text, pairs_text, render
    from routerbench.sweeps.runs import read_run

    run = read_run(args.run, parse_storage_options(args.storage_option))
    synthetic = bool(run.manifest["synthetic"])
    conf = float(run.manifest.get("confidence", 0.95))  # runs before it was recorded: 0.95
    if args.pairs:
        print(pairs_text(run.curves, confidence=conf, synthetic=synthetic))
    elif args.compare:
        print(compare_text(run.curves, *args.compare, confidence=conf, synthetic=synthetic))
    else:
        print(
            render(
                run.curves, args.format, meta=run.manifest, columns=args.columns, confidence=conf
            )
        )
    return 0


def _columns(text: str) -> list[str]:
    """An argparse type: comma-separated column names."""
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected column names separated by commas, got {text!r}")
    return names


def cmd_plot(args: argparse.Namespace) -> int:
    from routerbench.sweeps.plot import write_plots
    from routerbench.sweeps.runs import read_run

    so = parse_storage_options(args.storage_option)
    out = storage.output_url(args.out) if args.out is not None else storage.join(args.run, "plots")
    storage.check_writable(out, so)
    run = read_run(args.run, so)
    written = write_plots(out, run.points, run.curves, bool(run.manifest["synthetic"]), so)
    for url in written:
        print(url)
    return 0 if written or run.curves.empty else 1


# --------------------------------------------------------------------------------------- runs
def cmd_runs(args: argparse.Namespace) -> int:
    """One line per run folder under the URL: id, spec, data, status, failed cells, created."""
    url = args.url
    so = parse_storage_options(args.storage_option)
    with storage.user_errors(url):
        children: dict[str, set[str]] = {}
        for path in storage.glob(url, "*/*", so):
            folder, _, name = path.partition("/")
            children.setdefault(folder, set()).add(name)
        names = sorted(f for f, kids in children.items() if kids & set(RUN_MARKERS))
        if not names:
            raise DataError(f"{url}: no run folders here (expected folders written by 'run')")
        stored = Counter(p.split("/")[0] for p in storage.glob(url, f"*/{CELLS}/*.npz", so))
        manifests = storage.read_many(url, [f"{n}/{MANIFEST}" for n in names], so)
        rows = [
            _run_row(url, name, raw, stored.get(name, 0), so)
            for name, raw in zip(names, manifests, strict=True)
        ]
    header = ("id", "spec", "data", "status", "failed cells", "created")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [str(v).ljust(w) for v, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, str(row[-1])]))
    return 0


def _run_row(url: str, name: str, raw: bytes | None, stored: int, so: Any) -> tuple[Any, ...]:
    """A run folder's line: complete (with its failed cells) or incomplete (its stored cells)."""
    if raw is None:
        status = f"incomplete ({stored} stored cells)" if stored else "incomplete"
        return (name, "-", "-", status, "-", "-")
    try:
        m = json.loads(raw)
        failed_rows = int(m["failed_rows"])
    except (ValueError, TypeError, KeyError):
        return (name, "-", "-", f"unreadable {MANIFEST}", "-", "-")
    failed_cells = 0
    if failed_rows:  # only then is points.parquet read (its two columns)
        import pandas as pd

        points = storage.join(url, name, "points.parquet")
        df = pd.read_parquet(
            io.BytesIO(storage.read_bytes(points, so)), columns=["cell_id", "status"]
        )
        failed_cells = df.loc[df["status"] == "failed", "cell_id"].nunique()
    status = f"complete with {failed_rows} failed rows" if failed_rows else "complete"
    spec, data = m.get("spec", "-"), m.get("data_source", "-")
    return (m.get("run_id", name), spec, data, status, failed_cells, m.get("created", "-"))


# ------------------------------------------------------------------------------------- verbs
RUN_URL = Arg("run", metavar="RUN_URL", help="a run folder written by 'routerbench run'")


REPORT_ARGS = [
    RUN_URL,
    Arg(
        "--format",
        choices=["table", "markdown", "json"],
        default="table",
        help="output format (default: table)",
    ),
    Arg(
        "--columns",
        type=_columns,
        metavar="COL,COL",
        help="only these curves columns (any column, plus rank and band), in every format; "
        "default: the standard view",
    ),
    Arg(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="print the paired differences A - B of AIQ and max quality per family, with their "
        "intervals; A and B are labels (as in the label column) or cell ids",
    ),
    Arg(
        "--pairs",
        action="store_true",
        help="print every pair of routers per family (references left out), the higher AIQ "
        "first, with the paired differences of AIQ and max quality and their intervals",
    ),
    STORAGE_OPTION,
]
PLOT_ARGS = [
    RUN_URL,
    Arg("--out", metavar="URL", help="folder for the PNGs (default: RUN_URL/plots)"),
    STORAGE_OPTION,
]
RUNS_ARGS = [
    Arg("url", metavar="URL", help="folder or URL holding run folders (an --out)"),
    STORAGE_OPTION,
]


def verbs() -> list[Verb]:
    """``report``, ``plot`` and ``runs``."""
    report = Verb(
        "report",
        "print a run's results with intervals",
        "Print a complete run's curves per family and split: routers ranked by AIQ (with its "
        "bootstrap interval, rank band and gap closed), max quality and its cost, the "
        "original's calc_AIQ, and the references (frontier, oracle, zero, single models) apart; "
        "as a table, markdown or JSON (an object with the run's metadata).",
        cmd_report,
        REPORT_ARGS,
    )
    plot = Verb(
        "plot",
        "cost-quality plots of a run, per family and split",
        "Draw a complete run's cost-quality plots again, one PNG per family and split named "
        "<family>-<split>.png, the files 'run' writes; prints the URLs written.",
        cmd_plot,
        PLOT_ARGS,
    )
    runs = Verb(
        "runs",
        "list the run folders under a URL with their status",
        "One line per run folder under URL: id, spec, data, status (complete, complete with N "
        "failed rows, or incomplete with its stored cells), failed cells and when it was "
        "created. Reads each manifest, and points.parquet only for failed rows.",
        cmd_runs,
        RUNS_ARGS,
    )
    return [report, plot, runs]
