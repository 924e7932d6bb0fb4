"""analyze catapult (Kalra & Barkeshli, 2023): the run classifier and the claims' judge on
hand-made runs, and the tiny configuration end to end reaching its documented verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analyses import Outcome, sections_for_sweep
from harness.analyses import catapult as C
from harness.analyses.store import stored_result


@pytest.mark.parametrize("losses, diverged, phase", [
    ([1.0, 0.6, 0.3, 0.1], False, C.Phase.MONOTONE),
    ([1.0, 1.004, 0.5, 0.1], False, C.Phase.MONOTONE),   # a rise below the paper's rounding
    ([1.0, 3.0, 8.0, 0.5, 0.01], False, C.Phase.CATAPULT),
    ([1.0, 3.0, 8.0, 50.0, 200.0], False, C.Phase.DIVERGES),  # never came back below L_0
    ([1.0, 3.0, math.nan], False, C.Phase.DIVERGES),
    ([1.0, 0.5, 0.2], True, C.Phase.DIVERGES),
])
def test_classify_follows_definition_1(losses, diverged, phase):
    assert C.classify(np.array(losses), diverged)[0] == phase


def _phase(model, seed, c, phase, sharp=0.5, lr=1.0, converged=True):
    return C.RunPhase(f"{model}-{seed}-{c}", model, seed, c, lr, c / lr, phase, 1.0, 0.1,
                      sharp, converged)


def _grid(model, seed, c_loss, c_max, grid):
    return [_phase(model, seed, c, C.Phase.MONOTONE if c < c_loss else
                   C.Phase.CATAPULT if c <= c_max else C.Phase.DIVERGES) for c in grid]


GRID = (1.0, 2.0, 2.5, 3.0, 4.0, 5.0)


def test_critical_constants_and_verdicts_on_hand_made_runs():
    phases = (_grid("uv:width=512", 0, 2.0, 4.0, GRID) + _grid("uv:width=4", 0, 4.0, 4.0, GRID))
    assert C.critical_constants(phases)[("uv:width=4", 0)] == (4.0, 4.0)
    verdicts = {c.name: c.outcome for c in C.judge(phases, GRID)}
    assert verdicts == {"uv_c_loss_2": Outcome.HOLDS, "uv_c_max_4": Outcome.HOLDS,
                        "c_loss_grows_small_width/uv": Outcome.HOLDS, "c_order": Outcome.HOLDS,
                        "catapult_flattens": Outcome.HOLDS}
    # the same widths with c_loss one grid step apart and a 1.0 step: too coarse to say
    close = _grid("uv:width=512", 0, 2.0, 4.0, GRID) + _grid("uv:width=4", 0, 2.5, 4.0, GRID)
    assert {c.name: c.outcome for c in C.judge(close, GRID)}["c_loss_grows_small_width/uv"] \
        == Outcome.UNDECIDABLE
    # a catapult ending above 2/η fails the last claim; an unconverged estimate cannot decide it
    sharp = phases + [_phase("uv:width=4", 1, 2.5, C.Phase.CATAPULT, sharp=3.0)]
    assert {c.name: c.outcome for c in C.judge(sharp, GRID)}["catapult_flattens"] == Outcome.FAILS
    unsure = phases + [_phase("uv:width=4", 1, 2.5, C.Phase.CATAPULT, converged=False)]
    assert {c.name: c.outcome for c in C.judge(unsure, GRID)}["catapult_flattens"] \
        == Outcome.UNDECIDABLE


def test_tiny_configuration_reaches_its_documented_verdicts(db, tmp_path):
    from harness.db import RunOrigin
    from harness.report import write_report

    result = C.run(C.TINY, db.url)
    verdicts = {c.name: c.outcome for c in result.claims}
    assert verdicts == {"uv_c_loss_2": Outcome.HOLDS, "uv_c_max_4": Outcome.HOLDS,
                        "c_loss_grows_small_width/uv": Outcome.HOLDS,
                        "c_order": Outcome.UNDECIDABLE, "catapult_flattens": Outcome.HOLDS}
    runs = db.runs(workload="uv")
    assert len(runs) == len(C.TINY.models) * len(C.TINY.c_grid) * len(C.TINY.seeds)
    assert {(r.origin, r.tag, r.sweep_id) for r in runs} == {(RunOrigin.ANALYSIS, C.TAG, result.sweep_id)}
    stored = C.CatapultResult.from_json(result.sweep_id, stored_result(db, result.sweep_id))
    assert stored.claims == result.claims and stored.phases == result.phases
    sections = sections_for_sweep(db, result.sweep_id[:8])
    assert len(sections) == 1 and len(sections[0].figures) == 2
    index = write_report(tmp_path / "report", "catapult", sections)
    assert index.read_text().count("<svg") >= 2
