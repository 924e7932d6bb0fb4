"""`curvebench report`: an offline HTML page of plots from the results database.

    curvebench report [--out DIR] [--runs ID,...] [--sweep NAME_OR_ID] [--workload W]
                      [--submission S] [--density-steps 0,100,1000] [--db URL]

writes DIR (default `./curvebench-report`) holding `index.html` and one SVG per figure
(`NN-slug.svg`). The page has no script and loads nothing: every figure's SVG is inlined, so
`index.html` alone opens offline; the SVG files beside it are the same figures for papers.

Figures (`harness.report.figures`): training curves (target metric and training loss vs
step and vs training seconds, seeds as a band, the target as a line); steps to target per
variant with every seed's point; performance profiles ρ_s(τ) as `curvebench score`
computes them; curvature over steps, one line per configuration of a workload (seed 000's
metric set by default, `--metrics` to choose; hollow markers where an estimate did not
converge; 2/η beside the Hessian's λ_max; every stored value in a collapsed table); the SLQ
density at chosen steps on a log scale. Each figure lists the run ids, workload versions
and environments it came from.

**Nothing to show.** A database with no runs, or filters that match nothing, still gives a
page (and exit code 0): it says which filter emptied the selection and what it could have
matched, so a scripted report never fails on an empty database. An ambiguous run id prefix
is bad input instead (one-line error, exit 2).

**Plotting library: matplotlib, static SVG.** The figures are static (no interaction is
needed to read a curve or a spectrum), SVG is sharp at any zoom and renders without
JavaScript, so the page opens in any browser offline and the browser test only has to check
that SVG data paths rendered. Vega-Lite would need ~800 KB of JavaScript inlined per page
and a browser to render at all. matplotlib is a core dependency (with fonttools and pillow
about 100 MB of the ~900 MB core install; JAX's jaxlib and scipy are most of the rest), so
`report` works in every installation. Text stays text (`svg.fonttype=none`), keeping files small.

**Speed.** matplotlib's SVG writer is pure Python; what a report costs is mostly drawing
(axes, ticks, text, paths). Lines of more than `plotting.MAX_POINTS` points are drawn through
each bin's first, last, lowest and highest points (`plotting.decimate`; the figure says so
when it happens), so a curve of an eval every step over thousands of steps still shows every
spike and costs a few hundred points. Figures are rendered in forked worker processes (one
per CPU, at most 4; `workers=`), except in a process running a JAX backend, where forking
risks a deadlock and they are written one after the other. Snapshot arrays no figure draws
(Ritz vectors) are never read. `benchmarks/report_build.py` measures it.

**Adding to a report (the API for analyses).** A report is a list of `Section`s; the HTML
writer knows nothing else:

    from harness.report import Figure, Provenance, Section, Table, build_report, mark_data
    from matplotlib.figure import Figure as PlotFigure

    plot = PlotFigure(figsize=(6, 4), layout="constrained")
    ax = plot.subplots()
    mark_data(ax.plot(steps, sharpness))                 # data artists: checked in the browser
    section = Section(
        "Catapult phase (Kalra & Barkeshli, 2023)",
        text="Verdict per claim ...",                    # paragraphs, `code` spans allowed
        tables=[Table(("claim", "verdict"), (("c_loss ≈ 2", "holds"),))],
        figures=[Figure("Loss and sharpness over c", "what it shows ...",
                        Provenance.of(runs, "which rows / command"), plot, slug="catapult")])
    build_report(db, filters, out_dir, extra_sections=[section])   # or write_report(...)

The analyses (`harness.analyses`) hand over their sections this way: `curvebench report` adds
the section of every analysis that judged the sweep of a selected run (its own grid, or
`analyze NAME --sweep S` on an ordinary sweep S), rebuilt from the verdicts stored on it. A section whose figure stands
for a standard one sets `Section(replaces=TITLE)` (the ablation's steps to target, with its
verdicts, replaces the standard "Steps to target"); the standard section then points to it.

`Figure(title, description, provenance, plot, slug)`: `plot` is a matplotlib figure (not
pyplot: no global state); wrap each data artist in `mark_data` so the browser test can tell
a plot with data from empty axes. `Provenance.of(runs, source)` collects run ids, workload
versions and environments. `Section(title, text, figures, tables)`. `write_report(out_dir,
title, sections, meta=..., empty_reason=...)` writes any sections without the standard ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import make_url

from harness.db import Database
from harness.errors import ReportError
from harness.report.data import Filters, Selection, load_series, select_runs
from harness.report.records import DATA_GID, Environment, Figure, Provenance, Section, Table, mark_data

DEFAULT_OUT = "curvebench-report"

__all__ = ["DATA_GID", "DEFAULT_OUT", "Environment", "Figure", "Filters", "Provenance", "ReportError",
           "ReportResult", "Section", "Selection", "Table", "build_report", "mark_data", "write_report"]


@dataclasses.dataclass
class ReportResult:
    """Where the page is, how many runs and figures it shows, or why it is empty."""

    index: Path
    runs: int
    figures: int
    empty_reason: str | None
    #: workload versions left out of the figures, one line each with how to show them
    left_out: list[str] = dataclasses.field(default_factory=list)


def _need_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ReportError("curvebench report needs matplotlib: pip install matplotlib "
                          "(or reinstall curvebench: pip install -e .)") from None


def write_report(out_dir: str | Path, title: str, sections: Sequence[Section], *,
                 meta: Sequence[str] = (), empty_reason: str | None = None,
                 workers: int | None = None, force: bool = False) -> Path:
    """Write sections as `out_dir/index.html` plus one SVG per figure, rendered in `workers`
    processes (default: one per CPU, at most 4; see `harness.report.html`); files curvebench
    did not write are never replaced (`force`: replace them)."""
    _need_matplotlib()
    from harness.report import html

    return html.write_report(out_dir, title, sections, meta=meta, empty_reason=empty_reason,
                             workers=workers, force=force)


def build_empty_report(filters: Filters, out_dir: str | Path, reason: str, *,
                       force: bool = False) -> ReportResult:
    """The page for a selection that cannot be made at all (no database at the given path):
    it says why, and nothing is created where the database was expected."""
    meta = [f"selection: {filters.describe()} — 0 run(s)"]
    index = write_report(out_dir, "curvebench report", [], meta=meta, empty_reason=reason,
                         force=force)
    return ReportResult(index, 0, 0, reason)


def build_report(db: Database, filters: Filters, out_dir: str | Path = DEFAULT_OUT, *,
                 density_steps: Sequence[int] | None = None, metrics: Sequence[str] | None = None,
                 extra_sections: Sequence[Section] = (), workers: int | None = None,
                 force: bool = False) -> ReportResult:
    """Select runs, draw the standard figures and `extra_sections`, write the page.
    `metrics`: the curvature metrics to draw (default: λ_max, λ_min, MER-10, TER-10, PNR, PGR-10)."""
    _need_matplotlib()
    from harness.report.figures import standard_sections

    selection = select_runs(db, filters)
    meta = [f"database: {make_url(db.url).render_as_string(hide_password=True)}",
            f"selection: {filters.describe()} — {len(selection.runs)} run(s)", *selection.left_out]
    sections: list[Section] = []
    if selection.runs:
        series = load_series(db, selection.runs)
        sections = standard_sections(selection.runs, series, density_steps, metrics)
    for extra in extra_sections:  # where an analysis draws a standard figure, its figure stands
        for standard in sections:
            if extra.replaces and standard.title == extra.replaces and standard.figures:
                standard.figures = []
                standard.text = f"Drawn with the analysis's verdicts below: {extra.title}."
    sections.extend(extra_sections)
    index = write_report(out_dir, "curvebench report", sections, meta=meta,
                         empty_reason=selection.empty_reason, workers=workers, force=force)
    return ReportResult(index, len(selection.runs), sum(len(s.figures) for s in sections),
                        selection.empty_reason, selection.left_out)
