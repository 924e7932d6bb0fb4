"""What a group's programs share while they run: the group context, and a piece (trials run
as one compiled program, or one by one in concrete-step mode)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness.engine.program import Program
from harness.engine.trial_axis import Batching, Options
from harness.records.trial import TrialOptions, TrialSpec
from harness.spec import Dataset, Workload
from harness.submissions import Submission

if TYPE_CHECKING:
    from harness import checkpoint
    from harness.db import Database


@dataclasses.dataclass
class Piece:
    """Trials (indices into the group) run as one compiled program."""

    program: Program
    indices: list[int]
    note: str | None = None
    #: why these (AlgoPerf-format) trials run in concrete-step mode; None: compiled chunks
    concrete: str | None = None


@dataclasses.dataclass
class GroupContext:
    """What every piece of a group shares."""

    workload: Workload
    submission: Submission
    dataset: Dataset
    trials: Sequence[TrialSpec]
    hparams: list[dict[str, Any]]
    #: each trial's workload variant (the group's, with the trial's runtime knobs)
    workloads: list[Workload]
    options: TrialOptions
    resolved: Options
    mode: str
    batch_size: int
    batching: Batching
    train_data: Any
    eval_batches: list[Any]
    eval_stacked: Any
    db: Database | None
    snapshot_steps: list[int]
    on_snapshot: Callable[[str, int, Any, Any], None] | None
    on_eval: Callable[[int, int, dict[str, float]], None] | None
    checkpointing: checkpoint.Checkpointing | None = None
    #: environment.fingerprint(), taken once per group (it runs git) for every trial's row
    env: dict[str, Any] | None = None
