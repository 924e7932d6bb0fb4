"""The experiment layer: a sweep is a list of trials; trials that share a compiled shape form a
group, the unit of work an executor runs (in this process, or on a cluster's workers).

A trial is (workload variant, submission, hyperparameters, seed). `run_sweep` is what every
command that trains goes through (`run`, `sweep`, `score`, `check`): it checks every request
against the registry and the submissions before anything runs, records the sweep, labels every
trial with the sweep's id and origin, plans groups, hands them to an executor and returns typed
results in request order. `plan_groups` puts trials of the same variant, submission and batch
size into one group; `execute_group` runs one group in any process that can open the results
database, so a group is all a remote worker needs.

Timing: a group's trials may run as one vectorised program (harness.runner.run_group), whose
wall time belongs to no single trial; `timed_alone=True` runs every trial as its own group
(runs.group_size 1), which is what `score` (honest time-to-target) and `check` (a bit-exact
comparison with references made alone) ask for.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import statistics
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from harness import progress
from harness.progress import Phase, PhaseChange
from harness.runner import TrialOptions, TrialResult, TrialSpec
from harness.spec import Dataset, SpecError, Workload


@dataclasses.dataclass(frozen=True)
class TrialRequest:
    """One cell x seed of a grid, before anything is loaded."""

    workload: str
    submission: str
    hparams: Mapping[str, Any]
    seed: int


@dataclasses.dataclass(frozen=True)
class CurvatureRequest:
    """Curvature snapshots for every trial of a group, as plain data: `config` holds
    harness.curvature.SnapshotConfig's fields, `every` the snapshot schedule SPEC."""

    config: Mapping[str, Any]
    every: str


@dataclasses.dataclass(frozen=True)
class TrialGroup:
    """Trials of one workload variant (or of variants differing only in runtime knobs, each
    trial naming its own: TrialSpec.knobs) and submission with the same batch size: one compiled
    program. Plain data (strings, numbers, dicts), so it can be sent to another process.
    `compile_cache`: the persistent compilation cache option (harness.compile_cache.resolve;
    None: the environment's or the default directory)."""

    workload: str
    submission: str
    trials: tuple[TrialSpec, ...]
    options: TrialOptions = TrialOptions()
    data_dir: str | None = None
    data_source: str | None = None
    curvature: CurvatureRequest | None = None
    compile_cache: str | None = None


def _group_key(request: TrialRequest, *, curvature: bool, alone: bool, index: int,
               share_variants: bool) -> tuple:
    key = (request.workload, request.submission, request.hparams.get("batch_size"))
    if alone:
        return (*key, index)
    if curvature:  # a snapshot's stability metrics read the trial's own hparams (learning rate)
        return (*key, json.dumps(dict(request.hparams), sort_keys=True, default=str))
    if share_variants:
        return (_shape_spec(request.workload), *key[1:])
    return key


@functools.lru_cache(maxsize=256)
def _shape_spec(spec: str) -> str:
    """Variants that differ only in runtime knobs (Workload.runtime_knobs) share a group."""
    from workloads import get_workload

    return get_workload(spec).shape_spec


def _trial_knobs(group_spec: str, spec: str) -> dict[str, Any]:
    """The runtime knobs of variant `spec` that differ from the group's variant."""
    from workloads import get_workload

    group, own = get_workload(group_spec).variant, get_workload(spec).variant
    return {k: v for k, v in own.items() if v != group[k]}


