"""The leaderboard's web page: one self-contained HTML file (inline CSS and JavaScript, plots as
``data:`` URIs; nothing is fetched from the network).

Two sortable tables (click a column header; again to reverse; empty cells sort last): the routers,
ranked with their rank bands, and apart from them the references (not ranked: the oracle
frontier first, as the ceiling, then the oracle, the zero router and the single models) with the
one-line note on what AIQ means for a single point; a filter by scope (overall or a family) for
both; the cost–quality plots per board and family, and the provenance: generation time, the
generator's version, and every run (spec hash, data fingerprint, version). A plot is shown at
its natural size, or scaled down whole (never cropped) where the window is narrower.
"""

from __future__ import annotations

import base64
import html
from string import Template
from typing import Any

import pandas as pd

from routerbench.sweeps.labels import ONE_POINT_NOTE
from routerbench.sweeps.schema import MIN_N, SMALL_N
from routerbench.sweeps.text import bounds, missing

# Shown columns of the routers' table: (table column, header, kind); "ci" renders the interval
# of the column before it.
SHOWN = [
    ("scope", "scope", "text"),
    ("rank", "rank", "num"),
    ("band", "band", "num"),
    ("router", "router", "text"),
    ("aiq", "AIQ", "num"),
    ("aiq_lo", "AIQ 95% CI", "ci"),
    ("gap_closed", "gap closed", "num"),
    ("gap_closed_lo", "gap closed 95% CI", "ci"),
    ("max_quality", "max quality", "num"),
    ("max_quality_lo", "max quality 95% CI", "ci"),
    ("n_test", "test prompts", "num"),  # shown where the table has it (small_sample marks it)
    ("cost_at_max_quality", "cost at max ($/query)", "usd"),
    ("cost_to_match_best_single", "cost to match best single ($/query)", "usd"),
    ("best_single", "best single model", "text"),
    ("split", "split", "text"),
    ("data_fingerprint", "data", "text"),
    ("run_id", "run", "text"),
]
# The references' table: no rank or band; "role" says what each reference is.
REFERENCE_SHOWN = [
    ("scope", "scope", "text"),
    ("role", "reference", "text"),
    *[c for c in SHOWN if c[0] not in ("scope", "rank", "band", "best_single")],
]
ROLES = {
    "frontier": "ceiling (oracle frontier)",
    "oracle": "oracle",
    "zero": "zero router",
    "single": "single model",
}
ROLE_HELP = (
    "what the reference is: the ceiling (the oracle frontier, the best any router could do at "
    "every cost), the oracle (sees the outcomes), the zero router (mixtures of single models, "
    "no learning) or a single model"
)

# Where a family has too few test prompts for its intervals (the table's small_sample).
SMALL = f"fewer than {SMALL_N} test prompts: intervals unreliable (none below {MIN_N})"

# Provenance of each run, as shown (keys of its manifest).
RUN_FIELDS = (
    "run_id", "spec", "spec_hash", "data_fingerprint", "data_source", "routerbench_version",
    "created",
)  # fmt: skip

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>RouterBench leaderboard</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px;
       padding: 0 1em; color: #1d1d1f; }
