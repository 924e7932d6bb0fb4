"""Run a sweep's groups as a Slurm job array through submitit (`pip install -e ".[submitit]"`).

All groups go out as one job array (`executor.map_array`), one array task per group calling
`execute_group`, which writes its trials to the shared results database; the job's resources
(`partition`, `timeout_min`, `gpus_per_node`, `cpus_per_task`, `mem_gb`, the array's
parallelism, any other `slurm_*` parameter) go through submitit's `update_parameters`.
`cluster=None` lets submitit pick Slurm where `sbatch` exists; "local" runs the jobs as local
processes (what the tests use), "debug" in this process.

Faults: a job that ended without a result (killed, node failure, time limit, preemption:
submitit's UncompletedJobError) leaves its trials' runs to be marked interrupted and the group
is resubmitted with only its unfinished trials, up to `max_retries` times; a job whose trial
code raised (FailedJobError) stops the sweep with that error. Slurm jobs may run on any node,
so a SQLite results database is refused unless `cluster="local"` or "debug".
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.executors.faults import DEFAULT_MAX_RETRIES, ExecutorError, Lost, run_with_retries
from harness.executors.portable import absolute_groups, shared_db_url
from harness.engine.execute import execute_group
from harness.records.sweep import GroupEvents, TrialGroup
from harness.records.trial import TrialResult

#: clusters whose jobs run on this host only, where a SQLite results file works
LOCAL_CLUSTERS = ("local", "debug")


def _submitit():
    try:
        import submitit
    except ImportError:
        raise ExecutorError("the submitit executor needs submitit: pip install -e '.[submitit]'") from None
    return submitit


class SubmititExecutor:
    """Every group as one task of a job array, logs and pickles under `folder`."""

    def __init__(self, folder: str | Path, *, cluster: str | None = None,
                 partition: str | None = None, timeout_min: int = 60,
                 gpus_per_node: int = 0, cpus_per_task: int = 1, mem_gb: float | None = None,
                 array_parallelism: int | None = None, max_retries: int = DEFAULT_MAX_RETRIES,
                 poll_s: float = 1.0, slurm_parameters: Mapping[str, Any] | None = None):
        self.folder, self.cluster = Path(folder), cluster
        self.parameters: dict[str, Any] = {"timeout_min": timeout_min, "gpus_per_node": gpus_per_node,
                                           "cpus_per_task": cpus_per_task}
        if mem_gb is not None:
            self.parameters["mem_gb"] = mem_gb
        if partition is not None:
            self.parameters["slurm_partition"] = partition
        if array_parallelism is not None:
            self.parameters["slurm_array_parallelism"] = array_parallelism
        self.parameters.update({k if k.startswith("slurm_") else f"slurm_{k}": v
                                for k, v in (slurm_parameters or {}).items()})
        self.max_retries, self.poll_s = max_retries, poll_s

    def _executor(self) -> Any:
        submitit = _submitit()
        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        try:
            executor.update_parameters(name="curvebench", **self.parameters)
        except (ValueError, NameError) as e:
            raise ExecutorError(f"submitit rejects the job parameters: {e}") from None
        return executor

    def run(self, groups: Sequence[TrialGroup], db_url: str | None, *,
            events: GroupEvents | None = None) -> list[list[TrialResult]]:
        db_url = shared_db_url(db_url, remote=self.cluster not in LOCAL_CLUSTERS,
                               where=f"submitit ({self.cluster or 'Slurm'})")
        backend = _SubmititBackend(self._executor(), _submitit(), self.poll_s)
        return run_with_retries(backend, absolute_groups(groups), db_url,
                                max_retries=self.max_retries, events=events)


class _SubmititBackend:
    def __init__(self, executor: Any, submitit: Any, poll_s: float):
        self.executor, self.submitit, self.poll_s = executor, submitit, poll_s

    def submit(self, groups: Sequence[TrialGroup], db_url: str | None) -> list[Hashable]:
        return list(self.executor.map_array(execute_group, list(groups), [db_url] * len(groups)))

    def wait_one(self, handles: Sequence[Hashable]) -> tuple[Hashable, list[TrialResult] | Lost]:
        while True:
            done = next((job for job in handles if job.done()), None)
            if done is not None:
                break
            time.sleep(self.poll_s)
        errors = self.submitit.core.utils
        try:
            return done, done.result()
        except errors.FailedJobError as e:  # a subclass of UncompletedJobError: first
            raise ExecutorError(f"job {done.job_id} failed: {_raised(e)} "
                                f"(log: {done.paths.stderr})") from None
        except errors.UncompletedJobError as e:
            return done, Lost(f"job {done.job_id} ended without a result ({_first_line(e)})")

    def cancel(self, handles: Sequence[Hashable]) -> None:
        for job in handles:
            try:
                job.cancel(check=False)
            except Exception:  # noqa: BLE001 - best effort: the job may be gone already
                pass


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _raised(e: BaseException) -> str:
    """The exception line of the trace a FailedJobError quotes between dashed lines."""
    parts = str(e).split("-" * 22)
    trace = parts[1] if len(parts) > 2 else str(e)
    lines = [line.strip() for line in trace.strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__
