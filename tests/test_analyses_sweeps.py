"""Every analysis on the stored runs of an ordinary `curvebench sweep` (`analyze NAME --sweep S`,
nothing trained): a verdict per claim, stored on that sweep, and the seeds' figures drawn from
those runs — the ablation's steps to target with every seed's point (Young, Snider & Feng,
Tab. 2–3), the catapult phase diagram with its phases labelled (Kalra & Barkeshli), the
break-even quantities at the extremes of η and S (Jastrzębski et al.), the top Hessian
subspace's rotation (Ciuca) — and a page of them that renders in headless Chromium."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from harness.analyses import Outcome, stored_sections
from harness.analyses import catapult as C
from harness.analyses.store import stored_result
from harness.cli import app
from harness.db import open_database

CLI = CliRunner()


def _cli(*args: str) -> str:
    res = CLI.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


def _analyze(db: str, name: str, sweep: str) -> dict:
    doc = json.loads(_cli("analyze", name, "--sweep", sweep, "--db", db, "--json"))
    assert doc["analysis"] == name and doc["claims"]
    assert all(c["outcome"] in {o.value for o in Outcome} and c["reason"] for c in doc["claims"])
    assert stored_result(open_database(db), doc["sweep_id"], name)["claims"] == doc["claims"]
    return doc


def _sweep_runs(db: str, sweep_id: str) -> set[str]:
    return {r.id for r in open_database(db).runs() if r.sweep_id == sweep_id}


def _section(db: str, sweep_id: str, title_part: str):
    sections = [s for s in stored_sections(open_database(db), sweep_id) if title_part in s.title]
    assert len(sections) == 1
    return sections[0]


def _one_line_error(res, *needles: str) -> None:
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    for needle in needles:
        assert needle in res.output, res.output


@pytest.fixture(scope="module")
def ablation_sweep(tmp_path_factory):
    """lowrank with and without its bad initialisation, plain GD, two seeds, 25 steps."""
    tmp = tmp_path_factory.mktemp("ablation-sweep")
    db = str(tmp / "r.db")
    _cli("sweep", "--workload", "lowrank:bad_init=false|true", "--submission", "gd", "--hparam",
         "learning_rate=0.5", "--seeds", "2", "--max-steps", "25", "--name", "abl", "--db", db, "--quiet")
    return {"db": db, "tmp": tmp}


def test_ablation_of_an_ordinary_sweep_every_seeds_point(ablation_sweep):
    db = ablation_sweep["db"]
    doc = _analyze(db, "ablation", "abl")
    assert set(doc["result"]["run_ids"]) == _sweep_runs(db, doc["sweep_id"])
    steps = doc["result"]["steps"]
    assert set(steps) == {"lowrank", "lowrank:bad_init=1"} and all(len(v) == 2 for v in steps.values())
    # the paper's orderings need its mnist_mlp variants: every one undecidable, naming them
    assert len(doc["claims"]) == 15 and all(c["outcome"] == "undecidable" and "lacks mnist_mlp" in c["reason"]
                                            for c in doc["claims"])
    section = _section(db, doc["sweep_id"], "Architecture ablations")
    (figure,) = section.figures
    ax = figure.plot.axes[0]
    points = sum(len(c.get_offsets()) for c in ax.collections)
    assert points == 4  # every seed's point, two variants x two seeds
    assert set(figure.provenance.run_ids) == _sweep_runs(db, doc["sweep_id"])
    table = section.tables[1]
    assert [row[0] for row in table.rows] == list(steps) and all(len(row[1].split(", ")) == 2
                                                                 for row in table.rows)
    # the report of the sweep draws the analysis's figure in place of the standard one
    out = ablation_sweep["tmp"] / "page"
    _cli("report", "--sweep", "abl", "--db", db, "--out", str(out))
    html = (out / "index.html").read_text()
    assert "Steps to target per variant (Young, Snider &amp; Feng Tab. 2–3)" in html
    assert "Steps to target: lowrank</h3>" not in html and "Drawn with the analysis" in html
    # any selection holding the sweep's runs shows the analysis that judged them
    out = ablation_sweep["tmp"] / "page-workload"
    _cli("report", "--workload", "lowrank:bad_init=1", "--db", db, "--out", str(out))
    assert "Steps to target per variant (Young" in (out / "index.html").read_text()


def test_a_sweep_without_what_an_analysis_measures_is_a_one_line_error(ablation_sweep):
    db = ablation_sweep["db"]
    _one_line_error(CLI.invoke(app, ["analyze", "break-even", "--sweep", "abl", "--db", db]),
                    "no hessian snapshots", "--curvature hessian,cov")
    _one_line_error(CLI.invoke(app, ["analyze", "catapult", "--sweep", "abl", "--db", db]),
                    "has no width knob")
    _one_line_error(CLI.invoke(app, ["analyze", "quadratic", "--sweep", "abl", "--db", db]),
                    "no noisy_quadratic runs", "--curvature-vectors")
    _one_line_error(CLI.invoke(app, ["analyze", "ablation", "--sweep", "abl", "--seeds", "0,1",
                                     "--db", db]), "--seeds", "drop them or --sweep")
    _one_line_error(CLI.invoke(app, ["analyze", "ablation", "--sweep", "abl", "--mlflow", "file:///tmp/x",
                                     "--db", db]), "--mlflow", "apply to a grid it trains")
    _one_line_error(CLI.invoke(app, ["analyze", "ablation", "--sweep", "nope", "--db", db]),
                    "no sweep named or with id 'nope'")


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Three ordinary sweeps in one database, each with the options an analysis needs:
    uv at widths 2 and 512 over five learning rates with Hessian snapshots at 0 and at the end
    (catapult); lowrank over η x S with Hessian and gradient-covariance snapshots (break-even);
    the noisy quadratic over two α, storing its top-3 Ritz vectors (quadratic and rotation)."""
    tmp = tmp_path_factory.mktemp("analysis-sweeps")
    db = str(tmp / "r.db")
    common = ["--submission", "sgd", "--db", db, "--quiet", "--no-stop-at-target"]
    _cli("sweep", "--workload", "uv:width=2|512", "--hparam", "learning_rate=0.25|0.75|1.25|1.75|2.25",
         "--seeds", "1", "--max-steps", "40", "--eval-every", "40", "--curvature", "hessian",
         "--curvature-every", "init,at:40", "--name", "cat", *common)
    _cli("sweep", "--workload", "lowrank", "--hparam", "learning_rate=0.05|0.2", "--hparam",
         "batch_size=16|64", "--seeds", "2", "--max-steps", "30", "--eval-every", "30",
         "--curvature", "hessian,cov", "--curvature-every", "init,every:10", "--cov-batch-size", "16",
         "--cov-batches", "5", "--curvature-batch", "64", "--name", "be", *common)
    _cli("sweep", "--workload", "noisy_quadratic:dim=10", "--hparam", "learning_rate=0.2|0.5",
         "--seeds", "2", "--max-steps", "300", "--eval-every", "10", "--curvature", "hessian",
         "--curvature-vectors", "3", "--curvature-every", "init,every:100", "--lanczos-order", "8",
         "--name", "quad", *common)
    return {"db": db, "tmp": tmp}