def _plan(requests: Sequence[TrialRequest], options: TrialOptions, *, data_dir: str | None,
          data_source: str | None, curvature: CurvatureRequest | None, timed_alone: bool,
          compile_cache: str | None) -> list[tuple[TrialGroup, list[int]]]:
    """Groups in first-seen order, each with the indices of its requests."""
    members: dict[tuple, list[int]] = {}
    for i, r in enumerate(requests):
        key = _group_key(r, curvature=curvature is not None, alone=timed_alone, index=i,
                         share_variants=options.share_variants)
        members.setdefault(key, []).append(i)
    planned = []
    for indices in members.values():
        first = requests[indices[0]]
        trials = tuple(TrialSpec(seed=requests[i].seed, hparams=dict(requests[i].hparams),
                                 knobs=_trial_knobs(first.workload, requests[i].workload))
                       for i in indices)
        planned.append((TrialGroup(workload=first.workload, submission=first.submission,
                                   trials=trials, options=options, data_dir=data_dir,
                                   data_source=data_source, curvature=curvature,
                                   compile_cache=compile_cache), indices))
    return planned


def plan_groups(requests: Sequence[TrialRequest], options: TrialOptions = TrialOptions(), *,
                data_dir: str | None = None, data_source: str | None = None,
                curvature: CurvatureRequest | None = None, timed_alone: bool = False,
                compile_cache: str | None = None) -> list[TrialGroup]:
    """Group trial requests by (variant, submission, batch size), keeping first-seen order;
    with options.share_variants, variants that differ only in runtime knobs
    (Workload.runtime_knobs, e.g. mnist_mlp's activation) are one group, each trial naming its
    knobs (TrialSpec.knobs) and computed bit for bit as alone; with curvature, by variant and
    hparams; with timed_alone, one group per trial."""
    return [g for g, _ in _plan(requests, options, data_dir=data_dir, data_source=data_source,
                                curvature=curvature, timed_alone=timed_alone,
                                compile_cache=compile_cache)]


@functools.lru_cache(maxsize=8)
def database(url: str):
    """The results database at `url`, opened (and checked) once per process."""
    from harness.db import open_database

    return open_database(url)


@functools.lru_cache(maxsize=4)
def _load_dataset(workload_spec: str, data_dir: str | None, data_source: str | None) -> Dataset:
    from workloads import get_workload

    return get_workload(workload_spec).load_data(data_dir, data_source)


def load_dataset(workload: Workload, data_dir: str | None = None,
                 data_source: str | None = None) -> Dataset:
    """The workload variant's data, loaded once per process for consecutive groups."""
    return _load_dataset(workload.spec, data_dir, data_source)


def _snapshot_config(request: CurvatureRequest):
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
                workload, dataset, _snapshot_config(group.curvature), db=db, hparams=hparams,
                batch_size=dataclasses.replace(submission, hparams=hparams).batch_size(
                    workload.name, workload.batch_size))}


def group_to_json(group: TrialGroup) -> dict[str, Any]:
    """A group as JSON-able plain data (`group_from_json` reads it back)."""
    d = dataclasses.asdict(group)
    d["options"]["origin"] = group.options.origin.value
    return json.loads(json.dumps(d, default=str))


def group_from_json(data: Mapping[str, Any]) -> TrialGroup:
    from harness.db.models import RunOrigin

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
                      compile_cache=data.get("compile_cache"))


def _checkpointing(group: TrialGroup, db_url: str | None, resume: str | None):
    """How the group's programs checkpoint (harness/checkpoint.py); None without a results
    database (nothing could find the checkpoint) or with checkpoints off and none kept."""
    from harness import checkpoint

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
    installed (harness.progress.listening). Each run row says whether its programs came from
    the persistent compilation cache (runs.compile_cache_hit). `resume`: the checkpoint
    folder the group's trials (those of one compiled program) continue from."""
    from harness import compile_cache
    from harness.runner import run_group
    from harness.submissions import load_submission
    from workloads import get_workload

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
                            checkpointing=_checkpointing(group, db_url, resume), **hooks)
    if db is not None:
        hit = counter.verdict(cache_dir is not None)
        for r in results:
            db.update_run(r.run_id, compile_cache_hit=hit)
    return results


class Executor(Protocol):
    """Runs groups somewhere and hands back each group's results, in the order given."""

    def run(self, groups: Sequence[TrialGroup], db_url: str | None) -> list[list[TrialResult]]:
        ...


