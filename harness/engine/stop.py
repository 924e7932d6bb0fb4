"""The one stop rule every driver applies, on the device (jnp) or on the host (numpy).

A trial stops at its first eval that meets the target (unless stop_at_target is off), at a
non-finite eval metric, at a non-finite training loss or one above divergence_factor x its
step-0 loss (the rule of Kalra & Barkeshli, "Phase diagram of early training dynamics in
deep neural networks", 2023), or at the budget. The functions take the array module `xp`
(jax.numpy inside compiled loops, numpy on the host) so both compute the same decisions.
"""

from __future__ import annotations

import enum
from typing import Any

from harness.records.status import RunStatus


class Stop(enum.IntEnum):
    """Why a trial stopped (the code a program's carry holds per trial)."""

    RUNNING = 0
    REACHED = 1
    LOSS_DIVERGED = 2
    EVAL_NOT_FINITE = 3


def loss_diverged(loss: Any, loss0: Any, factor: float | None, xp: Any) -> Any:
    """Per trial (or per step): the loss is not finite, or above factor x the step-0 loss."""
    bad = ~xp.isfinite(loss)
    if factor is not None:
        bad = bad | (xp.isfinite(loss0) & (loss > factor * loss0))
    return bad


def after_eval(active: Any, met: Any, finite: Any, stop: Any, reached_step: Any, step: Any,
               stop_at_target: bool, xp: Any) -> tuple[Any, Any, Any]:
    """The decision after an eval at `step` of the trials still `active`: `met` (the target
    metric met), `finite` (every metric finite). Returns (active, stop, reached_step): the
    first step that met the target is recorded; non-finite metrics stop a trial
    (EVAL_NOT_FINITE); meeting the target stops it when stop_at_target."""
    met = met & active & finite
    reached_step = xp.where(met & (reached_step < 0), step, reached_step)
    not_finite = active & ~finite
    stop = xp.where(not_finite, int(Stop.EVAL_NOT_FINITE), stop)
    active = active & ~not_finite
    if stop_at_target:
        stop = xp.where(met & active, int(Stop.REACHED), stop)
        active = active & ~met
    return active, stop, reached_step


def status(code: int, steps_to_target: int | None) -> RunStatus:
    """A trial's final status from its stop code (RUNNING: it ran to its budget)."""
    if code == Stop.REACHED:
        return RunStatus.REACHED
    if code in (Stop.LOSS_DIVERGED, Stop.EVAL_NOT_FINITE):
        return RunStatus.DIVERGED
    return RunStatus.NOT_REACHED if steps_to_target is None else RunStatus.REACHED


def stop_error(code: int, step: int, loss: float, loss0: float, factor: float | None,
               metrics: dict[str, float] | None = None) -> str | None:
    """The one-line reason of a divergence stop, for the run row; None for other stops."""
    if code == Stop.EVAL_NOT_FINITE:
        return f"eval metrics not finite at step {step}: {metrics}"
    if code != Stop.LOSS_DIVERGED:
        return None
    if loss != loss or loss in (float("inf"), float("-inf")):
        return f"loss became {loss:.4g} at step {step}"
    return f"loss exceeded {factor:g} x the step-0 loss {loss0:.4g}: {loss:.4g} at step {step}"
