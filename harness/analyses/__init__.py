"""Analyses: commands that run a small grid through the sweep engine and judge a paper's claims.

Each analysis module exposes `NAME`, a config dataclass with a default that runs on 2 CPU
cores in minutes and a `TINY` one for tests, `configure(config, setting)` (the user's
workload grid, submission, fixed hparams, seeds, steps and curvature options in place of the
config's: harness.analyses.settings; an option it sets itself is a user error),
`run(config, db_url, ...)` (trains, judges — a claim the setting cannot test is UNDECIDABLE,
saying why — and stores the verdicts in its sweep's spec: harness.analyses.store), a result
record with `to_json`/`from_json` (claims, measured numbers, run ids: `analyze --json`), and
`section(result, db)` (its report section). Implemented:
`catapult` (Kalra & Barkeshli, 2023), `ablation` (Young, Snider & Feng, Tab. 2–3).
"""

from __future__ import annotations

from harness.analyses.verdict import Claim, Outcome

import importlib
from types import ModuleType

#: analysis name -> its module
ANALYSES = {"catapult": "harness.analyses.catapult", "ablation": "harness.analyses.ablation",
            "break-even": "harness.analyses.break_even", "quadratic": "harness.analyses.quadratic"}

__all__ = ["ANALYSES", "Claim", "Outcome", "analysis_module", "sections_for_sweep", "stored_section"]


def analysis_module(name: str) -> ModuleType:
    """The module of analysis `name`; ValueError naming the valid ones otherwise."""
    if name not in ANALYSES:
        raise ValueError(f"unknown analysis {name!r}; valid: {', '.join(ANALYSES)}")
    return importlib.import_module(ANALYSES[name])


def stored_section(db, sweep_id: str):
    """The report section of an analysis sweep, rebuilt from the database (None: the sweep
    is not an analysis, or its verdicts were not stored)."""
    from harness.analyses.store import stored_result

    doc = stored_result(db, sweep_id)
    if doc is None or doc.get("name") not in ANALYSES:
        return None
    module = analysis_module(doc["name"])
    return module.section(module.result_from_json(sweep_id, doc), db)


def sections_for_sweep(db, name_or_id: str) -> list:
    """Report sections of the analysis sweeps with this name or id (prefix); [] for none."""
    from sqlalchemy import or_, select

    from harness.db import Sweep

    with db.session() as s:
        ids = list(s.scalars(select(Sweep.id).where(or_(Sweep.name == name_or_id,
                                                        Sweep.id.startswith(name_or_id, autoescape=True)))
                             .order_by(Sweep.created_at)))
    return [sec for sec in (stored_section(db, i) for i in ids) if sec is not None]
