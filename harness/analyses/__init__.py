"""Analyses: commands that run a small grid through the sweep engine and judge a paper's claims.

Each analysis module exposes `NAME`, a config dataclass with a default that runs on 2 CPU
cores in minutes and a `TINY` one for tests, `configure(config, setting)` (the user's
workload grid, submission, fixed hparams, seeds, steps and curvature options in place of the
config's: harness.analyses.settings; an option it sets itself is a user error),
`from_runs(db, sweep_id, runs, config=None)` (stored runs -> the measured numbers -> a verdict per
claim; a claim the runs cannot test is UNDECIDABLE, saying why; what the runs lack to be
measured at all, e.g. curvature snapshots, is a ValueError saying which sweep options record
it), `run(config, db_url, ...)` (trains its grid through the sweep engine, then `from_runs` on
that sweep's runs, and stores the verdicts in the sweep's spec: harness.analyses.store), a
result record with `to_json`/`from_json` (claims, measured numbers, run ids: `analyze
--json`), and `section(result, db)` (its report section and figures).

One mechanism, two selections: an analysis's own grid (`curvebench analyze NAME`), or the
runs of any stored sweep (`curvebench analyze NAME --sweep S`: `analyze_sweep`, no training),
e.g. a `curvebench sweep` made with the grid and curvature options the analysis needs. Either
way the verdicts are stored on the sweep, and `curvebench report --sweep S` draws the
analysis's figures from them. Judging a stored sweep trains nothing: 1.3-2.3 s wall per analysis
on toy sweeps of 4-10 runs (`analyze NAME --sweep S --json`, load average 7 on 2 cores).
Implemented: `catapult` (Kalra & Barkeshli, 2023), `ablation`
(Young, Snider & Feng, Tab. 2–3), `break-even` (Jastrzębski et al., 2020), `quadratic`
(Ciuca, 2020: the noisy quadratic's equilibrium and the top Hessian subspace's rotation).
"""

from __future__ import annotations

from harness.analyses.verdict import Claim, Outcome

import importlib
from types import ModuleType
from typing import Any

#: analysis name -> its module
ANALYSES = {"catapult": "harness.analyses.catapult", "ablation": "harness.analyses.ablation",
            "break-even": "harness.analyses.break_even", "quadratic": "harness.analyses.quadratic"}

__all__ = ["ANALYSES", "Claim", "Outcome", "analysis_module", "analyze_sweep", "sections_for_selection",
           "sections_for_sweep", "stored_sections"]


def analysis_module(name: str) -> ModuleType:
    """The module of analysis `name`; ValueError naming the valid ones otherwise."""
    if name not in ANALYSES:
        raise ValueError(f"unknown analysis {name!r}; valid: {', '.join(ANALYSES)}")
    return importlib.import_module(ANALYSES[name])


def analyze_sweep(db, name: str, sweep: str) -> tuple[Any, list[str]]:
    """Judge the stored runs of `sweep` (name or id) with analysis `name`, trains nothing, and
    store the verdicts on that sweep; the analysis's result record and the runs left out, one
    line each. The runs are those `report --sweep` shows: one workload version per variant (the
    newest; runs of older versions are left out and named), finished or not (each analysis
    keeps those it can measure). ValueError when the sweep is unknown or empty, or its runs
    lack what the analysis measures (saying which sweep options record it)."""
    from harness.analyses.store import store_result
    from harness.report.data import Filters, select_runs

    module = analysis_module(name)
    selection = select_runs(db, Filters(sweep=sweep))
    if not selection.runs:
        raise ValueError(f"analyze {name} --sweep: {selection.empty_reason}")
    sweep_id = selection.runs[0].sweep_id
    result = module.from_runs(db, sweep_id, selection.runs)
    store_result(db, sweep_id, result.to_json())
    return result, [f"not judged: {line.split('; show them')[0]}" for line in selection.left_out]


def stored_sections(db, sweep_id: str) -> list:
    """The report sections of every analysis that judged a sweep, rebuilt from the database
    ([]: none did)."""
    from harness.analyses.store import stored_results

    sections = []
    for name, doc in stored_results(db, sweep_id).items():
        if name in ANALYSES:
            module = analysis_module(name)
            sections.append(module.section(module.result_from_json(sweep_id, doc), db))
    return sections


def sections_for_selection(db, filters) -> list:
    """Report sections of the analyses that judged the sweeps of the runs a report selects
    (`harness.report.Filters`), in the order the runs were made: where an analysis exists for
    runs on the page, its figures are on the page too."""
    from harness.report.data import select_runs

    sweeps = dict.fromkeys(r.sweep_id for r in select_runs(db, filters).runs if r.sweep_id)
    return [sec for i in sweeps for sec in stored_sections(db, i)]


def sections_for_sweep(db, name_or_id: str) -> list:
    """Report sections of the analyses that judged the sweep this name or id (prefix) resolves
    to, by the one rule every command uses (harness.score.resolve_sweep: a name means its
    newest sweep); [] when no analysis judged it, SelectionError for an unknown sweep."""
    from harness.score import resolve_sweep

    return stored_sections(db, resolve_sweep(db, name_or_id))
