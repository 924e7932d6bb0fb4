"""The catapult analysis's judging half (Kalra & Barkeshli, 2023): one run's phase from its
training losses (Definition 1), the critical constants c_loss and c_max per model and seed,
and the verdict on each claim (`harness.analyses.catapult`'s docstring lists them). Pure
functions of the runs' numbers: the same for the analysis's own grid and for any sweep's runs."""

from __future__ import annotations

import dataclasses
import enum
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.analyses.verdict import Claim, Outcome

LOSS_RISE_DECIMALS = 2
#: workload families whose loss is a squared error: the paper's c thresholds are stated for
#: MSE (its App. F: cross-entropy is noisier, c_loss larger than 2)
MSE_FAMILIES = ("uv", "lowrank", "noisy_quadratic")


class Phase(str, enum.Enum):
    """How the loss of one run behaves in the early-training window."""

    MONOTONE = "monotone"
    CATAPULT = "catapult"
    DIVERGES = "diverges"


@dataclasses.dataclass(frozen=True)
class RunPhase:
    """One run's classification, with the numbers it rests on."""

    run_id: str
    model: str
    seed: int
    c: float
    learning_rate: float
    lambda0: float
    phase: Phase
    peak_ratio: float
    final_ratio: float
    final_sharpness: float | None
    final_sharpness_converged: bool

    @property
    def below_edge(self) -> bool | None:
        """Final sharpness < 2/η (None: not measured)."""
        if self.final_sharpness is None:
            return None
        return self.final_sharpness < 2.0 / self.learning_rate

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["phase"] = self.phase.value
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunPhase:
        return cls(**{**d, "phase": Phase(d["phase"])})


def family(model: str) -> str:
    return model.split(":", 1)[0]


def width(model: str) -> int:
    """The variant's width knob (the phase diagram's y axis)."""
    from workloads import get_workload

    return int(get_workload(model).variant["width"])


def classify(losses: np.ndarray, diverged: bool) -> tuple[Phase, float, float]:
    """Phase, max_t L_t/L_0 and L_T/L_0 of a run's per-step training losses (L_0 first)."""
    losses = np.asarray(losses, np.float64)
    if losses.size == 0:
        raise ValueError("a run without stored training losses cannot be classified")
    l0 = losses[0]
    ratios = losses / l0
    finite = np.isfinite(ratios)
    peak = float(np.max(ratios[finite])) if finite.any() else math.inf
    final = float(ratios[-1]) if finite[-1] else math.inf
    if diverged or not finite.all() or final >= 1.0:
        return Phase.DIVERGES, peak, final
    if round(peak, LOSS_RISE_DECIMALS) > 1.0:
        return Phase.CATAPULT, peak, final
    return Phase.MONOTONE, peak, final


def critical_constants(phases: Sequence[RunPhase]) -> dict[tuple[str, int], tuple[float | None, float | None]]:
    """(c_loss, c_max) per (model, seed): the smallest c whose loss rises, the largest c that
    does not diverge (None: not reached by the grid)."""
    by_key: dict[tuple[str, int], list[RunPhase]] = {}
    for p in phases:
        by_key.setdefault((p.model, p.seed), []).append(p)
    out = {}
    for key, runs in by_key.items():
        rising = [p.c for p in runs if p.phase != Phase.MONOTONE]
        trained = [p.c for p in runs if p.phase != Phase.DIVERGES]
        out[key] = (min(rising) if rising else None, max(trained) if trained else None)
    return out


def _grid_step(config_grid: Sequence[float]) -> float:
    grid = sorted(set(config_grid))
    return max(b - a for a, b in zip(grid, grid[1:])) if len(grid) > 1 else math.inf