h1 { margin-bottom: 0.2em; }
.meta { color: #555; }
.banner { background: #fff3cd; border: 1px solid #e0c36c; padding: 0.5em 0.8em; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ci { white-space: nowrap; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0;
            cursor: pointer; text-align: left; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
tr[data-scope="overall"] td { background: #f4f8ff; }
#references { color: #333; }
#references tr[data-role="frontier"] td { font-weight: 600; }
section.references { margin-top: 1.5em; border-left: 4px solid #bbb; padding-left: 0.8em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; min-width: 0; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #ddd; }
code { font-size: 12px; }
</style>
</head>
<body>
<h1>RouterBench leaderboard</h1>
$banner
<p class="meta">Generated <time id="generated">$generated</time> by routerbench $generator
from $nruns run(s). Routers are ranked by AIQ (average quality over the cost range
<var>c_min</var>–<var>c_max</var>, mean USD per query) within each data set and split; intervals
are 95% bootstrap intervals over prompts. Routers share a <em>band</em> when the paired bootstrap
difference of their AIQ from the router ranked above is not significant. <em>Gap closed</em> is
(AIQ − AIQ of the zero router) / (ceiling − AIQ of the zero router).</p>

<h2>Ranking</h2>
<p><label>Scope <select id="scope"><option value="">all</option>$options</select></label>
<span id="shown"></span></p>
<div class="scroll"><table id="board" class="sortable">
<thead><tr>$thead</tr></thead>
<tbody>
$tbody
</tbody>
</table></div>
$small

<section class="references" aria-labelledby="references-title">
<h2 id="references-title">References (not ranked)</h2>
<p class="meta">Shown beside the routers, not ranked with them: the ceiling (the oracle frontier,
the best any router could do at every cost), the oracle (it sees the outcomes), the zero router
(mixtures of single models, no learning) and the single models.
<span id="one-point">$one_point</span></p>
<div class="scroll"><table id="references" class="sortable">
<thead><tr>$ref_thead</tr></thead>
<tbody>
$ref_tbody
</tbody>
</table></div>
</section>

<h2>Cost–quality plots</h2>
<p class="meta">Per family: the references (single models, oracle, zero router, frontier) and the
best routers by AIQ with their points and non-decreasing convex hulls.</p>
<div class="plots">
$plots
</div>

<h2>Provenance</h2>
<table id="runs">
<thead><tr><th>run</th><th>spec</th><th>spec hash</th><th>data fingerprint</th>
<th>data source</th><th>routerbench</th><th>created</th></tr></thead>
<tbody>
$runs
</tbody>
</table>

<script>
(function () {
  "use strict";
  var scope = document.getElementById("scope");
  var tables = Array.prototype.slice.call(document.querySelectorAll("table.sortable"));

  function value(cell, numeric) {
    var v = cell.getAttribute("data-v");
    return numeric ? (v === "" ? NaN : parseFloat(v)) : v;
  }

  function sortBy(table, i) {
    var body = table.tBodies[0];
    var heads = table.tHead.rows[0].cells;
    var th = heads[i];
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var numeric = th.getAttribute("data-type") === "num";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[i], numeric);
      var y = value(b.cells[i], numeric);
      if (numeric) {
        if (isNaN(x) || isNaN(y)) {
          return (isNaN(x) ? 1 : 0) - (isNaN(y) ? 1 : 0);
        }
        return asc ? x - y : y - x;
      }
      return asc ? x.localeCompare(y) : y.localeCompare(x);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var j = 0; j < heads.length; j++) {
      heads[j].removeAttribute("aria-sort");
    }
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }

  function filter() {
    var shown = 0;
    var total = 0;
    tables.forEach(function (table) {
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        r.hidden = scope.value !== "" && r.getAttribute("data-scope") !== scope.value;
        if (table.id === "board") {
          shown += r.hidden ? 0 : 1;
          total += 1;
        }
      });
    });
    document.getElementById("shown").textContent = shown + " of " + total + " routers";
  }

  tables.forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.querySelector("button").addEventListener("click", function () { sortBy(table, i); });
    });
  });
  scope.addEventListener("change", filter);
  filter();
})();
</script>
</body>
</html>
""")


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _cell(row: dict[Any, Any], col: str, kind: str) -> str:
    v = row[col]
    small = row.get("small_sample") in (True, 1)  # absent, or NaN on an 'overall' row: no
    if kind == "ci":
        hi = row.get(col.removesuffix("_lo") + "_hi")
        text = bounds(v, hi)
        if small and text:
            return f'<td class="ci" data-v="{_e(text)}" title="{_e(SMALL)}">{_e(text)} *</td>'
        return f'<td class="ci" data-v="{_e(text)}">{_e(text)}</td>'
    if kind in ("num", "usd"):
        if missing(v):
            return '<td class="num" data-v=""></td>'
        if col in ("rank", "band", "n_test"):
            text = str(int(v)) + (" *" if small and col == "n_test" else "")
        else:
            text = f"{v:.6f}" if kind == "usd" else f"{v:.4f}"
        return f'<td class="num" data-v="{float(v)!r}">{text}</td>'
    text = str(v)[:12] if col == "data_fingerprint" else str(v)
    title = f' title="{_e(v)}"' if text != str(v) or col == "router" else ""
    return f'<td data-v="{_e(v)}"{title}>{_e(text)}</td>'


def _table(
    rows: list[dict[Any, Any]], shown: list[tuple[str, str, str]], columns: dict[str, str]
) -> tuple[str, str]:
    """The header and body of one sortable table."""
    thead = "".join(
        f'<th data-type="{"num" if kind in ("num", "usd") else "text"}" '
        f'title="{_e(columns.get(col, head))}"><button type="button">{_e(head)}</button></th>'
        for col, head, kind in shown
    )
    body = []
    for row in rows:
        role = f' data-role="{_e(row["router_name"])}"' if "role" in row else ""
        cells = "".join(_cell(row, col, kind) for col, _, kind in shown)
        body.append(f'<tr data-scope="{_e(row["scope"])}"{role}>{cells}</tr>')
    return thead, "\n".join(body)


def page(
    table: pd.DataFrame,
    plots: list[dict[str, Any]],
    provenance: dict[str, Any],
    columns: dict[str, str],
) -> str:
    """The HTML page of a leaderboard table, its plots (PNG bytes) and provenance: the routers
    ranked, and the references (rows of ``kind`` 'reference') apart."""
    refs = table["kind"].eq("reference") if "kind" in table else pd.Series(False, table.index)
    routers, references = table[~refs], table[refs]
    shown = [(col, head, kind) for col, head, kind in SHOWN if col in table]
    thead, tbody = _table(routers.to_dict("records"), shown, columns)
    ref_rows = [
        r | {"role": ROLES.get(str(r["router_name"]), str(r["router_name"]))}
        for r in references.to_dict("records")
    ]
    ref_shown = [c for c in REFERENCE_SHOWN if c[0] in table or c[0] == "role"]
    ref_thead, ref_tbody = _table(ref_rows, ref_shown, columns | {"role": ROLE_HELP})
    flagged = "small_sample" in table and bool(table["small_sample"].eq(True).any())
    scopes = list(dict.fromkeys(table["scope"]))
    options = "".join(f'<option value="{_e(s)}">{_e(s)}</option>' for s in scopes)
    figures = "\n".join(
        f'<figure><img alt="{_e(p["title"])}" src="data:image/png;base64,'
        f'{base64.b64encode(p["png"]).decode()}"><figcaption>{_e(p["title"])}</figcaption>'
        "</figure>"
        for p in plots
    )
    runs = "\n".join(
        "<tr>" + "".join(f"<td><code>{_e(r.get(k, ''))}</code></td>" for k in RUN_FIELDS) + "</tr>"
        for r in provenance["runs"]
    )
    synthetic = bool(table["synthetic"].any())
    banner = (
        '<p class="banner"><strong>Synthetic data</strong>: these figures come from the '
        "synthetic stand-in data set, not RouterBench's.</p>"
        if synthetic
        else ""
    )
    return PAGE.substitute(
        banner=banner,
        small=f'<p class="meta" id="small">* {_e(SMALL)}.</p>' if flagged else "",
        generated=_e(provenance["generated"]),
        generator=_e(provenance["generator"]["routerbench"]),
        nruns=len(provenance["runs"]),
        options=options,
        thead=thead,
        tbody=tbody,
        ref_thead=ref_thead,
        ref_tbody=ref_tbody,
        one_point=_e(ONE_POINT_NOTE),
        plots=figures,
        runs=runs,
    )
