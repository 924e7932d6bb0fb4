"""Sweeps: a sweep is a list of trial requests; every command that trains (`run`, `sweep`,
`score`, `check`, `tune`, the analyses) goes through `run_sweep`.

`run_sweep` checks every request against the registry and the submissions before anything
runs, plans groups (harness.engine.plan: trials sharing a compiled shape), checks their sizes
once (harness.guards), records the sweep, and hands the groups to an executor (the local one
by default; Ray or Slurm: harness.executors), which reports each group's progress as it goes;
results come back as typed outcomes in request order, built from the engine's own records.
`resume_run` continues a killed run from its checkpoint through the same path, and
`run_sweep(resume=SWEEP_ID)` reruns only a recorded sweep's unfinished trials.

Timing: a group's trials may run as one vectorised program, whose wall time belongs to no
single trial; `timed_alone=True` runs every trial as its own group (runs.group_size 1), which
is what `score` (honest time-to-target) and `check` (a bit-exact comparison with references
made alone) ask for.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from harness import checkpoint, compile_cache, guards, interrupt, output_dir
from harness.grid import MAX_SEED, MAX_TRIALS
from harness.db import Run, Sweep
from harness.engine.execute import (LocalExecutor, database, execute_group,
                                    group_from_json, group_to_json, load_dataset, snapshot_config)
from harness.engine.plan import plan_groups, plan_requests
from harness.progress import Phase, PhaseChange
from harness.records.status import FINISHED, RunStatus
from harness.records.sweep import (CellSummary, CurvatureRequest, GroupEvents, GroupFinished,
                                   GroupStarted, SweepEvent, SweepPhase, SweepResult, TrialEvaluated,
                                   TrialGroup, TrialOutcome, TrialPhase, TrialRequest)
from harness.records.trial import TrialOptions, TrialResult, TrialSpec
from harness.errors import OutputError
from harness.spec import DataUnavailable, SpecError
from harness.submissions import apply_overrides, check_ranges, load_submission
from harness.sweep_state import finished_trials, request_key
from workloads import get_workload

__all__ = ["CellSummary", "CurvatureRequest", "Executor", "GroupFinished", "GroupStarted",
           "LocalExecutor", "SweepEvent", "SweepPhase", "SweepResult", "TrialEvaluated",
           "TrialGroup", "TrialOutcome", "TrialPhase", "TrialRequest", "available_workloads",
           "database", "execute_group", "group_from_json", "group_to_json", "load_dataset",
           "plan_groups", "preflight", "requests_for", "resume_run", "run_sweep",
           "validate_curvature", "validate_requests"]


class Executor(Protocol):
    """Runs groups somewhere and hands back each group's results, in the order given,
    reporting to `events` as it goes (GroupEvents says what each executor reports)."""

    def run(self, groups: Sequence[TrialGroup], db_url: str | None, *,
            events: GroupEvents | None = None) -> list[list[TrialResult]]:
        ...


def validate_requests(requests: Sequence[TrialRequest]) -> tuple[list[TrialRequest],
                                                                 list[dict[str, Any]]]:
    """Check every workload variant and hyperparameter before anything runs; return the
    requests with canonical variant names and submission paths, and each one's full hparams.
    Raises SpecError (unknown workload, knob, value, hyperparameter; bad submission; more
    trials than MAX_TRIALS or a seed past MAX_SEED: harness.grid)."""
    if len(requests) > MAX_TRIALS:
        raise SpecError(f"{len(requests)} trials; one command starts at most {MAX_TRIALS}: give "
                        "fewer seeds or grid values, or split the grid into several sweeps")
    bad = next((r.seed for r in requests if not (isinstance(r.seed, int) and 0 <= r.seed <= MAX_SEED)), None)
    if bad is not None:
        raise SpecError(f"seed {bad!r} is not an integer from 0 to {MAX_SEED}")
    specs = {w: get_workload(w).spec for w in dict.fromkeys(r.workload for r in requests)}
    subs = {s: load_submission(s) for s in dict.fromkeys(r.submission for r in requests)}
    canonical, full = [], []
    for r in requests:
        sub = subs[r.submission]
        full.append(apply_overrides(sub.name, sub.hparams, r.hparams))
        check_ranges(sub.name, full[-1], sub.ranges)
        canonical.append(TrialRequest(specs[r.workload], str(sub.path), dict(r.hparams), r.seed))
    return canonical, full


def preflight(groups: Sequence[TrialGroup], *, data_here: bool) -> list[TrialGroup]:
    """Refuse, before a sweep is recorded or anything compiles, a group whose batch size is
    not a positive int or whose sizes cannot fit (harness.guards: int32 step counter, eval
    count, and — where the data is loaded in this process — memory). Returns the groups,
    marked `checked` where the whole guard ran here (their workers do not repeat it)."""
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
    return [dataclasses.replace(g, checked=data_here) for g in groups]


#: Dataset.source of data made in memory (workloads/toy.py's, harness/data/synthetic.py's):
#: a --data-dir given for such a workload would be ignored, so it is refused
NO_FILES = ("generated", "synthetic")


def check_folders(data_dir: str | None, checkpoint_dir: str | None,
                  compile_cache_option: str | None) -> None:
    """The folders a sweep run here reads or writes, checked before anything is recorded: the
    data folder must not be a file (OutputError, one line; a missing one is the loader's to
    explain, naming the files it needs), the checkpoint and
    compile-cache folders (option or environment) must be folders or creatable (created)."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not str(data_dir).strip() or (path.exists() and not path.is_dir()):
            what = "names no folder" if not str(data_dir).strip() else "is a file"
            raise OutputError(f"--data-dir {data_dir!r} {what}: give the folder holding the "
                              "dataset's files")
    if checkpoint_dir is not None:
        output_dir.check_folder(Path(checkpoint_dir).expanduser(), "--checkpoint-dir")
    cache = compile_cache.resolve(compile_cache_option)
    if cache is not None:  # a cache JAX cannot write to only warns: it need not be writable
        option = ("--compile-cache" if compile_cache_option is not None
                  else f"${compile_cache.ENV_VAR}")
        if cache.exists() and not cache.is_dir():
            raise OutputError(f"{option} {cache} is a file, not a folder; give a folder path "
                              "or 'off'")
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{option} {cache}: cannot create the folder ({e.strerror}); give "
                              "a folder path or 'off'") from None


