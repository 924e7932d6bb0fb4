"""The report's curvature comparison figure on real tiny runs: one line per configuration
(two variants x two learning rates, two seeds each), the chosen metrics only, unconverged
estimates as hollow markers, colour families by the coarsest varying knob, every stored
value in a collapsed table, and one version of each variant per figure."""

from __future__ import annotations

import json
import re
import shutil

import matplotlib.colors
import numpy as np
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from harness.cli import app
from harness.db import Run, open_database
from harness.report.curvature_figures import curvature_figures
from harness.report.data import load_series
from harness.report.plotting import group_configs
from tests.stored_runs import add_curves, add_run

CLI = CliRunner()
LABELS = {f"width={w}, gd (learning_rate={lr})" for w in (4, 8) for lr in (0.05, 0.1)}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """uv at widths 4 and 8 x learning rates 0.05 and 0.1 x seeds 0 and 1, plain GD, 10 steps,
    Hessian snapshots at 0, 5, 10 with a Lanczos order of 3 (so some estimates do not converge)."""
    tmp = tmp_path_factory.mktemp("comparison")
    db = str(tmp / "results.db")
    res = CLI.invoke(app, ["sweep", "--workload", "uv:width=4|8", "--submission", "gd",
                           "--hparam", "learning_rate=0.05|0.1", "--seeds", "2", "--max-steps", "10",
                           "--eval-every", "5", "--curvature", "hessian", "--curvature-every",
                           "init,at:5/10", "--lanczos-order", "3", "--db", db, "--name", "cmp",
                           "--quiet"])
    assert res.exit_code == 0, res.output
    database = open_database(db)
    runs = database.runs()
    assert len(runs) == 8
    return {"db": db, "tmp": tmp, "runs": runs, "series": load_series(database, runs)}


def _median_lines(ax) -> list:
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def _figure(sweep, metrics=None):
    figures = curvature_figures(group_configs(sweep["runs"]), sweep["series"], metrics)
    assert len(figures) == 1  # both variants of uv in one figure
    return figures[0]


def test_one_line_per_configuration_and_the_default_metrics_stored(sweep):
    figure = _figure(sweep)
    assert figure.title == "Curvature over steps: uv, hessian"
    axes = [ax for ax in figure.plot.axes if ax.get_visible()]
    # seed 000's set minus what a width-4/8 uv model cannot have (no 10 Ritz values)
    assert [ax.get_title() for ax in axes] == ["λ_max", "λ_min", "PNR (log)"]
    assert "Not stored (or never finite) for these runs: mer_10, ter_10, pgr_10" in figure.description
    for ax in axes:
        lines = _median_lines(ax)
        assert {line.get_label() for line in lines} == LABELS and len(lines) == 4
    assert axes[2].get_yscale() == "log"
    # 2/η beside λ_max, for both learning rates
    edges = {round(line.get_ydata()[0], 6) for line in axes[0].get_lines() if line.get_label() == "_edge"}
    assert edges == {40.0, 20.0}