class LocalExecutor:
    """Every group in this process, one after the other. The callbacks, if given, see each
    group start (index, group), each eval (group index, trial index, step, metrics), each
    phase change (group index, harness.progress.PhaseChange) and each group's results
    (index, results) as they happen."""

    def __init__(self, *, on_start: Callable[[int, TrialGroup], None] | None = None,
                 on_eval: Callable[[int, int, int, dict[str, float]], None] | None = None,
                 on_done: Callable[[int, list[TrialResult]], None] | None = None,
                 on_phase: Callable[[int, PhaseChange], None] | None = None):
        self.on_start, self.on_eval, self.on_done = on_start, on_eval, on_done
        self.on_phase = on_phase

    def run(self, groups: Sequence[TrialGroup], db_url: str | None) -> list[list[TrialResult]]:
        out = []
        for index, group in enumerate(groups):
            if self.on_start is not None:
                self.on_start(index, group)
            on_eval = None if self.on_eval is None else functools.partial(self.on_eval, index)
            on_phase = None if self.on_phase is None else functools.partial(self.on_phase, index)
            with progress.listening(on_phase):
                out.append(execute_group(group, db_url, on_eval=on_eval))
            if self.on_done is not None:
                self.on_done(index, out[-1])
        return out


# -- sweeps --------------------------------------------------------------------------------

@dataclasses.dataclass
class TrialOutcome:
    """A finished trial of a sweep: what was asked, what it measured, and how it ran.
    `hparams` are the full hyperparameters (submission defaults and overrides); `group_size`
    (trials in its compiled program) and `compile_cache_hit` are as its run row says (None
    without a database)."""

    request: TrialRequest
    result: TrialResult
    hparams: dict[str, Any]
    group_size: int | None
    compile_cache_hit: bool | None
    sweep_id: str

    def to_json(self) -> dict[str, Any]:
        return {**self.result.to_json(), "hparams": self.hparams, "group_size": self.group_size,
                "compile_cache_hit": self.compile_cache_hit, "sweep_id": self.sweep_id}


@dataclasses.dataclass(frozen=True)
class CellSummary:
    """One grid cell (variant, submission, hparams) over its seeds. Steps over the trials
    that reached the target; the median time over all, a miss counting as infinite (so it
    is None when half or more missed)."""

    workload: str
    submission: str
    hparams: dict[str, Any]
    seeds: int
    reached: int
    median_steps: float | None
    min_steps: int | None
    max_steps: int | None
    median_time_s: float | None
    group_sizes: tuple[int | None, ...]


def _median_or_none(values: Sequence[float | None]) -> float | None:
    """Median with None (a miss) as +inf; None when the median is a miss or there are none."""
    if not values:
        return None
    m = statistics.median(float("inf") if v is None else v for v in values)
    return None if m == float("inf") else m


@dataclasses.dataclass
class SweepResult:
    """Every trial of a sweep in request order (duplicates of an earlier request dropped)."""

    sweep_id: str
    name: str | None
    trials: list[TrialOutcome]
    dropped_duplicates: int = 0

    def cells(self) -> list[CellSummary]:
        by_cell: dict[tuple, list[TrialOutcome]] = {}
        for t in self.trials:
            key = (t.result.workload, t.result.submission, json.dumps(t.hparams, sort_keys=True))
            by_cell.setdefault(key, []).append(t)
        out = []
        for (workload, submission, _), trials in by_cell.items():
            steps = [t.result.steps_to_target for t in trials if t.result.status == "reached"]
            out.append(CellSummary(
                workload=workload, submission=submission, hparams=trials[0].hparams,
                seeds=len(trials), reached=len(steps),
                median_steps=_median_or_none([t.result.steps_to_target if t.result.status == "reached"
                                              else None for t in trials]),
                min_steps=min(steps, default=None), max_steps=max(steps, default=None),
                median_time_s=_median_or_none([t.result.time_to_target_s if t.result.status == "reached"
                                               else None for t in trials]),
                group_sizes=tuple(sorted({t.group_size for t in trials}, key=lambda g: g or 0))))
        return out


