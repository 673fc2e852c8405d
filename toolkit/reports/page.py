"""The report as one self-contained HTML page: pictures inline as data URIs, styles and the table-sorting script
inline, no network reference, so the file opens from disk and can be attached to a forum post."""

from __future__ import annotations

import base64
import html
import os
import time
from pathlib import Path

from toolkit.reports import drawing
from toolkit.reports.build import Report, RunSection

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; } h3 { margin-bottom: .3em; }
table { border-collapse: collapse; margin: .5em 0; display: block; max-width: 100%; overflow-x: auto; }
td, th { padding: 3px 8px; border-bottom: 1px solid #eee; }
th { background: #f4f4f4; text-align: left; } th.sortable { cursor: pointer; } td.num { text-align: right; }
.note { color: #8a5a00; } .run { margin: 1.5em 0; } .cols { display: flex; gap: 2em; flex-wrap: wrap; }
img { max-width: 100%; } .scroll { max-height: 420px; overflow-y: auto; }
"""
# Click a header to sort by it (again to reverse); `#sort=<column>` in the address sorts when the page opens.
SCRIPT = """
function sortBy(table, col, descending) {
  const rows = Array.from(table.tBodies[0].rows);
  const key = r => { const t = r.cells[col].textContent.trim(); const n = parseFloat(t);
                     return isNaN(n) ? [1, t] : [0, n]; };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    const c = x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0); return descending ? -c : c; });
  rows.forEach(r => table.tBodies[0].appendChild(r));
  table.dataset.sorted = table.tHead.rows[0].cells[col].dataset.column + (descending ? " desc" : "");
}
document.querySelectorAll("table.sortable").forEach(table => {
  Array.from(table.tHead.rows[0].cells).forEach((th, col) => th.addEventListener("click", () => {
    sortBy(table, col, table.dataset.sorted === th.dataset.column); }));
  const wanted = new URLSearchParams(location.hash.slice(1)).get("sort");
  const th = Array.from(table.tHead.rows[0].cells).find(c => c.dataset.column === wanted);
  if (th) sortBy(table, th.cellIndex, false);
});
document.body.dataset.ready = "yes";
"""


def render(report: Report, curves: bytes | None = None) -> str:
    """The whole page for `report` (`curves`: its learning curves, drawn already)."""
    parts = [f"<h1>{_e(report.competition)}: runs and ensembles</h1>",
             f"<p>Written {time.strftime('%Y-%m-%d %H:%M')} by kpull outputs, from the outputs on this machine.</p>",
             _results(report), _curves(report, curves), _runs(report), _gains(report), _submissions(report)]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(report.competition)} report</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(parts) + f"\n<script>{SCRIPT}</script></body></html>\n")


def _results(report: Report) -> str:
    from toolkit.runs.outputs.results import HEADERS, NUMERIC, fmt_value, shown_columns

    columns = shown_columns(report.rows)
    head = "".join(f"<th class='sortable' data-column='{c}'>{_e(HEADERS.get(c, c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(fmt_value(getattr(row, c)), c in NUMERIC) for c in columns) + "</tr>"
                   for row in report.rows)
    return (f"<h2 id='results'>Results</h2><p>Best TTA error first; click a header to sort.</p>"
            f"<table class='sortable' id='results-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _curves(report: Report, curves: bytes | None) -> str:
    if not report.curves:
        return "<h2>Learning curves</h2><p class='note'>No run has per-epoch metrics yet.</p>"
    return ("<h2 id='curves'>Learning curves</h2><p>Every run on the same axes, one colour each.</p>"
            + _image(curves or drawing.learning_curves(report.curves), "learning curves"))


def _runs(report: Report) -> str:
    return "<h2 id='runs'>Runs</h2>" + "".join(_run(s) for s in report.sections)


def _run(section: RunSection) -> str:
    title = f"<h3>{_e(section.slug)}</h3><p>{_e(section.arch)}, {_e(section.status)}</p>"
    if section.matrix is None:
        return f"<div class='run' id='run-{_e(section.slug)}'>{title}<p class='note'>{_e(section.missing)}</p></div>"
    matrix = section.matrix
    said = (f"<p class='note'>{len(matrix.classes)} classes: the matrix shows the {len(matrix.shown)} most "
            "confused of them; the per-class table lists all.</p>" if matrix.collapsed else "")
    classes = "".join(f"<tr><td>{_e(c.label)}</td><td class='num'>{c.images}</td><td class='num'>{c.wrong}</td>"
                      f"<td class='num'>{c.error:.4f}</td></tr>"
                      for c in sorted(section.classes, key=lambda c: -c.error))
    confused = "".join(f"<tr><td>{_e(a)}</td><td>{_e(p)}</td><td class='num'>{n}</td></tr>"
                       for a, p, n in section.confused[:15]) or "<tr><td colspan='3'>no mistakes</td></tr>"
    return (f"<div class='run' id='run-{_e(section.slug)}'>{title}{said}<div class='cols'>"
            f"<div>{_image(drawing.confusion_matrix(matrix), f'confusion matrix of {section.slug}')}</div>"
            "<div class='scroll'><table><thead><tr><th>class</th><th>images</th><th>wrong</th><th>error</th></tr>"
            f"</thead><tbody>{classes}</tbody></table></div>"
            "<div><table><thead><tr><th>actual</th><th>predicted</th><th>times</th></tr></thead>"
            f"<tbody>{confused}</tbody></table><p>Most confused pairs, as fastai's most_confused.</p></div>"
            "</div></div>")


def _gains(report: Report) -> str:
    if not report.gains:
        return ("<h2 id='gains'>What averaging gains</h2><p class='note'>No two finished runs were validated on "
                "the same images (same data, seed and valid_pct), so their average cannot be compared.</p>")
    rows = "".join(f"<tr><td>{_e(', '.join(g.members))}</td><td>{_e(g.best)}</td><td class='num'>{g.best_error:.4f}"
                   f"</td><td class='num'>{g.average_error:.4f}</td><td>{_e(', '.join(g.fixed) or '-')}</td>"
                   f"<td>{_e(', '.join(g.broken) or '-')}</td></tr>" for g in report.gains)
    return ("<h2 id='gains'>What averaging gains</h2><p>Validation error of the plain average of runs validated on "
            "the same images, against the best of them, and the classes the average gets right more often (fixes)"
            " or less often (breaks).</p><table><thead><tr><th>runs</th><th>best run</th><th>its error</th>"
            f"<th>average's error</th><th>fixes</th><th>breaks</th></tr></thead><tbody>{rows}</tbody></table>")


def _submissions(report: Report) -> str:
    if not report.submissions:
        return "<h2 id='submissions'>Submissions</h2><p class='note'>None yet (ksubmit ensemble makes one).</p>"
    rows = "".join(f"<tr><td>{_e(', '.join(s.members))}</td><td>{_e(', '.join(f'{w:g}' for w in s.weights))}</td>"
                   f"<td>{_e(s.status)}</td><td class='num score'>{_score(s.score)}</td>"
                   f"<td class='num'>{_score(s.best_single)}</td><td>{_e(s.ref)}</td></tr>" for s in report.submissions)
    return ("<h2 id='submissions'>Submissions</h2><table id='submissions-table'><thead><tr><th>members</th>"
            "<th>weights</th><th>status</th><th>score</th><th>best single run, same test set</th><th>ref</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>")


def _image(png: bytes, alt: str) -> str:
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _cell(text: str, numeric: bool) -> str:
    return f"<td class='num'>{_e(text)}</td>" if numeric else f"<td>{_e(text)}</td>"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def report_path(outputs_dir: Path, competition: str) -> Path:
    return outputs_dir / f"report-{competition}.html"


def curves_path(outputs_dir: Path, competition: str) -> Path:
    return outputs_dir / f"results-{competition}.png"


def write(report: Report, path: Path, curves_png: Path | None = None) -> Path:
    """Write the page to `path`, and its learning curves (drawn once) to `curves_png` when given, each in one
    rename (two commands may write them at once)."""
    curves = drawing.learning_curves(report.curves) if report.curves else None
    if curves is not None and curves_png is not None:
        _replace(curves_png, lambda partial: partial.write_bytes(curves))
    _replace(path, lambda partial: partial.write_text(render(report, curves)))
    return path


def _replace(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    write(partial)
    partial.replace(path)