@pytest.mark.slow  # three sweeps, about a minute on a quiet 2-core machine
def test_catapult_phase_diagram_of_an_ordinary_sweep(sweeps):
    db = sweeps["db"]
    doc = _analyze(db, "catapult", "cat")
    phases = doc["result"]["phases"]
    assert {p["run_id"] for p in phases} == _sweep_runs(db, doc["sweep_id"]) and len(phases) == 10
    # c = η λ_H^0 from each run's own step-0 snapshot
    for p in phases:
        assert p["c"] == pytest.approx(p["learning_rate"] * p["lambda0"], abs=1e-3)
    assert {c["name"] for c in doc["claims"]} == {"uv_c_loss_2", "uv_c_max_4", "c_loss_grows_small_width/uv",
                                                  "c_order", "catapult_flattens"}
    figure = _section(db, doc["sweep_id"], "Catapult phase diagram").figures[0]
    ax = figure.plot.axes[0]
    present = {p["phase"] for p in phases}
    labelled = {t.get_text() for t in ax.get_legend().get_texts()}
    assert present <= labelled and len(present) >= 2  # the grid crosses a phase boundary
    points = [tuple(xy) for coll in ax.collections for xy in coll.get_offsets()]
    assert len(points) == 10 and {w for _, w in points} == {2, 512}  # every run, at its width