@dataclasses.dataclass(frozen=True)
class GroupStarted:
    """A group is about to run (remote executors: handed over, every group at once): its
    index and the requests it holds, in its trial order."""

    index: int
    group: TrialGroup
    requests: tuple[TrialRequest, ...]


@dataclasses.dataclass(frozen=True)
class TrialEvaluated:
    """One eval of one trial (only from executors that report evals, e.g. the local one)."""

    group_index: int
    request: TrialRequest
    step: int
    metrics: Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class TrialPhase:
    """One trial entered a phase (harness.progress; only from executors that report phases,
    e.g. the local one): `change` holds the phase and its step, snapshot or outcome."""

    group_index: int
    request: TrialRequest
    change: PhaseChange


@dataclasses.dataclass(frozen=True)
class SweepPhase:
    """The sweep itself is in a phase before any group runs (loading a workload's data to
    check it is there); `detail` says what (the workload variant)."""

    phase: Phase
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class GroupFinished:
    """A group's trials are finished, their rows written."""

    index: int
    outcomes: tuple[TrialOutcome, ...]


SweepEvent = SweepPhase | GroupStarted | TrialEvaluated | TrialPhase | GroupFinished


def validate_requests(requests: Sequence[TrialRequest]) -> tuple[list[TrialRequest],
                                                                 list[dict[str, Any]]]:
    """Check every workload variant and hyperparameter before anything runs; return the
    requests with canonical variant names and submission paths, and each one's full hparams.
    Raises SpecError (unknown workload, knob, value, hyperparameter; bad submission)."""
    from harness.submissions import apply_overrides, load_submission
    from workloads import get_workload

    specs = {w: get_workload(w).spec for w in dict.fromkeys(r.workload for r in requests)}
    subs = {s: load_submission(s) for s in dict.fromkeys(r.submission for r in requests)}
    canonical, full = [], []
    for r in requests:
        sub = subs[r.submission]
        full.append(apply_overrides(sub.name, sub.hparams, r.hparams))
        canonical.append(TrialRequest(specs[r.workload], str(sub.path), dict(r.hparams), r.seed))
    return canonical, full


def preflight(groups: Sequence[TrialGroup], *, data_here: bool) -> None:
    """Refuse, before a sweep is recorded or anything compiles, a group whose batch size is
    not a positive int or whose sizes cannot fit (harness.guards: int32 step counter, eval
    count, and — where the data is loaded in this process — memory)."""
    from harness import guards
    from harness.submissions import apply_overrides, load_submission
    from workloads import get_workload

    submissions = {path: load_submission(path)
                   for path in dict.fromkeys(g.submission for g in groups)}
    for group in groups:
        workload = get_workload(group.workload)
        submission = submissions[group.submission]
        max_steps = int(group.options.max_steps or workload.max_steps)
        eval_every = int(group.options.eval_every or workload.eval_every)
        sizes = {dataclasses.replace(
                     submission, hparams=apply_overrides(submission.name, submission.hparams,
                                                         trial.hparams)
                 ).batch_size(workload.name, workload.batch_size) for trial in group.trials}
        dataset = load_dataset(workload, group.data_dir, group.data_source) if data_here else None
        together = min(len(group.trials), group.options.max_group_size or len(group.trials))
        for size in sizes:
            guards.check_trial_fits(workload, dataset, size, max_steps, eval_every, together)


def validate_curvature(curvature: CurvatureRequest) -> None:
    """A curvature request's settings and schedule, checked before anything runs."""
    from harness.curvature import snapshot_steps

    _snapshot_config(curvature)
    snapshot_steps(curvature.every, 1)