def _grid_of(phases: Sequence[RunPhase], c_grid: Sequence[float] | None) -> tuple[float, float]:
    """(grid step, grid top): of `c_grid` when every model and seed ran it (the analysis's own
    grid); otherwise (a sweep's runs: each c = η λ_H^0 of its own seed) the coarsest step and the
    lowest top over the models and seeds."""
    if c_grid is not None:
        return _grid_step(c_grid), max(c_grid)
    per_key: dict[tuple[str, int], list[float]] = {}
    for p in phases:
        per_key.setdefault((p.model, p.seed), []).append(p.c)
    return (max(_grid_step(cs) for cs in per_key.values()),
            min(max(cs) for cs in per_key.values()))


def _fmt(values: Sequence[float | None]) -> str:
    return ", ".join("—" if v is None else f"{v:g}" for v in values)


def judge(phases: Sequence[RunPhase], c_grid: Sequence[float] | None = None) -> list[Claim]:
    """The verdict on each claim of harness.analyses.catapult's docstring; `c_grid`: the grid
    every model and seed ran (None: each its own c values, `_grid_of`)."""
    step, top = _grid_of(phases, c_grid)
    crit = critical_constants(phases)
    models = list(dict.fromkeys(p.model for p in phases))
    claims: list[Claim] = []

    uv = sorted((m for m in models if family(m) == "uv"), key=width)
    if not uv:
        for name, what in (("uv_c_loss_2", "the loss starts to catapult at c_loss ≈ 2"),
                           ("uv_c_max_4", "training converges up to c_max ≈ 4")):
            claims.append(Claim(name, f"at large width (uv) {what}", Outcome.UNDECIDABLE,
                                f"stated for the paper's uv model (MSE); the chosen models "
                                f"({', '.join(models)}) have none: add a wide uv variant"))
    if uv:
        widest = uv[-1]
        for name, index, target, what in (("uv_c_loss_2", 0, 2.0, "the loss starts to catapult at c_loss ≈ 2"),
                                          ("uv_c_max_4", 1, 4.0, "training converges up to c_max ≈ 4")):
            values = [v[index] for (m, _), v in crit.items() if m == widest]
            statement = f"at large width (uv, n={width(widest)}) {what}"
            if any(v is None for v in values):
                claims.append(Claim(name, statement, Outcome.UNDECIDABLE,
                                    f"the c grid does not reach it for every seed ({_fmt(values)}); "
                                    f"widen the grid"))
                continue
            off = max(abs(v - target) for v in values)
            outcome = Outcome.HOLDS if off <= step + 1e-9 else Outcome.FAILS
            claims.append(Claim(name, statement, outcome,
                                f"per seed {_fmt(values)} (grid step {step:g}; |c − {target:g}| ≤ "
                                f"{off:g})"))

    for fam in dict.fromkeys(family(m) for m in models):
        members = sorted((m for m in models if family(m) == fam), key=width)
        statement = f"{fam}: c_loss increases as the width decreases"
        if len(members) < 2:
            claims.append(Claim(f"c_loss_grows_small_width/{fam}", statement, Outcome.UNDECIDABLE,
                                "one width only; give two or more"))
            continue
        narrow, wide = ([crit[k][0] for k in crit if k[0] == m] for m in (members[0], members[-1]))
        label = f"width {width(members[0])}: {_fmt(narrow)}; width {width(members[-1])}: {_fmt(wide)}"
        if None in wide:
            claims.append(Claim(f"c_loss_grows_small_width/{fam}", statement, Outcome.UNDECIDABLE,
                                f"c_loss not reached by the grid at the widest width ({label}); "
                                f"extend the c grid"))
            continue
        if None in narrow:  # the narrow width's loss never rose: its c_loss is above the grid
            outcome = Outcome.HOLDS if all(v is None for v in narrow) and max(wide) < top else Outcome.UNDECIDABLE
            claims.append(Claim(f"c_loss_grows_small_width/{fam}", statement, outcome,
                                f"{label}; — means c_loss > {top:g}, the grid's top"))
            continue
        gap = statistics.mean(narrow) - statistics.mean(wide)
        spread = max(max(narrow) - min(narrow), max(wide) - min(wide))
        if gap > max(step, spread) + 1e-9:
            outcome, why = Outcome.HOLDS, "mean gap above the grid step and the seeds' spread"
        elif gap < -max(step, spread) - 1e-9:
            outcome, why = Outcome.FAILS, "c_loss is larger at the larger width"
        else:
            outcome = Outcome.UNDECIDABLE
            why = (f"gap {gap:g} within the grid step {step:g} / seeds' spread {spread:g}: "
                   f"too coarse a c grid or too few seeds")
        claims.append(Claim(f"c_loss_grows_small_width/{fam}", statement, outcome,
                            f"{label}; {why}"))

    other = sorted({m for m, _ in crit if family(m) not in MSE_FAMILIES})
    crit_mse = {k: v for k, v in crit.items() if family(k[0]) in MSE_FAMILIES}
    missing = [f"{m} seed {s}" for (m, s), (cl, cm) in crit_mse.items() if cl is None or cm is None]
    bad = [f"{m} seed {s}: c_loss {cl:g}, c_max {cm:g}" for (m, s), (cl, cm) in crit_mse.items()
           if cl is not None and cm is not None and not (2.0 - 1e-9 <= cl <= cm + step + 1e-9)]
    # monotone at c_max, divergent at the next c: c_loss and c_max lie in one grid step between
    # them, in either order, so the grid cannot tell
    coarse = [f"{m} seed {s}: c_loss {cl:g} > c_max {cm:g}, one grid step apart"
              for (m, s), (cl, cm) in crit_mse.items()
              if cl is not None and cm is not None and 2.0 - 1e-9 <= cl and cm + 1e-9 < cl <= cm + step + 1e-9]
    statement = "2 ≤ c_loss ≤ c_max for every model and seed (MSE losses)"
    not_mse = (f"; not judged: {', '.join(other)} (not a squared-error loss: the thresholds are "
               f"stated for MSE)" if other else "")
    if not crit_mse:
        claims.append(Claim("c_order", statement, Outcome.UNDECIDABLE,
                            f"the c thresholds are stated for MSE losses; no chosen model has one"
                            f"{not_mse}"))
    elif bad:
        claims.append(Claim("c_order", statement, Outcome.FAILS, "; ".join(bad) + not_mse))
    elif missing:
        claims.append(Claim("c_order", statement, Outcome.UNDECIDABLE,
                            f"the c grid does not reach c_loss or c_max for {', '.join(missing)}"
                            f"{not_mse}"))
    elif coarse:
        claims.append(Claim("c_order", statement, Outcome.UNDECIDABLE,
                            f"{'; '.join(coarse)} (no catapult between them: a finer c grid "
                            f"decides){not_mse}"))
    else:
        claims.append(Claim("c_order", statement, Outcome.HOLDS,
                            f"{len(crit_mse)} model × seed pairs, all in order{not_mse}"))

    cats = [p for p in phases if p.phase == Phase.CATAPULT]
    statement = "a catapulting run ends with sharpness below 2/η"
    above = [p for p in cats if p.below_edge is False and p.final_sharpness_converged]
    unsure = [p for p in cats if p.below_edge is None or not p.final_sharpness_converged]
    if not cats:
        claims.append(Claim("catapult_flattens", statement, Outcome.UNDECIDABLE,
                            "no run catapulted; extend the c grid above 2"))
    elif above:
        claims.append(Claim("catapult_flattens", statement, Outcome.FAILS,
                            "; ".join(f"{p.model} seed {p.seed} c={p.c:g}: λ_max {p.final_sharpness:.4g}"
                                      f" ≥ 2/η = {2 / p.learning_rate:.4g}" for p in above)))
    elif unsure:
        claims.append(Claim("catapult_flattens", statement, Outcome.UNDECIDABLE,
                            f"{len(unsure)} of {len(cats)} final sharpness estimates missing or not "
                            f"converged; raise lanczos_order"))
    else:
        ratio = max(p.final_sharpness * p.learning_rate / 2 for p in cats)
        claims.append(Claim("catapult_flattens", statement, Outcome.HOLDS,
                            f"{len(cats)} catapult runs, largest η λ_max/2 at the end {ratio:.3g}"))
    return claims


