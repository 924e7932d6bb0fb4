"""Run a sweep's groups as Ray tasks, on this machine or on a Ray cluster (`pip install -e ".[ray]"`).

Each `TrialGroup` becomes one Ray task calling `execute_group` on a worker, which writes its
trials' rows straight to the shared results database. Plain tasks, not Ray Tune: the group is
already the scheduling unit (trials sharing one compiled program), and the runner already does
what Tune's trial model adds — stop rules, per-eval reporting, results in a database — so Tune
would duplicate it and store a second copy of every result. Tasks need only Ray core.

Resources per task are `num_cpus` / `num_gpus` (a GPU task gets its devices through Ray's
CUDA_VISIBLE_DEVICES). `address=None` (and no $RAY_ADDRESS) starts a local Ray instance, or uses
the cluster this process already joined with `ray.init` (then its nodes must all reach a SQLite
file, if that is the database); "auto" or "HOST:PORT" / "ray://HOST:10001" joins a cluster, whose
workers may be other hosts, so the results database must then be a server (PostgreSQL), never a
SQLite file. Worker nodes need curvebench importable (`pip install -e .` in the same checkout
path on every node, or `runtime_env={"working_dir": ...}`) and the submissions' folders at the
same absolute paths.

Faults: Ray's own task retries are off (they would re-run a whole group, duplicating finished
trials); a task whose worker or node died is resubmitted by `run_with_retries` with only its
unfinished trials, up to `max_retries` times (default `DEFAULT_MAX_RETRIES`), after its runs left
`running` are marked interrupted. An exception in the trial code is not retried: it is raised.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from harness.executors.faults import DEFAULT_MAX_RETRIES, ExecutorError, Lost, run_with_retries
from harness.executors.portable import absolute_groups, shared_db_url
from harness.engine.execute import execute_group
from harness.records.sweep import GroupEvents, TrialGroup
from harness.records.trial import TrialResult


def _ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError("the Ray executor needs Ray: pip install -e '.[ray]'") from None
    return ray


def _run_group(group: TrialGroup, db_url: str | None) -> list[TrialResult]:
    """The Ray task: one group on one worker."""
    return execute_group(group, db_url)


class RayExecutor:
    """Every group as a Ray task with `num_cpus` CPUs and `num_gpus` GPUs, on the cluster at
    `address` (None: this machine)."""

    def __init__(self, address: str | None = None, *, num_cpus: float = 1, num_gpus: float = 0,
                 max_retries: int = DEFAULT_MAX_RETRIES,
                 runtime_env: Mapping[str, Any] | None = None,
                 init_kwargs: Mapping[str, Any] | None = None):
        if num_cpus < 0 or num_gpus < 0:
            raise ExecutorError(f"num_cpus ({num_cpus}) and num_gpus ({num_gpus}) must be >= 0")
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus
        self.max_retries = max_retries
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.init_kwargs = dict(init_kwargs or {})

    def run(self, groups: Sequence[TrialGroup], db_url: str | None, *,
            events: GroupEvents | None = None) -> list[list[TrialResult]]:
        address = self.address or os.environ.get("RAY_ADDRESS") or None  # ray.init reads RAY_ADDRESS
        where = f"the Ray cluster at {address}" if address else "Ray"
        db_url = shared_db_url(db_url, remote=address is not None, where=where)
        ray = _ray()
        started = not ray.is_initialized()
        if started:
            try:
                local = {} if address else {"include_dashboard": False}
                ray.init(address=self.address, runtime_env=self.runtime_env,
                         **local, **self.init_kwargs)
            except ConnectionError as e:
                raise ExecutorError(f"cannot reach a Ray cluster at {self.address}: {e}; start one "
                                    "with `ray start --head` (README, Sweeps on a cluster)") from None
        try:
            return run_with_retries(_RayBackend(self, ray), absolute_groups(groups), db_url,
                                    max_retries=self.max_retries, events=events)
        finally:
            if started:
                ray.shutdown()


class _RayBackend:
    def __init__(self, executor: RayExecutor, ray: Any):
        self.ray = ray
        self.task = ray.remote(_run_group).options(
            num_cpus=executor.num_cpus, num_gpus=executor.num_gpus, max_retries=0,
            retry_exceptions=False)

    def submit(self, groups: Sequence[TrialGroup], db_url: str | None) -> list[Hashable]:
        return [self.task.remote(g, db_url) for g in groups]

    def wait_one(self, handles: Sequence[Hashable]) -> tuple[Hashable, list[TrialResult] | Lost]:
        [ref], _ = self.ray.wait(list(handles), num_returns=1)
        exceptions = self.ray.exceptions
        try:
            return ref, self.ray.get(ref)
        except exceptions.RayTaskError:
            raise  # the trial code raised: an instance of its own exception type too
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError, exceptions.ObjectLostError,
                exceptions.OwnerDiedError, exceptions.RaySystemError,
                exceptions.LocalRayletDiedError, exceptions.OutOfMemoryError) as e:
            return ref, Lost(_one_line(e))

    def cancel(self, handles: Sequence[Hashable]) -> None:
        for ref in handles:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort: the task may be gone already
                pass


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"
