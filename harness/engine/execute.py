"""Executing groups: everything a group needs loaded (submission, data, database, curvature
hooks, checkpointing, the compilation cache) and run through harness.runner.run_group, in any
process that can open the results database — so a group is all a remote worker needs — and
the local executor, which runs a sweep's groups in this process one after the other."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import checkpoint, compile_cache, progress
from harness.db import open_database
from harness.progress import Phase
from harness.records.status import RunOrigin
from harness.records.sweep import CurvatureRequest, GroupEvents, TrialGroup
from harness.records.trial import TrialOptions, TrialResult, TrialSpec
from harness.runner import run_group
from harness.spec import Dataset, SpecError, Workload
from harness.submissions import load_submission
from workloads import get_workload


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


def _curvature_hooks(group: TrialGroup, workload: Workload, submission, dataset: Dataset,
                     db) -> dict[str, Any]:
    if group.curvature is None:
        return {}
    from harness.curvature import snapshot_callback, snapshot_steps

    budget = group.options.max_steps or workload.max_steps
    hparams = {**submission.hparams, **group.trials[0].hparams}
    return {"snapshot_steps": snapshot_steps(group.curvature.every, budget),
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


def execute_group(group: TrialGroup, db_url: str | None, *,
                  on_eval: Callable[[int, int, dict[str, float]], None] | None = None,
                  resume: str | None = None) -> list[TrialResult]:
    """Load what the group needs and run it, writing every trial's rows to `db_url`;
    on_eval(trial_index, step, metrics); phase changes go to the listener the caller
    installed (harness.progress.listening). Each result and run row says whether its programs
    came from the persistent compilation cache (compile_cache_hit). `resume`: the checkpoint
    folder the group's trials (those of one compiled program) continue from."""
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
                            checked=group.checked, **hooks)
    hit = counter.verdict(cache_dir is not None)
    for r in results:
        r.compile_cache_hit = hit
        if db is not None:
            db.update_run(r.run_id, compile_cache_hit=hit)
    return results


class LocalExecutor:
    """Every group in this process, one after the other, reporting each group's start, evals,
    phase changes and results to `events` as they happen. `resume`: a checkpoint folder the
    (one) group continues from (harness.experiment.resume_run)."""

    def __init__(self, resume: str | None = None):
        self.resume = resume

    def run(self, groups: Sequence[TrialGroup], db_url: str | None, *,
            events: GroupEvents | None = None) -> list[list[TrialResult]]:
        out = []
        for index, group in enumerate(groups):
            if events is not None:
                events.started(index)
            on_eval = None if events is None else functools.partial(events.evaluated, index)
            on_phase = None if events is None else functools.partial(events.phase, index)
            with progress.listening(on_phase):
                out.append(execute_group(group, db_url, on_eval=on_eval, resume=self.resume))
            if events is not None:
                events.finished(index, out[-1])
        return out
