"""`curvebench report` on real tiny trials: the page in a real browser, provenance, empty
selections, and `curvebench curvature --json` printing array values."""

from __future__ import annotations

import json
import math
import re
import shutil
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from harness import score as scoring
from harness.cli import app
from harness.db import open_database
from harness.report import Filters, ReportError, build_report, write_report
from harness.report.curvature_figures import choose_steps
from harness.report.plotting import band, decimate
from harness.report.training_figures import performance_profile
from tests.conftest import SUBMISSIONS

CLI = CliRunner()


def _run(db_path: str, *args: str) -> list[dict]:
    res = CLI.invoke(app, ["run", *args, "--db", db_path, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    """Real tiny trials: mnist_mlp adam (2 seeds, Hessian snapshots) and sgd (1 seed), and the
    uv toy with plain GD (Hessian snapshots, so sharpness meets its 2/η line)."""
    tmp = tmp_path_factory.mktemp("report")
    db_path = str(tmp / "results.db")
    curv = ["--curvature", "hessian", "--curvature-every", "init,at:10/20", "--curvature-batch", "128",
            "--lanczos-order", "8"]
    adam = _run(db_path, "--workload", "mnist_mlp", "--submission", str(SUBMISSIONS / "adam"),
                "--seeds", "2", "--max-steps", "20", "--eval-every", "10", *curv)
    sgd = _run(db_path, "--workload", "mnist_mlp", "--submission", str(SUBMISSIONS / "sgd"),
               "--max-steps", "20", "--eval-every", "10")
    uv = _run(db_path, "--workload", "uv:width=8", "--submission", str(SUBMISSIONS / "gd"),
              "--max-steps", "30", "--eval-every", "10", *curv)
    return {"db": db_path, "tmp": tmp, "adam": adam, "sgd": sgd, "uv": uv}


@pytest.fixture(scope="module")
def report(trials):
    out = trials["tmp"] / "page"
    res = CLI.invoke(app, ["report", "--db", trials["db"], "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert str(out / "index.html") in res.stdout
    return out


def _figures(html: str) -> list[str]:
    return re.findall(r'<figure class="report-figure".*?</figure>', html, flags=re.S)


def test_report_has_every_figure_with_its_provenance(trials, report):
    html = (report / "index.html").read_text()
    titles = re.findall(r"<h3>\d+\. (.*?)</h3>", html)
    assert titles == ["Training curves: mnist_mlp", "Training curves: uv:width=8",
                      "Steps to target: mnist_mlp", "Steps to target: uv", "Performance profiles",
                      "Curvature over steps: mnist_mlp, hessian", "Curvature over steps: uv:width=8, hessian",
                      "Spectral density: mnist_mlp, hessian", "Spectral density: uv:width=8, hessian"]
    assert len(list(report.glob("*.svg"))) == len(titles)
    db = open_database(trials["db"])
    for figure in _figures(html):
        ids = re.findall(r"<code>([0-9a-f-]{36})</code>", figure)
        assert ids, figure[:200]
        for run_id in ids:
            run = db.get_run(run_id)
            assert run.workload_version in figure and run.jax_version in figure
            assert run.device_kind in figure
    by_title = dict(zip(titles, _figures(html)))
    adam_ids = {r["run_id"] for r in trials["adam"]}
    assert set(re.findall(r"<code>([0-9a-f-]{36})</code>",
                          by_title["Curvature over steps: mnist_mlp, hessian"])) == adam_ids
    # GD on uv gets its stability edge; adam gets none, and the page says why
    lr = json.loads((SUBMISSIONS / "gd" / "hparams.json").read_text())["learning_rate"]
    assert f"2/η = {2 / lr:.4g}" in by_title["Curvature over steps: uv:width=8, hessian"]
    assert "No 2/η line for adam" in by_title["Curvature over steps: mnist_mlp, hessian"]
    assert "steps 0, 10, 20" in by_title["Spectral density: mnist_mlp, hessian"]


def test_report_renders_in_a_real_browser(report):
    """Every figure's inlined SVG renders with data elements of non-zero size; no console errors."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on this machine (apt-get install chromium; .ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (pip install -e '.[dev]')")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in
                    ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.goto((report / "index.html").as_uri(), wait_until="load")
            rendered = page.evaluate("""() => [...document.querySelectorAll('figure.report-figure')]
                .map(f => {
                    const svg = f.querySelector('svg');
                    if (!svg) return {id: f.id, width: 0, height: 0, data: 0};
                    const box = svg.getBoundingClientRect();
                    const data = [...svg.querySelectorAll('[id*="-data-"]')].filter(g => {
                        const b = g.getBBox();
                        const paths = [...g.querySelectorAll('path'), ...(g.tagName === 'path' ? [g] : [])];
                        return (b.width > 0 || b.height > 0) &&
                               paths.some(p => (p.getAttribute('d') || '').length > 2);
                    });
                    return {id: f.id, width: box.width, height: box.height, data: data.length};
                })""")
        finally:
            browser.close()
    assert len(rendered) == 9
    for fig in rendered:
        assert fig["width"] > 100 and fig["height"] > 100 and fig["data"] >= 1, fig
    assert problems == []


def test_empty_database_and_filters_that_match_nothing_give_a_page_saying_so(trials, tmp_path):
    empty = CLI.invoke(app, ["report", "--db", str(tmp_path / "empty.db"), "--out", str(tmp_path / "e")])
    assert empty.exit_code == 0, empty.output
    page = (tmp_path / "e" / "index.html").read_text()
    assert "Nothing to report" in page and "holds no runs" in page
    cases = [
        (["--workload", "cifar_resnet18"], "--workload: no selected run is of workload"),
        (["--submission", "momentum"], "no selected run is of submission"),
        (["--sweep", "lr-grid"], "--sweep: no sweep named or with id &#x27;lr-grid&#x27;"),
        (["--runs", "ffffffff"], "no run with id ffffffff"),
        (["--workload", "uv", "--submission", "adam"], "--submission: no selected run is of submission"),
    ]
    for args, reason in cases:
        out = tmp_path / "f"
        res = CLI.invoke(app, ["report", "--db", trials["db"], "--out", str(out), *args])
        assert res.exit_code == 0, res.output
        page = (out / "index.html").read_text()
        assert reason in page and "<figure" not in page, (args, page[:600])
        assert not list(out.glob("*.svg"))  # the earlier report's figures are gone
    # what the workload filter could have matched is named
    res = CLI.invoke(app, ["report", "--db", trials["db"], "--out", str(tmp_path / "g"),
                           "--workload", "nope"])
    assert "mnist_mlp, uv:width=8" in (tmp_path / "g" / "index.html").read_text()


def test_filters_select_runs(trials, tmp_path):
    db = open_database(trials["db"])
    one = trials["uv"][0]["run_id"]
    result = build_report(db, Filters(runs=(one[:8],)), tmp_path / "one")
    assert result.runs == 1 and result.empty_reason is None
    html = result.index.read_text()
    assert one in html and trials["adam"][0]["run_id"] not in html
    result = build_report(db, Filters(workload="mnist_mlp", submission="sgd"), tmp_path / "sgd")
    assert result.runs == 1
    db.add_sweep("sweep-1", "curvebench sweep ...", {}, name="grid")
    db.update_run(one, sweep_id="sweep-1")
    for key in ("grid", "sweep-1"):
        result = build_report(db, Filters(sweep=key), tmp_path / "sweep")
        assert result.runs == 1 and one in result.index.read_text()
    result = build_report(db, Filters(sweep="grid", submission="adam"), tmp_path / "sweep")
    assert result.runs == 0 and "--submission: no selected run is of submission 'adam'" in result.empty_reason
    bad = CLI.invoke(app, ["report", "--db", trials["db"], "--out", str(tmp_path / "x"),
                           "--density-steps", "ten"])
    assert bad.exit_code == 2 and "--density-steps takes comma-separated integers" in bad.output


def test_curvature_json_prints_array_values(trials):
    run_id = trials["uv"][0]["run_id"]
    res = CLI.invoke(app, ["curvature", run_id, "--db", trials["db"], "--json"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)["snapshots"]
    stored = open_database(trials["db"]).snapshots(run_id)
    assert len(printed) == len(stored) >= 1
    for p, s in zip(printed, stored):
        assert set(p["arrays"]) == set(s["arrays"]) >= {"ritz_values", "density", "density_grid"}
        for name, array in s["arrays"].items():
            values = p["arrays"][name]["values"]
            assert p["arrays"][name]["shape"] == list(array.shape)
            np.testing.assert_array_equal(np.array(values, dtype=array.dtype), array)
        assert all(isinstance(v, float) for v in p["arrays"]["ritz_values"]["values"])


def test_band_takes_each_curve_only_on_its_own_range():
    grid = np.array([0.0, 1.0, 2.0, 3.0])
    curves = [(np.array([0.0, 2.0]), np.array([0.0, 2.0])), (np.array([0.0, 3.0]), np.array([3.0, 6.0]))]
    mid, lo, hi = band(curves, grid)
    np.testing.assert_allclose(lo, [0, 1, 2, 6])
    np.testing.assert_allclose(hi, [3, 4, 5, 6])
    np.testing.assert_allclose(mid, [1.5, 2.5, 3.5, 6])


def test_profile_integrates_to_the_score():
    times = {"a": {"w1": 1.0, "w2": 3.0, "w3": math.inf}, "b": {"w1": 2.0, "w2": 1.0, "w3": 5.0}}
    variants = ["w1", "w2", "w3"]
    taus = np.linspace(1.0, scoring.TAU_MAX, 30001)
    rho = performance_profile(times, variants, taus)
    assert rho["a"][0] == pytest.approx(1 / 3) and rho["a"][-1] == pytest.approx(2 / 3)
    assert rho["b"][0] == pytest.approx(2 / 3) and rho["b"][-1] == pytest.approx(1.0)
    scores = scoring.performance_profile_scores(times, variants)
    for s in times:
        integral = np.trapezoid(rho[s], taus) / (scoring.TAU_MAX - 1)
        assert integral == pytest.approx(scores[s], abs=1e-3)


def test_density_steps_nearest_or_spread():
    assert choose_steps([0, 1, 10, 100, 1000], [12, 900]) == [10, 1000]
    assert choose_steps([0, 1, 10, 100, 1000, 2000, 3000], None, count=3) == [0, 100, 3000]
    assert choose_steps([5], None) == [5] and choose_steps([], [3]) == []


def test_missing_matplotlib_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ReportError, match="needs matplotlib: pip install matplotlib"):
        write_report(tmp_path, "t", [])


def test_decimate_keeps_every_bins_extremes_and_short_curves_whole():
    rng = np.random.default_rng(0)
    x = np.arange(10_000.0)
    y, lo = rng.normal(size=x.size), rng.normal(size=x.size) - 3
    y[1234], lo[8765] = 40.0, -90.0
    xs, ys, los = decimate(x, y, lo, points=400)
    assert xs.size <= 400 and np.all(np.diff(xs) > 0)
    assert (xs[0], xs[-1]) == (0.0, 9999.0) and 1234.0 in xs and 8765.0 in xs
    assert ys.max() == 40.0 and los.min() == -90.0
    np.testing.assert_array_equal(ys, y[xs.astype(int)])  # kept points are data points, not averages
    for i in range(0, 10_000, 500):  # every stretch of the curve keeps its own extremes
        inside = (xs >= i) & (xs < i + 500)
        assert ys[inside].max() >= np.sort(y[i:i + 500])[-30] and ys[inside].min() <= np.sort(y[i:i + 500])[30]
    short = decimate(x[:300], y[:300], points=400)
    np.testing.assert_array_equal(short[1], y[:300])


def test_forked_workers_write_the_same_figures_as_one_process(trials, report, tmp_path):
    """`curvebench report` (no JAX backend in its process) renders in forked workers; the
    files are byte for byte the serial page's. This pytest process has run JAX, so the
    `report` fixture's page was written serially; the forked one is written in a child."""
    import subprocess

    out = tmp_path / "forked"
    code = ("import sys; from harness.db import open_database; from harness.report import Filters, "
            "build_report; from harness.report.html import _jax_started; "
            f"build_report(open_database({trials['db']!r}), Filters(), {str(out)!r}, workers=2); "
            "sys.exit(3 if _jax_started() else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    serial = sorted(p.name for p in report.glob("*.svg"))
    assert serial == sorted(p.name for p in out.glob("*.svg")) and len(serial) == 9
    for name in serial:
        assert (out / name).read_bytes() == (report / name).read_bytes(), name
