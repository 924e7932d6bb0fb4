"""What a trial is and what it measured: the records the engine, the database layer and the
executors exchange (plain data, sendable to another process)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from harness.records.status import RunOrigin, RunStatus

CHUNK_MODES = ("auto", "scan", "unroll", "step")
RNG_DERIVATION = ("key = fold_in(PRNGKey(0), seed); init = fold_in(key, 0); "
                  "optimizer = fold_in(key, 1); step t: (data, update) = split(fold_in(fold_in(key, 2), t))")
HOST_PREFETCH = 8
#: host-mode chunks stack one host batch per step: cap their length so memory stays bounded.
HOST_CHUNK_STEPS = 32
#: a trial diverges when its training loss exceeds this multiple of its step-0 loss (the rule of
#: Kalra & Barkeshli, "Phase diagram of early training dynamics in deep neural networks", 2023)
DIVERGENCE_FACTOR = 1e5
#: default checkpoint cadence: every 10 minutes of wall time, so trials that finish in minutes
#: write none and an hours-long CIFAR or ogbg trial loses at most 10 minutes when killed
CHECKPOINT_EVERY_S = 600.0


@dataclasses.dataclass(frozen=True)
class TrialSpec:
    """One trial of a group that shares a compiled shape: its seed, its hyperparameter
    overrides (names the submission's hparams.json has; the rest keep the submission's values)
    and its values of the group workload's runtime knobs (`Workload.runtime_knobs`) where they
    differ from the group's variant: e.g. {"activation": "gelu"} in a group of mnist_mlp."""

    seed: int
    hparams: Mapping[str, Any]
    knobs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TrialOptions:
    """How trials run and how their rows are labelled; the same for every trial of a group.

    stop_at_target=False trains the whole budget and still records the first step that met the
    target. divergence_factor=None: only a non-finite loss counts as divergence.
    max_group_size: at most this many trials in one compiled program (None: no limit; 1: one
    trial after the other, still sharing the compiled program).
    batching: how a program computes its trials, "auto", "vmap" or "map"
    (harness.engine.trial_axis.Batching says what each does).
    checkpoint_every / checkpoint_every_s: write a checkpoint of a program's trials at the
    first return to the host after this many steps / seconds of wall time since the last one
    (None: not by that measure; both None: never); checkpoint_dir: where (None: beside a SQLite
    results database, else the user cache dir); keep_checkpoints: keep them (and the final
    state) when the trials finish. harness/checkpoint.py says what a checkpoint holds.
    share_variants: variants that differ only in runtime knobs (Workload.runtime_knobs) form
    one group, one compiled program (fewer compiles; but on CPU a trial that stopped still
    computes its training step, discarded, until the program's last trial stops).
    """

    max_steps: int | None = None
    eval_every: int | None = None
    chunk_mode: str = "auto"
    stop_at_target: bool = True
    divergence_factor: float | None = DIVERGENCE_FACTOR
    origin: RunOrigin = RunOrigin.RUN
    tag: str | None = None
    sweep_id: str | None = None
    max_group_size: int | None = None
    batching: str = "auto"
    checkpoint_every: int | None = None
    checkpoint_every_s: float | None = CHECKPOINT_EVERY_S
    checkpoint_dir: str | None = None
    keep_checkpoints: bool = False
    share_variants: bool = False


@dataclasses.dataclass
class TrialResult:
    """What a trial measured; the same numbers are in the database row of `run_id`.

    group_size: trials in the compiled program this one ran in (1: alone). Its train_s and
    time_to_target_s are then the group's wall time, not this trial's alone.
    vectorise_note: why this trial did not share a program with others of its group, if so.
    concrete_reason: why an AlgoPerf-format trial ran in concrete-step mode (chunk_mode
    "concrete": a Python int global_step per step), if it did.
    algoperf_time_to_target_s: AlgoPerf's time-to-target (training + its compilation +
    prepare_for_eval, not evals); for a trial in compiled chunks, time_to_target_s + compile_s.
    search_point: (k, seed) of the search-space point the hyperparameters came from, if so.
    ignored_hparams: hyperparameters the workload ignored as AlgoPerf's own does (a dropout
    rate on a model without dropout), {name: value}; None: none.
    resumed_from_step: the checkpoint step this trial's last resume continued from (None:
    never resumed); its train_s and time_to_target_s count the training steps up to the
    checkpoint (timed by the killed process) plus those after it, not work lost to the kill.
    """

    run_id: str
    workload: str
    submission: str
    seed: int
    status: RunStatus = RunStatus.RUNNING
    steps_to_target: int | None = None
    time_to_target_s: float | None = None
    compile_s: float = 0.0
    compiles: int = 0
    train_s: float = 0.0
    eval_s: float = 0.0
    final_step: int = 0
    chunk_mode: str = ""
    error: str | None = None
    group_size: int = 1
    vectorise_note: str | None = None
    concrete_reason: str | None = None
    algoperf_time_to_target_s: float | None = None
    search_point: tuple[int, int] | None = None
    ignored_hparams: dict[str, Any] | None = None
    resumed_from_step: int | None = None
    #: whether this trial's programs came from JAX's persistent compilation cache (None: no
    #: cache configured, or not known)
    compile_cache_hit: bool | None = None
    hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
    evals: list[tuple[int, dict[str, float]]] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["evals"] = [{"step": s, **m} for s, m in self.evals]
        return d
