"""Executing groups: everything a group needs loaded (submission, data, database, curvature
hooks, checkpointing, the compilation cache) and run through harness.runner.run_group, in any
process that can open the results database — so a group is all a remote worker needs — and
the local executor, which runs a sweep's groups in this process one after the other, planning
and compiling the next groups in a background thread while one trains (XLA compiles, and the
training loop runs, with the GIL released)."""

from __future__ import annotations

import dataclasses
import functools
import os
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import checkpoint, compile_cache, progress
from harness.db import open_database
from harness.progress import Phase
from harness.records.status import RunOrigin
from harness.records.sweep import CurvatureRequest, GroupEvents, TrialGroup
from harness.records.trial import TrialOptions, TrialResult, TrialSpec
from harness.runner import PlannedVariant, compile_ahead, plan_group, run_group
from harness.spec import Dataset, SpecError, Workload
from harness.submissions import load_submission
from workloads import get_workload

log = logging.getLogger(__name__)

#: how many groups the local executor plans and compiles ahead of the one it runs, where the
#: compiling does not share the cores that train (an accelerator trains; the host compiles)
AHEAD_GROUPS = 2
#: environment variable that sets it on any backend (e.g. 2 for a cold CPU sweep, whose
#: compiles then overlap, and slow, the training they run beside: train_s grows)
AHEAD_ENV = "CURVEBENCH_COMPILE_AHEAD"
#: ... only for groups whose training split is at most this large (each planned group holds
#: its own copy on the device until it runs)
AHEAD_MAX_BYTES = 256 << 20


def default_ahead() -> int:
    """Groups compiled ahead by default: $CURVEBENCH_COMPILE_AHEAD if set, else AHEAD_GROUPS on
    an accelerator and 0 on CPU, where a compile ahead takes the cores the running group trains
    on and inflates its measured training time."""
    value = os.environ.get(AHEAD_ENV, "").strip()
    if value:
        try:
            ahead = int(value)
        except ValueError:
            raise SpecError(f"${AHEAD_ENV}={value!r}: give the number of groups to compile "
                            "ahead (0: none)") from None
        if ahead < 0:
            raise SpecError(f"${AHEAD_ENV}={value!r} must be >= 0")
        return ahead
    import jax

    return 0 if jax.default_backend() == "cpu" else AHEAD_GROUPS


@functools.lru_cache(maxsize=8)
def database(url: str):
    """The results database at `url`, opened (and checked) once per process."""
    return open_database(url)


@functools.lru_cache(maxsize=4)
def _load_dataset(workload_spec: str, data_dir: str | None, data_source: str | None) -> Dataset:
    return get_workload(workload_spec).load_data(data_dir, data_source)


def load_dataset(workload: Workload, data_dir: str | None = None,
                 data_source: str | None = None) -> Dataset:
    """The workload variant's data, loaded once per process for consecutive groups."""
    return _load_dataset(workload.spec, data_dir, data_source)


def snapshot_config(request: CurvatureRequest):
    """The curvature request's settings as harness.curvature.SnapshotConfig (checked)."""
    from harness.curvature import SnapshotConfig

    fields = {f.name: f for f in dataclasses.fields(SnapshotConfig)}
    unknown = sorted(set(request.config) - set(fields))
    if unknown:
        raise SpecError(f"unknown curvature setting {', '.join(unknown)}; valid: "
                        f"{', '.join(fields)}")
    return SnapshotConfig(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in request.config.items()})


def _snapshot_steps(group: TrialGroup, workload: Workload) -> list[int]:
    if group.curvature is None:
        return []
    from harness.curvature import snapshot_steps

    return snapshot_steps(group.curvature.every, group.options.max_steps or workload.max_steps)


def _curvature_hooks(group: TrialGroup, workload: Workload, submission, dataset: Dataset,
                     db) -> dict[str, Any]:
    if group.curvature is None:
        return {}
    from harness.curvature import snapshot_callback

    hparams = {**submission.hparams, **group.trials[0].hparams}
    return {"snapshot_steps": _snapshot_steps(group, workload),
            "on_snapshot": snapshot_callback(
                workload, dataset, snapshot_config(group.curvature), db=db, hparams=hparams,
                batch_size=dataclasses.replace(submission, hparams=hparams).batch_size(
                    workload.name, workload.batch_size))}


