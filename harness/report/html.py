"""Write sections of figures as a directory: `index.html` plus one SVG file per figure.

The page is self-contained: each figure's SVG is inlined (and also written beside it as
`NN-slug.svg`), the style sheet is inline, and there is no script, so it opens offline from
the file system in any browser. Figure ids inside the SVGs are made unique per page
(matplotlib's `svg.hashsalt` per figure, numbered data gids), so inlined figures never
share clip paths.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import html
import io
import multiprocessing
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

from harness import output_dir
from harness.report.records import DATA_GID, Figure, Section, Table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em;
       color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
.meta { color: #555; font-size: 0.9em; } .empty { background: #fff4e5; border: 1px solid #f0b46b;
        padding: 0.8em 1em; border-radius: 4px; }
figure.report-figure { margin: 1.5em 0; padding: 0.8em; border: 1px solid #e3e3e3; border-radius: 4px; }
figure.report-figure h3 { margin: 0 0 0.4em 0; font-size: 1.05em; }
figure.report-figure svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.9em; margin-top: 0.5em; }
details { font-size: 0.85em; color: #444; margin-top: 0.4em; } details ul { margin: 0.3em 0; }
code { font-size: 0.92em; } table.report-table { border-collapse: collapse; margin: 0.8em 0; }
table.report-table td, table.report-table th { border: 1px solid #ccc; padding: 0.25em 0.6em; }
nav ul { columns: 2; font-size: 0.9em; } div.scroll { overflow-x: auto; }
"""
SLUG_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _inline_code(text: str) -> str:
    """Escape, then show `backticked` spans as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _esc(text))


def svg_of(figure: Figure, number: int) -> str:
    """The figure as SVG text with ids unique to figure `number` on the page."""
    for n, artist in enumerate(a for a in figure.plot.findobj() if a.get_gid() == DATA_GID):
        artist.set_gid(f"fig{number}-data-{n}")
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"curvebench-fig{number}", "svg.fonttype": "none"}):
        figure.plot.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


#: the figures being written; forked workers read them from here (never pickled)
_PENDING: list[tuple[Figure, int]] = []


def _render_pending(index: int) -> str:
    figure, number = _PENDING[index]
    return svg_of(figure, number)


def _jax_started() -> bool:
    """Whether this process has started a JAX backend (its threads make fork unsafe: JAX warns
    of deadlocks). `curvebench report` never does; `analyze --report`, which trained in this
    process, does and writes its few figures serially. Reads JAX's private backend table:
    there is no public "is initialised" query."""
    bridge = sys.modules.get("jax._src.xla_bridge")
    return bool(getattr(bridge, "_backends", None))


def render_all(figures: Sequence[tuple[Figure, int]], workers: int | None = None) -> list[str]:
    """Each (figure, number) as SVG text, in order; in `workers` forked processes (default: one
    per CPU, at most 4) when there are several figures, the platform can fork and no JAX
    backend runs in this process; otherwise here, one after the other.

    matplotlib's SVG writer is pure Python and holds the GIL, so threads do not help;
    forked workers inherit the figures instead of unpickling them, and send back only text."""
    global _PENDING
    workers = min(os.cpu_count() or 1, 4) if workers is None else workers
    workers = min(workers, len(figures))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods() or _jax_started():
        return [svg_of(f, n) for f, n in figures]
    _PENDING = list(figures)
    try:
        with concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_render_pending, range(len(figures))))
    finally:
        _PENDING = []


def _svg_element(svg: str) -> str:
    """The <svg> element alone (no XML declaration or DOCTYPE) for inlining in HTML."""
    return svg[svg.index("<svg"):]


def _provenance(figure: Figure) -> str:
    p = figure.provenance
    ids = ", ".join(f"<code>{_esc(i)}</code>" for i in p.run_ids)
    versions = "; ".join(f"{_esc(v)}: {_esc(', '.join(vs))}" for v, vs in p.workload_versions)
    envs = "".join(f"<li>{n} run(s): {_esc(e.describe())}</li>" for e, n in p.environments)
    return (f"<details class=\"provenance\"><summary>provenance: {len(p.run_ids)} run(s), "
            f"{len(p.environments)} environment(s)</summary><ul>"
            f"<li>source: {_inline_code(p.source)}</li>"
            f"<li>workload versions: {versions or '-'}</li>"
            f"<li>environments:<ul>{envs}</ul></li>"
            f"<li>run ids: {ids}</li></ul></details>")


def _table(table: Table) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{_inline_code(c)}</td>" for c in row) + "</tr>"
                   for row in table.rows)
    return f"<table class=\"report-table\"><tr>{head}</tr>{body}</table>"


def _collapsed(table: Table | None) -> str:
    """A figure's table, collapsed: the numbers it shows and the ones it leaves out."""
    if table is None:
        return ""
    return (f"<details class=\"all-values\"><summary>every stored value ({len(table.rows)} rows)"
            f"</summary><div class=\"scroll\">{_table(table)}</div></details>")


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{_inline_code(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


def write_report(out_dir: str | Path, title: str, sections: Sequence[Section], *,
                 meta: Sequence[str] = (), empty_reason: str | None = None,
                 workers: int | None = None, force: bool = False) -> Path:
    """Write `out_dir/index.html` and one SVG per figure (rendered by `render_all` in
    `workers` processes); returns the index path.

    Figures are closed (their memory freed) once written. `meta` lines go under the title;
    `empty_reason` replaces the sections with a notice saying why there is nothing to show.
    Files named NN-*.svg left by an earlier report in the same directory are removed first;
    files curvebench did not write are never replaced or removed (harness.output_dir; `force`
    replaces those in the way).
    """
    numbered = [(f, n) for n, f in enumerate((f for s in sections for f in s.figures), 1)]
    names = [f"{n:02d}-{SLUG_CHARS.sub('_', f.slug)[:80]}.svg" for f, n in numbered]
    out = output_dir.claim(out_dir, ["index.html", *names], force=force)
    output_dir.remove_stale(out, ["index.html", *names], "[0-9][0-9]*-*.svg")
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{_esc(title)}</h1>",
             *(f"<p class=\"meta\">{_inline_code(line)}</p>" for line in meta)]
    if empty_reason is not None:
        parts.append(f"<p class=\"empty\" id=\"empty\">Nothing to report: {_inline_code(empty_reason)}</p>")
    toc, body = [], []
    svgs = iter(render_all(numbered, workers))
    number = 0
    for s_index, section in enumerate(sections):
        anchor = f"section-{s_index}"
        toc.append(f"<li><a href=\"#{anchor}\">{_esc(section.title)}</a> ({len(section.figures)})</li>")
        body.append(f"<section id=\"{anchor}\"><h2>{_esc(section.title)}</h2>{_paragraphs(section.text)}")
        body.extend(_table(t) for t in section.tables)
        for figure in section.figures:
            number += 1
            svg = next(svgs)
            name = names[number - 1]
            (out / name).write_text(svg, encoding="utf-8")
            figure.plot.clear()
            body.append(f"<figure class=\"report-figure\" id=\"figure-{number}\">"
                        f"<h3>{number}. {_esc(figure.title)}</h3>{_svg_element(svg)}"
                        f"<figcaption>{_inline_code(figure.description)} "
                        f"<a href=\"{_esc(name)}\">{_esc(name)}</a></figcaption>"
                        f"{_collapsed(figure.table)}{_provenance(figure)}</figure>")
        body.append("</section>")
    if toc:
        parts.append(f"<nav><ul>{''.join(toc)}</ul></nav>")
    parts.extend(body)
    parts.append(f"<p class=\"meta\">written {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC "
                 f"by curvebench report</p></body></html>")
    index = out / "index.html"
    index.write_text("".join(parts), encoding="utf-8")
    return index