def test_c_order_is_undecidable_when_c_loss_and_c_max_are_one_grid_step_apart():
    def phase(c, ph):
        return C.RunPhase(f"r{c}", "uv:width=2", 0, c, 1.0, c, ph, 1.0, 0.1, 0.5, True)

    grid = (1.0, 2.0, 3.0, 4.0)
    jump = [phase(1.0, C.Phase.MONOTONE), phase(2.0, C.Phase.MONOTONE), phase(3.0, C.Phase.DIVERGES),
            phase(4.0, C.Phase.DIVERGES)]
    c_order = {c.name: c for c in C.judge(jump, grid)}["c_order"]
    assert c_order.outcome == Outcome.UNDECIDABLE and "one grid step apart" in c_order.reason
    # two steps apart: c_loss above c_max is a failure
    gap = [phase(1.0, C.Phase.MONOTONE), phase(2.0, C.Phase.MONOTONE), phase(3.0, C.Phase.MONOTONE),
           phase(4.0, C.Phase.DIVERGES)]
    wide = [phase(c, C.Phase.MONOTONE) for c in (1.0, 2.0)] + [phase(4.0, C.Phase.DIVERGES)]
    assert {c.name: c.outcome for c in C.judge(wide, (1.0, 2.0, 4.0))}["c_order"] == Outcome.UNDECIDABLE
    assert {c.name: c.outcome for c in C.judge(gap, grid)}["c_order"] == Outcome.UNDECIDABLE
    # each (model, seed) at its own c values (a sweep's runs): the coarsest step counts
    own = [phase(c, C.Phase.MONOTONE if c < 2.5 else C.Phase.DIVERGES) for c in (0.9, 2.1, 2.6, 5.0)]
    assert {c.name: c.outcome for c in C.judge(own)}["c_order"] == Outcome.UNDECIDABLE


@pytest.mark.slow
def test_break_even_trajectories_at_the_extremes_of_an_ordinary_sweep(sweeps):
    db = sweeps["db"]
    doc = _analyze(db, "break-even", "be")
    cfg = doc["result"]["config"]
    assert (cfg["learning_rates"], cfg["batch_sizes"], cfg["every"]) == ([0.05, 0.2], [16, 64], 10)
    assert len(doc["claims"]) == 8  # four quantities along η and along S
    figure = _section(db, doc["sweep_id"], "Break-even").figures[0]
    # rows: the four quantities; columns: η 0.05 and 0.2 at S=16, S=64 and 16 at η=0.05
    axes = figure.plot.axes
    assert len(axes) == 4 * 2
    assert [ax.get_title() for ax in axes[:2]] == ["η axis (S=16)", "S axis (η=0.05)"]
    assert [[t.get_text() for t in ax.get_legend().get_texts()] for ax in axes[:2]] == [
        ["η=0.05 (every seed)", "η=0.2 (every seed)"], ["S=64 (every seed)", "S=16 (every seed)"]]
    for ax in axes:
        assert len(ax.get_lines()) == 2 * 2  # two settings, every seed a line
    assert len(figure.provenance.run_ids) == 6  # S=16 at η=0.05 is in both columns