def group_to_json(group: TrialGroup) -> dict[str, Any]:
    """A group as JSON-able plain data (`group_from_json` reads it back)."""
    d = dataclasses.asdict(group)
    d["options"]["origin"] = group.options.origin.value
    return json.loads(json.dumps(d, default=str))


def group_from_json(data: Mapping[str, Any]) -> TrialGroup:
    options = dict(data["options"])
    options["origin"] = RunOrigin(options["origin"])
    curvature = data.get("curvature")
    return TrialGroup(workload=data["workload"], submission=data["submission"],
                      trials=tuple(TrialSpec(seed=t["seed"], hparams=t["hparams"],
                                             knobs=t.get("knobs", {}))
                                   for t in data["trials"]),
                      options=TrialOptions(**options), data_dir=data.get("data_dir"),
                      data_source=data.get("data_source"),
                      curvature=None if curvature is None else CurvatureRequest(**curvature),
                      compile_cache=data.get("compile_cache"),
                      checked=bool(data.get("checked", False)))


def _checkpointing(group: TrialGroup, db_url: str | None, resume: str | None):
    """How the group's programs checkpoint (harness/checkpoint.py); None without a results
    database (nothing could find the checkpoint) or with checkpoints off and none kept."""
    o = group.options
    if db_url is None or (o.checkpoint_every is None and o.checkpoint_every_s is None
                          and not o.keep_checkpoints and resume is None):
        return None
    root = (Path(o.checkpoint_dir).expanduser() if o.checkpoint_dir
            else checkpoint.default_root(db_url))
    return checkpoint.Checkpointing(root=root, every_steps=o.checkpoint_every,
                                    every_s=o.checkpoint_every_s, keep=o.keep_checkpoints,
                                    group=group_to_json(group),
                                    resume=None if resume is None else Path(resume))


@dataclasses.dataclass
class Ahead:
    """A group planned, and its programs compiled, before it runs (`plan_ahead`), with the
    persistent-cache hits and misses of those compiles."""

    planned: list[PlannedVariant]
    counter: compile_cache.CacheCounter


def plan_ahead(group: TrialGroup) -> Ahead | None:
    """Plan `group` and compile its programs now, writing nothing (harness.runner.plan_group,
    compile_ahead): what the local executor does in a background thread for the next groups.
    None for a group whose training split is too large to hold a second copy of on the device
    (AHEAD_MAX_BYTES). The compilation cache must already be configured for the group."""
    workload = get_workload(group.workload)
    submission = load_submission(group.submission)
    dataset = load_dataset(workload, group.data_dir, group.data_source)
    train = dataset.splits.get("train", {})
    if sum(getattr(x, "nbytes", 0) for x in train.values()) > AHEAD_MAX_BYTES:
        return None
    with compile_cache.CacheCounter() as counter:
        planned = plan_group(workload, submission, dataset, group.trials, options=group.options,
                             snapshot_steps=_snapshot_steps(group, workload),
                             checked=group.checked)
        compile_ahead(planned)
    return Ahead(planned, counter)


def execute_group(group: TrialGroup, db_url: str | None, *,
                  on_eval: Callable[[int, int, dict[str, float]], None] | None = None,
                  resume: str | None = None, ahead: Ahead | None = None) -> list[TrialResult]:
    """Load what the group needs and run it, writing every trial's rows to `db_url`;
    on_eval(trial_index, step, metrics); phase changes go to the listener the caller
    installed (harness.progress.listening). Each result and run row says whether its programs
    came from the persistent compilation cache (compile_cache_hit). `resume`: the checkpoint
    folder the group's trials (those of one compiled program) continue from. `ahead`: the
    group as `plan_ahead` planned and compiled it (not with `resume`)."""
    cache_dir = compile_cache.configure(group.compile_cache)
    workload = get_workload(group.workload)
    submission = load_submission(group.submission)
    progress.emit(Phase.LOADING_DATA, range(len(group.trials)))
    dataset = load_dataset(workload, group.data_dir, group.data_source)
    db = database(db_url) if db_url is not None else None
    hooks = _curvature_hooks(group, workload, submission, dataset, db)
    with compile_cache.CacheCounter() as counter:
        results = run_group(workload, submission, dataset, group.trials, db=db,
                            options=group.options, on_eval=on_eval,
                            checkpointing=_checkpointing(group, db_url, resume),
                            checked=group.checked,
                            planned=None if ahead is None or resume is not None else ahead.planned,
                            **hooks)
    if ahead is not None:
        counter.add(ahead.counter)
    hit = counter.verdict(cache_dir is not None)
    for r in results:
        r.compile_cache_hit = hit
        if db is not None:
            db.update_run(r.run_id, compile_cache_hit=hit)
    return results


