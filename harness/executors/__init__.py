"""Executors that run a sweep's groups beyond this process, into one shared results database:
`harness.executors.ray.RayExecutor` (a Ray cluster) and
`harness.executors.submitit.SubmititExecutor` (Slurm job arrays). Both are optional extras and
are imported from their modules; what they share (trial identity, finished and pending trials,
marking lost runs interrupted: `harness.sweep_state`; retries that never redo a finished
trial: `faults`).
"""

import dataclasses
import enum

from harness.executors.faults import DEFAULT_MAX_RETRIES, ExecutorError, Lost, run_with_retries
from harness.sweep_state import (FINISHED, TrialKey, finished_trials, mark_lost, pending_requests,
                                 request_key, run_key, trial_key)

__all__ = ["ExecutorKind", "ExecutorSettings", "make_executor", "DEFAULT_MAX_RETRIES", "FINISHED", "ExecutorError", "Lost", "TrialKey", "finished_trials",
           "mark_lost", "pending_requests", "request_key", "run_key", "run_with_retries", "trial_key"]


class ExecutorKind(str, enum.Enum):
    """Where a sweep's groups run."""

    LOCAL = "local"
    RAY = "ray"
    SUBMITIT = "submitit"


@dataclasses.dataclass(frozen=True)
class ExecutorSettings:
    """The command line's executor options, as one record (`make_executor` builds from it).

    address: the Ray cluster (None: this machine). cpus/gpus: per group (a Ray task, a Slurm
    task). partition/time_limit_min/folder: Slurm's partition, the job's time limit and where
    submitit keeps logs and pickles. max_retries: resubmissions of a lost group."""

    kind: ExecutorKind = ExecutorKind.LOCAL
    address: str | None = None
    cpus: float = 1
    gpus: float = 0
    partition: str | None = None
    time_limit_min: int = 60
    folder: str = "submitit_logs"
    max_retries: int = DEFAULT_MAX_RETRIES


def make_executor(settings: ExecutorSettings):
    """The executor the settings name (the local one runs groups in this process, one after the
    other). Ray and submitit are imported only when asked for."""
    if settings.kind == ExecutorKind.LOCAL:
        if settings.address is not None:
            raise ExecutorError("--address needs --executor ray")
        from harness.engine.execute import LocalExecutor

        return LocalExecutor()
    if settings.kind == ExecutorKind.RAY:
        from harness.executors.ray import RayExecutor

        return RayExecutor(settings.address, num_cpus=settings.cpus, num_gpus=settings.gpus,
                           max_retries=settings.max_retries)
    from harness.executors.submitit import SubmititExecutor

    if settings.address is not None:
        raise ExecutorError("--address is Ray's; Slurm takes --partition")
    return SubmititExecutor(settings.folder, partition=settings.partition,
                            timeout_min=settings.time_limit_min, gpus_per_node=int(settings.gpus),
                            cpus_per_task=max(1, int(settings.cpus)),
                            max_retries=settings.max_retries)