@pytest.mark.slow
def test_rotation_and_equilibrium_of_an_ordinary_sweep(sweeps):
    db = sweeps["db"]
    doc = _analyze(db, "quadratic", "quad")
    verdicts = {c["name"]: c["outcome"] for c in doc["claims"]}
    assert set(verdicts) == {"equilibrium/α=0.2", "equilibrium/α=0.5", "rotation/stable",
                             "rotation/settles_early"}
    # the noisy quadratic's Hessian is constant: its top subspace cannot rotate
    assert verdicts["rotation/stable"] == verdicts["rotation/settles_early"] == "holds"
    rotation = doc["result"]["rotation"]
    assert len(rotation) == 2 and all(r["steps"] == [0, 100, 200, 300] for r in rotation)
    section = _section(db, doc["sweep_id"], "Stochastic quadratic")
    assert [f.slug for f in section.figures] == ["quadratic-equilibrium", "quadratic-rotation"]


@pytest.mark.slow
def test_the_analyses_page_renders_in_headless_chromium(sweeps):
    """The three analyses' sections of the sweeps on one page at 1,400 px: no console errors,
    data in every figure, no panel narrower than 300 px."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on this machine (apt-get install chromium; .ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (pip install -e '.[dev]')")
    from harness.analyses import sections_for_sweep
    from harness.report import write_report

    db = sweeps["db"]
    for name, sweep in (("catapult", "cat"), ("break-even", "be"), ("quadratic", "quad")):
        _cli("analyze", name, "--sweep", sweep, "--db", db)
    database = open_database(db)
    sections = [s for sweep in ("cat", "be", "quad") for s in sections_for_sweep(database, sweep)]
    index = write_report(sweeps["tmp"] / "page", "analyses", sections)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in
                    ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(index.as_uri(), wait_until="load")
            figures = page.evaluate("""() => [...document.querySelectorAll('figure.report-figure')]
                .map(f => ({title: f.querySelector('h3').textContent,
                            data: f.querySelectorAll('svg [id*="-data-"]').length,
                            widths: [...f.querySelectorAll('svg g[id^="axes_"]')]
                                .map(g => g.querySelector('g[id^="patch_"] path'))
                                .filter(p => p).map(p => p.getBoundingClientRect().width)}))""")
        finally:
            browser.close()
    assert problems == []
    assert len(figures) == 5  # phase diagram, loss ratios, break-even, equilibrium, rotation
    for fig in figures:
        assert fig["data"] > 0, fig["title"]
        assert fig["widths"] and min(fig["widths"]) >= 300, fig


def test_runs_of_an_older_workload_version_are_left_out_and_named(ablation_sweep, tmp_path):
    """A sweep whose variant's code changed between its runs is judged on the newest version
    only, as the report draws it; the older runs are named on stderr and in --json."""
    from sqlalchemy import update

    from harness.db import Run

    import sqlite3

    db = str(tmp_path / "copy.db")
    with sqlite3.connect(ablation_sweep["db"]) as src, sqlite3.connect(db) as dst:
        src.backup(dst)  # the whole database, its write-ahead log included
    database = open_database(db)
    old = [r.id for r in database.runs() if r.variant == "lowrank" and r.seed == 0]
    with database.session() as s:
        s.execute(update(Run).where(Run.id.in_(old)).values(workload_version="0ld0ld00"))
    res = CLI.invoke(app, ["analyze", "ablation", "--sweep", "abl", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert old[0] not in doc["result"]["run_ids"] and len(doc["result"]["run_ids"]) == 3
    assert doc["left_out"] == [line for line in res.stderr.strip().splitlines()]
    assert len(doc["left_out"]) == 1 and "0ld0ld00" in doc["left_out"][0] \
        and doc["left_out"][0].startswith("not judged: left out 1 run(s) of lowrank")