def _how_run(db_url: str | None, run_ids: Sequence[str]) -> dict[str, tuple[int, bool | None]]:
    """run id -> (group_size, compile_cache_hit) from the run rows."""
    if db_url is None or not run_ids:
        return {}
    from sqlalchemy import select

    from harness.db import Run

    with database(db_url).session() as s:
        rows = s.execute(select(Run.id, Run.group_size, Run.compile_cache_hit)
                         .where(Run.id.in_(run_ids))).all()
    return {run_id: (size, hit) for run_id, size, hit in rows}


def run_sweep(requests: Sequence[TrialRequest], options: TrialOptions = TrialOptions(),
              db_url: str | None = None, *, name: str | None = None, command: str = "",
              executor: Executor | None = None, data_dir: str | None = None,
              data_source: str | None = None, curvature: CurvatureRequest | None = None,
              on_event: Callable[[SweepEvent], None] | None = None,
              timed_alone: bool = False, compile_cache: str | None = None,
              resume: str | None = None) -> SweepResult:
    """Validate, record and run a sweep; every trial's rows go to `db_url` as they happen
    (None: no database), labelled with the sweep's id and `options.origin`/`options.tag`.

    Requests repeating an earlier one (same canonical variant, submission, full hparams and
    seed) are run once. `timed_alone`: one trial per compiled program (runs.group_size 1).
    `resume`: the id of a recorded sweep to continue — its trials that already finished
    (harness.sweep_state) are taken from the database, only the others run, under that id.
    Raises SpecError (a request that does not fit) or, with the local executor,
    DataUnavailable before anything is recorded or trained."""
    if not requests:
        raise SpecError("the sweep has no trials: give at least one workload, submission and seed")
    canonical, full = validate_requests(requests)
    if curvature is not None:
        validate_curvature(curvature)
    seen: dict[str, int] = {}
    kept: list[int] = []
    for i, (r, hp) in enumerate(zip(canonical, full)):
        key = json.dumps([r.workload, r.submission, hp, r.seed], sort_keys=True, default=str)
        if key not in seen:
            seen[key] = i
            kept.append(i)
    todo = [canonical[i] for i in kept]
    hparams = [full[i] for i in kept]
    if executor is None:  # data missing here fails now, before the sweep is recorded
        from workloads import get_workload

        for spec in dict.fromkeys(r.workload for r in todo):
            if on_event is not None:
                on_event(SweepPhase(Phase.LOADING_DATA, spec))
            load_dataset(get_workload(spec), data_dir, data_source)
    sweep_id = resume or str(uuid.uuid4())
    options = dataclasses.replace(options, sweep_id=sweep_id)
    finished: dict[int, TrialOutcome] = {}
    if resume is not None:
        finished = _finished_outcomes(db_url, resume, todo, hparams)
    pending = [i for i in range(len(todo)) if i not in finished]
    planned = [(group, [pending[j] for j in members]) for group, members in
               _plan([todo[i] for i in pending], options, data_dir=data_dir,
                     data_source=data_source, curvature=curvature, timed_alone=timed_alone,
                     compile_cache=compile_cache)]
    groups = [g for g, _ in planned]
    preflight(groups, data_here=executor is None)
    if resume is None and db_url is not None:
        spec = {"requests": [dataclasses.asdict(r) for r in todo],
                "options": {**dataclasses.asdict(options), "origin": options.origin.value},
                "data_dir": data_dir, "data_source": data_source, "timed_alone": timed_alone,
                "curvature": None if curvature is None else dataclasses.asdict(curvature)}
        database(db_url).add_sweep(sweep_id, command, json.loads(json.dumps(spec, default=str)),
                                        name=name)

    def outcomes(index: int, results: Sequence[TrialResult]) -> list[TrialOutcome]:
        how = _how_run(db_url, [r.run_id for r in results])
        return [TrialOutcome(request=todo[i], result=r, hparams=hparams[i],
                             group_size=how.get(r.run_id, (None, None))[0],
                             compile_cache_hit=how.get(r.run_id, (None, None))[1],
                             sweep_id=sweep_id)
                for i, r in zip(planned[index][1], results)]

    def emit(event: SweepEvent) -> None:
        if on_event is not None:
            on_event(event)

    done: dict[int, list[TrialOutcome]] = {}
    if executor is None:
        def on_done(index: int, results: list[TrialResult]) -> None:
            done[index] = outcomes(index, results)
            emit(GroupFinished(index, tuple(done[index])))

        def on_phase(index: int, change: PhaseChange) -> None:
            for trial in change.trials:
                emit(TrialPhase(index, todo[planned[index][1][trial]], change))

        executor = LocalExecutor(
            on_start=lambda i, g: emit(GroupStarted(i, g, tuple(todo[j] for j in planned[i][1]))),
            on_eval=lambda gi, ti, step, m: emit(TrialEvaluated(gi, todo[planned[gi][1][ti]],
                                                                step, m)),
            on_done=on_done, on_phase=on_phase)
        if groups:
            executor.run(groups, db_url)
    elif groups:
        for index, group in enumerate(groups):  # every group is handed over at once
            emit(GroupStarted(index, group, tuple(todo[j] for j in planned[index][1])))
        for index, results in enumerate(executor.run(groups, db_url)):
            done[index] = outcomes(index, results)
            emit(GroupFinished(index, tuple(done[index])))
    by_request = {i: t for index, ts in done.items() for i, t in zip(planned[index][1], ts)}
    by_request.update(finished)
    return SweepResult(sweep_id=sweep_id, name=name,
                       trials=[by_request[i] for i in range(len(todo))],
                       dropped_duplicates=len(requests) - len(todo))