class LocalExecutor:
    """Every group in this process, one after the other, reporting each group's start, evals,
    phase changes and results to `events` as they happen. `ahead`: how many groups beyond the
    one running are planned and compiled in a background thread (`plan_ahead`; None:
    `default_ahead()`). `resume`: a checkpoint folder the (one) group continues from
    (harness.experiment.resume_run)."""

    ahead: int = 0
    resume: str | None = None

    def __init__(self, ahead: int | None = None, resume: str | None = None):
        self.ahead = default_ahead() if ahead is None else ahead
        self.resume = resume

    def run(self, groups: Sequence[TrialGroup], db_url: str | None, *,
            events: GroupEvents | None = None) -> list[list[TrialResult]]:
        out = []
        with _Lookahead(groups, self.ahead) as lookahead:
            for index, group in enumerate(groups):
                if events is not None:
                    events.started(index)
                on_eval = None if events is None else functools.partial(events.evaluated, index)
                on_phase = None if events is None else functools.partial(events.phase, index)
                ahead = lookahead.take(index)
                with progress.listening(on_phase):
                    out.append(self.execute(group, db_url, on_eval, ahead))
                if events is not None:
                    events.finished(index, out[-1])
        return out

    def execute(self, group: TrialGroup, db_url: str | None,
                on_eval: Callable[[int, int, dict[str, float]], None] | None,
                ahead: Ahead | None = None) -> list[TrialResult]:
        """One group, here (planned ahead, or not)."""
        return execute_group(group, db_url, on_eval=on_eval, ahead=ahead, resume=self.resume)


class _Lookahead:
    """A daemon thread running `plan_ahead` on groups 1, 2, ... in order, at most `depth`
    groups beyond the one the executor runs; a group it has not started by then the executor
    plans itself. A failed plan is left to the executor, which meets the error where it
    records it (in the trials' rows, or as the user error it is)."""

    def __init__(self, groups: Sequence[TrialGroup], depth: int):
        self.groups, self.depth = groups, depth
        self.cond = threading.Condition()
        self.current, self.closed = 0, False
        self.started: set[int] = set()
        self.done: dict[int, Ahead | None] = {}
        self.thread = None
        if depth > 0 and len(groups) > 1:
            compile_cache.configure(groups[0].compile_cache)
            for spec in dict.fromkeys(g.submission for g in groups):
                load_submission(spec)  # each submission.py executed here, not in two threads
            self.thread = threading.Thread(target=self._work, name="curvebench-ahead",
                                           daemon=True)

    def __enter__(self) -> _Lookahead:
        if self.thread is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _work(self) -> None:
        cache = self.groups[0].compile_cache
        for i in range(1, len(self.groups)):
            with self.cond:
                while not self.closed and i > self.current + self.depth:
                    self.cond.wait()
                if self.closed:
                    return
                if i <= self.current or self.groups[i].compile_cache != cache:
                    continue
                self.started.add(i)
            try:
                ahead = plan_ahead(self.groups[i])
            except Exception:  # noqa: BLE001 - the executor plans it again and meets the error
                log.debug("planning group %d ahead failed", i, exc_info=True)
                ahead = None
            with self.cond:
                self.done[i] = ahead
                self.cond.notify_all()

    def take(self, index: int) -> Ahead | None:
        """Group `index` as planned ahead (waiting for it if under way), or None."""
        with self.cond:
            self.current = index
            self.cond.notify_all()
            if index not in self.started:
                return None
            while index not in self.done:
                self.cond.wait()
            return self.done.pop(index)
