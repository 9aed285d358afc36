"""``routerbench report``, ``plot`` and ``runs``: a run's results and plots, a URL's runs."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections import Counter
from typing import Any

from routerbench.cluster import store
from routerbench.engine.errors import DataError

# What marks a folder as a run folder (complete or not): written by `routerbench run`.
RUN_MARKERS = ("manifest.json", "cells", "study.journal", ".lock")


# ------------------------------------------------------------------------------------- plots
def _safe(name: str) -> str:
    """A file name for a family: its letters, digits and ``-_.`` (others as ``_``), at most 60
    characters; a name that had to change gets a short hash of it, so two never collide."""
    slug = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "-_." else "_" for ch in name)
    if slug == name and 0 < len(name) <= 60 and not name.startswith("."):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug.lstrip('.')[:60]}-{digest}"


def plot_name(family: str, split: str) -> str:
    """The one file name of a family's plot on a split: ``<family>-<split>.png``."""
    return f"{_safe(family)}-{split}.png"


def _write_plots(folder: str, points: Any, curves: Any, synthetic: bool, so: Any) -> list[str]:
    """Plots per family and split into ``folder`` as :func:`plot_name` (the URLs written). A
    plot that fails is one warning line, never an incomplete run: results and manifest are
    written regardless."""
    from routerbench.sweeps.plot import plot_family

    tag = " (synthetic data)" if synthetic else ""
    written = []
    for fam in dict.fromkeys(curves["family"]):
        for split in sorted(set(curves["split"])):
            url = store.join(folder, plot_name(fam, split))
            try:
                png = plot_family(
                    points[points["split"] == split],
                    curves[curves["split"] == split],
                    fam,
                    title=f"{fam}, {split} split{tag}",
                )
                store.write_bytes(url, png, so)
                written.append(url)
            except Exception as e:
                print(
                    f"routerbench: warning: {url} not written ({type(e).__name__}: {e})",
                    file=sys.stderr,
                )
    return written


# ------------------------------------------------------------------------------ report, plot
def cmd_report(args: argparse.Namespace) -> int:
    from routerbench.cluster.runs import read_run
    from routerbench.sweeps.report import compare_text, pairs_text, render

    run = read_run(args.run, store.parse_storage_options(args.storage_option))
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
    from routerbench.cluster.runs import read_run

    so = store.parse_storage_options(args.storage_option)
    out = store.output_url(args.out) if args.out is not None else store.join(args.run, "plots")
    store.check_writable(out, so)
    run = read_run(args.run, so)
    written = _write_plots(out, run.points, run.curves, bool(run.manifest["synthetic"]), so)
    for url in written:
        print(url)
    return 0 if written or run.curves.empty else 1


# --------------------------------------------------------------------------------------- runs
def cmd_runs(args: argparse.Namespace) -> int:
    """One line per run folder under the URL: id, spec, data, status, failed cells, created."""
    url = args.url
    so = store.parse_storage_options(args.storage_option)
    with store.user_errors(url):
        children: dict[str, set[str]] = {}
        for path in store.glob(url, "*/*", so):
            folder, _, name = path.partition("/")
            children.setdefault(folder, set()).add(name)
        names = sorted(f for f, kids in children.items() if kids & set(RUN_MARKERS))
        if not names:
            raise DataError(f"{url}: no run folders here (expected folders written by 'run')")
        stored = Counter(p.split("/")[0] for p in store.glob(url, "*/cells/*.npz", so))
        manifests = store.read_many(url, [f"{n}/manifest.json" for n in names], so)
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
        return (name, "-", "-", "unreadable manifest.json", "-", "-")
    failed_cells = 0
    if failed_rows:  # only then is points.parquet read (its two columns)
        import pandas as pd

        points = store.join(url, name, "points.parquet")
        df = pd.read_parquet(
            io.BytesIO(store.read_bytes(points, so)), columns=["cell_id", "status"]
        )
        failed_cells = df.loc[df["status"] == "failed", "cell_id"].nunique()
    status = f"complete with {failed_rows} failed rows" if failed_rows else "complete"
    spec, data = m.get("spec", "-"), m.get("data_source", "-")
    return (m.get("run_id", name), spec, data, status, failed_cells, m.get("created", "-"))


# ------------------------------------------------------------------------------------ parsers
def add_parsers(sub: Any) -> None:
    """Register ``report``, ``plot`` and ``runs``."""
    rp = sub.add_parser(
        "report",
        help="print a run's results with intervals",
        description="Print a complete run's curves per family and split: routers ranked by AIQ "
        "(with its bootstrap interval, rank band and gap closed), max quality and its cost, "
        "the original's calc_AIQ, and the references (frontier, oracle, zero, single models) "
        "apart; as a table, markdown or JSON (an object with the run's metadata).",
    )
    rp.add_argument("run", metavar="RUN_URL", help="a run folder written by 'routerbench run'")
    rp.add_argument(
        "--format",
        choices=["table", "markdown", "json"],
        default="table",
        help="output format (default: table)",
    )
    rp.add_argument(
        "--columns",
        type=_columns,
        metavar="COL,COL",
        help="only these curves columns (any column, plus rank and band), in every format; "
        "default: the standard view",
    )
    rp.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="print the paired differences A - B of AIQ and max quality per family, with their "
        "intervals; A and B are labels (as in the label column) or cell ids",
    )
    rp.add_argument(
        "--pairs",
        action="store_true",
        help="print every pair of routers per family (references left out), the higher AIQ "
        "first, with the paired differences of AIQ and max quality and their intervals",
    )
    store.add_storage_option(rp)
    rp.set_defaults(func=cmd_report)

    pl = sub.add_parser(
        "plot",
        help="cost-quality plots of a run, per family and split",
        description="Draw a complete run's cost-quality plots again, one PNG per family and "
        "split named <family>-<split>.png, the files 'run' writes; prints the URLs written.",
    )
    pl.add_argument("run", metavar="RUN_URL", help="a run folder written by 'routerbench run'")
    pl.add_argument("--out", metavar="URL", help="folder for the PNGs (default: RUN_URL/plots)")
    store.add_storage_option(pl)
    pl.set_defaults(func=cmd_plot)

    ru = sub.add_parser(
        "runs",
        help="list the run folders under a URL with their status",
        description="One line per run folder under URL: id, spec, data, status (complete, "
        "complete with N failed rows, or incomplete with its stored cells), failed cells and "
        "when it was created. Reads each manifest, and points.parquet only for failed rows.",
    )
    ru.add_argument("url", metavar="URL", help="folder or URL holding run folders (an --out)")
    store.add_storage_option(ru)
    ru.set_defaults(func=cmd_runs)