def resume_run(run_id: str, db_url: str, *, options: Mapping[str, Any] | None = None,
               on_event: Callable[[SweepEvent], None] | None = None) -> SweepResult:
    """Continue a killed, interrupted or failed run from its last checkpoint
    (harness/checkpoint.py), under its run id: with it every trial of the compiled program it
    trained in (the other seeds of its group) that had not finished by that checkpoint.
    `options`: TrialOptions fields to change for the rest (e.g. the checkpoint cadence).
    Returns the program's trials (those finished before the checkpoint as they were), with
    `resumed_from_step` set on the resumed ones; a trial that finished after the checkpoint
    is trained again from it (to the same result) with the others. Raises a UserError, one
    line, where the run cannot be resumed: finished, still running, concrete-step mode, no
    checkpoint."""
    from sqlalchemy import select

    from harness import checkpoint
    from harness.sweep_state import FINISHED

    from harness.db import Run

    db = database(db_url)
    run = db.get_run(run_id)
    label = f"run {run.id[:8]}"
    if run.status in FINISHED:
        # its program's other trials may still be unfinished (it finished after the checkpoint)
        with db.session() as s:
            unfinished = [] if run.checkpoint_path is None else s.scalars(
                select(Run.id).where(Run.checkpoint_path == run.checkpoint_path,
                                     Run.status.not_in(FINISHED))).all()
        if not unfinished:
            raise checkpoint.CheckpointError(f"{label} already finished ({run.status}); "
                                             "nothing to resume")
        run = db.get_run(unfinished[0])
    if run.status == "running":
        raise checkpoint.CheckpointError(f"{label} is still running (process {run.pid} on "
                                         f"{run.host}); resume it once that process is gone")
    if run.chunk_mode == "concrete":
        raise checkpoint.CheckpointError(
            f"{label} trained in concrete-step mode (AlgoPerf's runner loop), which writes no "
            "checkpoints: the submission's optimizer state may hold Python objects and its "
            "eval_results/train_state live in its module; rerun it (`sweep --resume`)")
    if run.checkpoint_path is None:
        raise checkpoint.CheckpointError(
            f"{label} has no checkpoint: it stopped before its first one (default every 10 "
            "minutes; `run --checkpoint-every N` for more often); rerun it")
    saved = checkpoint.read(run.checkpoint_path)
    stored = group_from_json(saved.group)
    group = dataclasses.replace(
        stored, trials=tuple(TrialSpec(seed=r.trial["seed"], hparams=r.trial["hparams"],
                                       knobs=r.trial.get("knobs", {}))
                             for r in saved.trials),
        options=dataclasses.replace(stored.options, **(options or {})))
    requests = tuple(TrialRequest(r.result["workload"], group.submission, dict(t.hparams), t.seed)
                     for r, t in zip(saved.trials, group.trials))  # each trial's own variant
    sweep_id = group.options.sweep_id or ""
    if on_event is not None:
        on_event(GroupStarted(0, group, requests))

    def on_phase(change: PhaseChange) -> None:
        for trial in change.trials:
            on_event(TrialPhase(0, requests[trial], change))

    with progress.listening(None if on_event is None else on_phase):
        results = execute_group(group, db_url, resume=str(saved.path),
                                on_eval=None if on_event is None
                                else lambda ti, step, m: on_event(TrialEvaluated(0, requests[ti],
                                                                                 step, m)))
    how = _how_run(db_url, [r.run_id for r in results])
    trials = [TrialOutcome(request=q, result=r, hparams=dict(r.hparams),
                           group_size=how.get(r.run_id, (None, None))[0],
                           compile_cache_hit=how.get(r.run_id, (None, None))[1], sweep_id=sweep_id)
              for q, r in zip(requests, results)]
    if on_event is not None:
        on_event(GroupFinished(0, tuple(trials)))
    return SweepResult(sweep_id=sweep_id, name=None, trials=trials)