def test_metrics_option_chooses_the_panels(sweep):
    figure = _figure(sweep, ["trace", "max_eig"])
    axes = [ax for ax in figure.plot.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["trace", "λ_max"]
    assert all(len(_median_lines(ax)) == 4 for ax in axes)


def test_unconverged_estimates_are_hollow_markers_where_a_seed_flagged_them(sweep):
    figure = _figure(sweep, ["max_eig", "min_eig"])
    drawn_any = False
    for ax, name in zip(figure.plot.axes, ["max_eig", "min_eig"]):
        hollow = [line for line in ax.get_lines() if line.get_label() == "_unconverged"]
        assert all(line.get_markerfacecolor() == "none" for line in hollow)
        drawn = {(line.get_markeredgecolor(), float(x)) for line in hollow for x in line.get_xdata()}
        expected = set()
        for line in _median_lines(ax):  # label "width=W, gd (learning_rate=LR)"
            width, lr = re.fullmatch(r"width=(\d+), gd \(learning_rate=(.*)\)", line.get_label()).groups()
            for run in sweep["runs"]:
                if run.variant == f"uv:width={width}" and run.hparams["learning_rate"] == float(lr):
                    expected |= {(line.get_color(), float(snap.step))
                                 for snap in sweep["series"][run.id].snapshots
                                 if snap.metrics.get(f"{name}_converged") == 0.0}
        assert {(matplotlib.colors.to_hex(c), x) for c, x in drawn} == \
            {(matplotlib.colors.to_hex(c), x) for c, x in expected}
        drawn_any |= bool(drawn)
    assert drawn_any, "the tiny Lanczos order should leave some estimate unconverged"
    assert "Hollow markers" in figure.description


def test_colours_are_grouped_by_the_coarsest_varying_knob(sweep):
    figure = _figure(sweep, ["max_eig"])
    colours = {line.get_label(): np.array(matplotlib.colors.to_rgb(line.get_color()))
               for line in _median_lines(figure.plot.axes[0])}
    for label, rgb in colours.items():
        warm = rgb[0] > rgb[2]
        assert warm == label.startswith("width=4"), (label, rgb)
    assert len({tuple(c) for c in colours.values()}) == 4
    assert "one hue per value of knob width" in figure.description


def test_report_command_with_metrics_and_the_all_values_table(sweep):
    out = sweep["tmp"] / "page"
    res = CLI.invoke(app, ["report", "--db", sweep["db"], "--out", str(out), "--sweep", "cmp",
                           "--metrics", "max_eig,pnr"])
    assert res.exit_code == 0, res.output
    html = (out / "index.html").read_text()
    figure = re.search(r'<figure class="report-figure"[^>]*><h3>\d+\. Curvature over steps: uv, '
                       r'hessian</h3>.*?</figure>', html, flags=re.S).group(0)
    table = re.search(r'<details class="all-values">.*?</details>', figure, flags=re.S).group(0)
    for name in ("max_eig", "max_eig_converged", "trace_stderr", "pnr_relative_error"):
        assert f"<td>{name}</td>" in table
    assert table.count("<th>") == 1 + 4  # metric + one column per configuration
    bad = CLI.invoke(app, ["report", "--db", sweep["db"], "--out", str(out), "--metrics", "max_eig,nope"])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines() == [bad.output.strip()]
    assert "nope not stored" in bad.output and "max_eig" in bad.output


def test_one_version_of_each_variant_per_figure(tmp_path):
    """Runs of one variant under two workload versions (the code changed between them) are
    two figures, the newest version first; variants are never mixed across versions."""
    db = open_database(str(tmp_path / "r.db"))
    old = [add_run(db, seed=s, order=s) for s in (0, 1)]
    new = [add_run(db, seed=s, order=10 + s) for s in (0, 1)]
    for run_id in old + new:
        add_curves(db, run_id)
    with db.session() as s:
        s.execute(update(Run).where(Run.id.in_(new)).values(workload_version="v2"))
    runs = db.runs()
    figures = curvature_figures(group_configs(runs), load_series(db, runs))
    assert [f.title for f in figures] == ["Curvature over steps: mnist_mlp, hessian@Dense_0/*",
                                          "Curvature over steps: mnist_mlp (older version 1), hessian@Dense_0/*"]
    assert [set(f.provenance.run_ids) for f in figures] == [set(new), set(old)]
    assert [dict(f.provenance.workload_versions) for f in figures] == [{"mnist_mlp": ("v2",)},
                                                                       {"mnist_mlp": ("v1",)}]
    assert json.dumps(figures[0].table.rows)  # every stored value, as text


def test_the_page_at_1400_px_panels_wide_enough_legend_clear_of_data(sweep):
    """In headless Chromium at a 1,400 px window: no console errors, every panel of every
    figure at least 300 px wide, and the comparison figure's legend overlapping no panel."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on this machine (apt-get install chromium; .ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (pip install -e '.[dev]')")
    out = sweep["tmp"] / "page-1400"
    res = CLI.invoke(app, ["report", "--db", sweep["db"], "--out", str(out)])
    assert res.exit_code == 0, res.output
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in
                    ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto((out / "index.html").as_uri(), wait_until="load")
            figures = page.evaluate("""() => [...document.querySelectorAll('figure.report-figure')]
                .map(f => {
                    const box = el => { const b = el.getBoundingClientRect();
                                        return [b.left, b.top, b.right, b.bottom]; };
                    const panels = [...f.querySelectorAll('svg g[id^="axes_"]')]
                        .map(g => g.querySelector('g[id^="patch_"] path'))
                        .filter(p => p && p.getBoundingClientRect().width > 0).map(box);
                    const legends = [...f.querySelectorAll('svg g[id^="legend_"]')].map(box);
                    return {title: f.querySelector('h3').textContent, panels, legends};
                })""")
        finally:
            browser.close()
    assert problems == []
    assert len(figures) >= 4
    for fig in figures:
        assert fig["panels"], fig["title"]
        for left, _, right, _ in fig["panels"]:
            assert right - left >= 300, (fig["title"], right - left)
    comparison = next(f for f in figures if "Curvature over steps: uv, hessian" in f["title"])
    assert comparison["legends"]
    for lx0, ly0, lx1, ly1 in comparison["legends"]:
        for px0, py0, px1, py1 in comparison["panels"]:
            assert lx1 <= px0 or lx0 >= px1 or ly1 <= py0 or ly0 >= py1, "legend covers a panel"


def test_a_tag_selects_the_runs_it_labels(tmp_path):
    from harness.report import Filters
    from harness.report.data import select_runs

    db = open_database(str(tmp_path / "r.db"))
    tagged = {add_run(db, seed=s, tag="warm", order=s) for s in (0, 1)}
    add_run(db, seed=2, tag="cold", order=2)
    add_run(db, seed=3, order=3)
    assert {r.id for r in select_runs(db, Filters(tag="warm")).runs} == tagged
    empty = select_runs(db, Filters(tag="hot"))
    assert empty.runs == [] and "--tag" in empty.empty_reason and "cold, warm" in empty.empty_reason