def validate_curvature(curvature: CurvatureRequest, workloads: Sequence[str] = ()) -> None:
    """A curvature request's settings and schedule, checked before anything runs; with the
    workload variants it will snapshot, its Lanczos order against their parameter counts
    (harness.guards.check_curvature_sizes: refused when no variant could use it)."""
    from harness.curvature import snapshot_steps

    config = snapshot_config(curvature)
    snapshot_steps(curvature.every, 1)
    guards.check_curvature_sizes([get_workload(spec) for spec in workloads], config)


class _SweepEvents:
    """An executor's group events as the sweep's events: group and trial indices become the
    requests they run; each group's results become outcomes."""

    def __init__(self, planned: Sequence[tuple[TrialGroup, list[int]]],
                 requests: Sequence[TrialRequest], sweep_id: str,
                 on_event: Callable[[SweepEvent], None] | None):
        self.planned, self.requests, self.sweep_id = planned, requests, sweep_id
        self.on_event = on_event
        self.outcomes: dict[int, TrialOutcome] = {}

    def _request(self, index: int, trial: int) -> TrialRequest:
        return self.requests[self.planned[index][1][trial]]

    def _emit(self, event: SweepEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def started(self, index: int) -> None:
        group, members = self.planned[index]
        self._emit(GroupStarted(index, group, tuple(self.requests[i] for i in members)))

    def evaluated(self, index: int, trial: int, step: int, metrics: Mapping[str, float]) -> None:
        self._emit(TrialEvaluated(index, self._request(index, trial), step, metrics))

    def phase(self, index: int, change: PhaseChange) -> None:
        for trial in change.trials:
            self._emit(TrialPhase(index, self._request(index, trial), change))

    def finished(self, index: int, results: list[TrialResult]) -> None:
        members = self.planned[index][1]
        outcomes = [TrialOutcome(request=self.requests[i], result=r, sweep_id=self.sweep_id)
                    for i, r in zip(members, results)]
        self.outcomes.update(zip(members, outcomes))
        self._emit(GroupFinished(index, tuple(outcomes)))


def _execute(planned: Sequence[tuple[TrialGroup, list[int]]], requests: Sequence[TrialRequest],
             sweep_id: str, db_url: str | None, executor: Executor,
             on_event: Callable[[SweepEvent], None] | None) -> dict[int, TrialOutcome]:
    """Run the planned groups on the executor; the outcome of each request index they hold."""
    events = _SweepEvents(planned, requests, sweep_id, on_event)
    if planned:
        executor.run([g for g, _ in planned], db_url, events=events)
    return events.outcomes


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
    `executor`: where groups run (default: this process, `LocalExecutor`). `resume`: the id
    of a recorded sweep to continue — its trials that already finished (harness.sweep_state)
    are taken from the database, only the others run, under that id. Raises SpecError (a
    request that does not fit) or, for groups run here, DataUnavailable before anything is
    recorded or trained."""
    if not requests:
        raise SpecError("the sweep has no trials: give at least one workload, submission and seed")
    canonical, full = validate_requests(requests)
    if curvature is not None:
        validate_curvature(curvature, list(dict.fromkeys(r.workload for r in canonical)))
    seen: set[str] = set()
    todo = []
    for r, hp in zip(canonical, full):
        key = json.dumps([r.workload, r.submission, hp, r.seed], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            todo.append(r)
    executor = LocalExecutor() if executor is None else executor
    here = isinstance(executor, LocalExecutor)
    if here and timed_alone and executor.ahead:  # a compile ahead would share the timed cores
        executor = LocalExecutor(ahead=0, resume=executor.resume)
    if here:  # data missing here fails now, before the sweep is recorded
        check_folders(data_dir, options.checkpoint_dir, compile_cache)
        for spec in dict.fromkeys(r.workload for r in todo):
            if on_event is not None:
                on_event(SweepPhase(Phase.LOADING_DATA, spec))
            dataset = load_dataset(get_workload(spec), data_dir, data_source)
            if data_dir is not None and dataset.source in NO_FILES:
                raise SpecError(f"--data-dir {data_dir}: {spec} reads no files (its data is "
                                f"{dataset.source}): drop --data-dir")
    sweep_id = resume or str(uuid.uuid4())
    options = dataclasses.replace(options, sweep_id=sweep_id)
    finished = {} if resume is None else _finished_outcomes(db_url, resume, todo, options)
    pending = [i for i in range(len(todo)) if i not in finished]
    planned = [(group, [pending[j] for j in members]) for group, members in
               plan_requests([todo[i] for i in pending], options, data_dir=data_dir,
                             data_source=data_source, curvature=curvature,
                             timed_alone=timed_alone, compile_cache=compile_cache)]
    checked = preflight([g for g, _ in planned], data_here=here)
    planned = [(g, members) for g, (_, members) in zip(checked, planned)]
    interrupt.check()  # Ctrl-C while starting up (swallowed by JAX's import): record nothing
    if resume is None and db_url is not None:
        spec = {"requests": [dataclasses.asdict(r) for r in todo],
                "options": {**dataclasses.asdict(options), "origin": options.origin.value},
                "data_dir": data_dir, "data_source": data_source, "timed_alone": timed_alone,
                "curvature": None if curvature is None else dataclasses.asdict(curvature)}
        database(db_url).add_sweep(sweep_id, command, json.loads(json.dumps(spec, default=str)),
                                   name=name)
    outcomes = {**finished, **_execute(planned, todo, sweep_id, db_url, executor, on_event)}
    return SweepResult(sweep_id=sweep_id, name=name,
                       trials=[outcomes[i] for i in range(len(todo))],
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
    if run.status == RunStatus.RUNNING:
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
    requests = [TrialRequest(r.result["workload"], group.submission, dict(t.hparams), t.seed)
                for r, t in zip(saved.trials, group.trials)]  # each trial's own variant
    sweep_id = group.options.sweep_id or ""
    outcomes = _execute([(group, list(range(len(requests))))], requests, sweep_id, db_url,
                        LocalExecutor(resume=str(saved.path)), on_event)
    return SweepResult(sweep_id=sweep_id, name=None,
                       trials=[outcomes[i] for i in range(len(requests))])


#: run options a resumed sweep must keep: its trials' budget and what they record
_RESUME_KEPT = ("max_steps", "eval_every", "stop_at_target", "divergence_factor", "chunk_mode")


def _finished_outcomes(db_url: str | None, sweep_id: str, todo: Sequence[TrialRequest],
                       options: TrialOptions) -> dict[int, TrialOutcome]:
    """The trials of a recorded sweep that already finished, by index into `todo`. Refused
    if the grid or the budget differs from the recorded sweep's: its finished trials would be
    mixed with trials of another experiment under one sweep."""
    if db_url is None:
        raise SpecError("resuming a sweep needs its results database (--db)")
    db = database(db_url)
    with db.session() as s:
        row = s.get(Sweep, sweep_id)
        if row is None:
            raise SpecError(f"no sweep {sweep_id!r} in {db.url} to resume; `curvebench runs` "
                            "lists sweeps' runs, or start a new sweep without --resume")
        spec = dict(row.spec or {})
    recorded = spec.get("options") or {}
    asked = dataclasses.asdict(options)
    differ = [f"{k} {asked.get(k)!r} (recorded {recorded.get(k)!r})" for k in _RESUME_KEPT
              if k in recorded and asked.get(k) != recorded.get(k)]
    keys = {request_key(TrialRequest(**r)) for r in spec.get("requests") or []}
    extra = [r for r in todo if keys and request_key(r) not in keys]
    if differ or extra:
        what = "; ".join(differ + ([f"{len(extra)} trial(s) not in its grid, e.g. "
                                    f"{extra[0].workload} seed {extra[0].seed}"] if extra else []))
        raise SpecError(f"--resume {sweep_id[:8]}: the sweep was recorded with another budget or "
                        f"grid ({what}); resume it with its own options (its command is stored: "
                        "`curvebench runs --sweep ...`), or start a new sweep")
    done = finished_trials(db, sweep_id)
    return {i: TrialOutcome(request=request, result=done[request_key(request)], sweep_id=sweep_id)
            for i, request in enumerate(todo) if request_key(request) in done}


def requests_for(workloads: Sequence[str], submissions: Sequence[str],
                 hparams: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> list[TrialRequest]:
    """The grid's trials: workload outermost, then submission, hparams, seed."""
    return [TrialRequest(w, str(Path(s)), dict(h), seed)
            for w in workloads for s in submissions for h in hparams for seed in seeds]


def available_workloads(names: Sequence[str], data_dir: str | None = None
                        ) -> tuple[list[str], dict[str, str]]:
    """The workloads whose data is on this machine, and why each other one was skipped."""
    found, skipped = [], {}
    for name in names:
        workload = get_workload(name)
        try:
            load_dataset(workload, data_dir)
            found.append(name)
        except DataUnavailable as e:
            skipped[name] = str(e)
    return found, skipped