def _finished_outcomes(db_url: str | None, sweep_id: str, todo: Sequence[TrialRequest],
                       hparams: Sequence[Mapping[str, Any]]) -> dict[int, TrialOutcome]:
    """The trials of a recorded sweep that already finished, by index into `todo`."""
    from harness.db import Sweep
    from harness.sweep_state import finished_trials, request_key

    if db_url is None:
        raise SpecError("resuming a sweep needs its results database (--db)")
    db = database(db_url)
    with db.session() as s:
        if s.get(Sweep, sweep_id) is None:
            raise SpecError(f"no sweep {sweep_id!r} in {db.url} to resume; `curvebench runs` "
                            "lists sweeps' runs, or start a new sweep without --resume")
    done = finished_trials(db, sweep_id)
    how = _how_run(db_url, [r.run_id for r in done.values()])
    out = {}
    for i, request in enumerate(todo):
        result = done.get(request_key(request))
        if result is not None:
            group_size, hit = how.get(result.run_id, (None, None))
            out[i] = TrialOutcome(request=request, result=result, hparams=dict(hparams[i]),
                                  group_size=group_size, compile_cache_hit=hit,
                                  sweep_id=sweep_id)
    return out


def requests_for(workloads: Sequence[str], submissions: Sequence[str],
                 hparams: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> list[TrialRequest]:
    """The grid's trials: workload outermost, then submission, hparams, seed."""
    return [TrialRequest(w, str(Path(s)), dict(h), seed)
            for w in workloads for s in submissions for h in hparams for seed in seeds]


def available_workloads(names: Sequence[str], data_dir: str | None = None
                        ) -> tuple[list[str], dict[str, str]]:
    """The workloads whose data is on this machine, and why each other one was skipped."""
    from harness.spec import DataUnavailable
    from workloads import get_workload

    found, skipped = [], {}
    for name in names:
        workload = get_workload(name)
        try:
            load_dataset(workload, data_dir)
            found.append(name)
        except DataUnavailable as e:
            skipped[name] = str(e)
    return found, skipped
