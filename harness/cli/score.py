"""`curvebench score` (a submission on each workload, scored against the database) and
`curvebench tune` (AlgoPerf's external-tuning ruleset)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from harness import grid as grids
from harness.cli.app import CommandLineError, app, err, open_db, out, styled
from harness.cli.options import (CompileCacheOpt, DataDirOpt, DbOpt, EvalEveryOpt, HparamOpt, refuse_with,
                                 JsonOpt, MaxStepsOpt, MlflowOpt, QuietOpt, trial_options)
from harness.cli.output import fmt_s, fmt_steps, print_json, make_table
from harness.cli.training import (command_line, mirror_report, mlflow_mirror, parse_single,
                                  sweep_with_progress)


@app.command("score")
def score_cmd(
    ctx: typer.Context,
    submission: Annotated[str, typer.Argument(help="built-in submission name (adam, sgd, ...) or folder")],
    workloads: Annotated[list[str], typer.Option(
        help="workload variants: repeat the option or separate them with ';' (',' separates one "
             "variant's knobs), e.g. 'mnist_mlp:width=200,activation=gelu;fashion_mnist_mlp' "
             "(default: every registered workload whose data is here, toy problems excepted)")] = [],
    seeds: Annotated[int, typer.Option(min=1)] = 3,
    db: DbOpt = None,
    data_dir: Annotated[Optional[str], typer.Option(help="dataset directory (single-workload scoring)")] = None,
    hparam: HparamOpt = [],
    compile_cache: CompileCacheOpt = None,
    sweep: Annotated[Optional[str], typer.Option(
        help="score the runs of this sweep (name or id) instead of training")] = None,
    tag: Annotated[Optional[str], typer.Option(
        help="tag the runs made now, and compare only runs with this tag")] = None,
    origins: Annotated[str, typer.Option(
        help="which runs to compare (no --sweep/--tag): comma-separated origins among "
             "score, run, sweep, check, analysis")] = "score",
    timing: Annotated[str, typer.Option(
        help="which time-to-target to compare: 'training' (training steps only) or 'algoperf' "
             "(AlgoPerf's: + compilation and prepare_for_eval; see harness/score.py)")] = "training",
    mlflow: MlflowOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """The main job: run a submission on each workload (each trial timed alone), then score
    it against the database.

    Compares declared sets of runs: by default those `score` made (all seeds of one
    code+hparams per submission), or a --sweep, or a --tag; prints where each time comes from.
    """
    specs = grids.parse_workload_list(workloads)
    overrides = parse_single("", hparam, "score")
    database = open_db(db, create=sweep is None)
    from harness import score as scoring
    from harness.db import RunOrigin
    from harness.experiment import available_workloads, requests_for
    from workloads import REGISTRY

    try:
        chosen = tuple(RunOrigin(o.strip()) for o in origins.split(",") if o.strip())
    except ValueError as e:
        raise CommandLineError(f"--origins: {e}; valid: "
                               f"{', '.join(o.value for o in RunOrigin)}") from None
    sweep_id = scoring.resolve_sweep(database, sweep) if sweep else None
    refuse_with(ctx, "sweep", ("workloads", "seeds", "data_dir", "hparam", "compile_cache", "tag",
                               "origins", "mlflow"),
                "--sweep scores the runs that sweep holds, as they were made; drop them")
    selection = scoring.RunSelection(origins=chosen, sweep_id=sweep_id, tag=tag)
    try:
        clock = scoring.Timing(timing)
    except ValueError:
        raise CommandLineError(f"--timing {timing!r}: valid: "
                               f"{', '.join(t.value for t in scoring.Timing)}") from None
    skipped: dict[str, str] = {}
    summaries: list[scoring.WorkloadSummary] = []
    mirror = mlflow_mirror(mlflow, database.url)
    if sweep:
        variants = scoring.selected_variants(database, selection)
        name = Path(submission).name
    else:
        if not specs:
            specs, skipped = available_workloads(
                sorted(n for n, cls in REGISTRY.items() if cls.scored_by_default), data_dir)
            for skipped_name, why in skipped.items():
                err.print(styled(f"skipping {skipped_name}:", "yellow", why), highlight=False)
        if not specs:
            raise CommandLineError("no workload to score: none has its data here (see the "
                                   "messages above)")
        result = sweep_with_progress(
            requests_for(specs, [submission], [overrides], grids.seed_range(0, seeds)),
            trial_options("score", tag=tag), database.url, quiet=quiet or as_json,
            command=command_line(ctx), data_dir=data_dir, timed_alone=True,
            compile_cache=compile_cache, mirror=mirror)
        summaries = scoring.summarize_trials(t.result for t in result.trials)
        variants = scoring.summarized_variants(database, summaries)
        name = result.trials[0].result.submission
    if not variants:
        raise CommandLineError(f"no finished runs of {selection.describe()} in {database.url}")
    scored = scoring.score_table(database, variants, selection, clock)
    mirror_report(mirror, [run_id for rs in scored.sets for run_id in rs.run_ids])
    if as_json:
        print_json({"submission": name, "workloads": [s.to_json() for s in summaries],
                    "skipped": skipped, **scored.to_json()})
        return
    if summaries:
        seeds_table = make_table(f"score: {name}", ("workload", "reached",
                                                     "median steps to target",
                                                     "median time to target (s)"))
        for row in summaries:
            seeds_table.add_row(row.workload, f"{row.reached}/{row.seeds}",
                                fmt_steps(row.median_steps_to_target),
                                fmt_s(row.median_time_to_target_s))
        out.print(seeds_table)
    compared_table = make_table(
        f"{clock.value} times compared ({selection.describe()}; one code+hparams per "
        "submission, one run per seed)",
        ("submission", "workload", "median time (s)", "seeds", "code", "hparams", "runs"))
    for rs in sorted(scored.sets, key=lambda rs: (rs.variant, rs.submission)):
        compared_table.add_row(rs.submission, rs.variant, fmt_s(rs.time_s), str(len(rs.seeds)),
                               rs.submission_hash[:8], json.dumps(rs.hparams, sort_keys=True),
                               ", ".join(r[:8] for r in rs.run_ids))
    out.print(compared_table)
    if len(scored.scores) > 1:
        prof = make_table(f"performance-profile score (tau_max={scoring.TAU_MAX:g}; 1 = "
                          "fastest everywhere)", ("submission", "score (exact integral)",
                                                  "AlgoPerf v0.6 score (trapezoid)"))
        for sub, value in sorted(scored.scores.items(), key=lambda kv: -kv[1]):
            prof.add_row(sub, f"{value:.3f}", f"{scored.algoperf_scores[sub]:.3f}",
                         style="bold" if sub == name else None)
        out.print(prof)
    else:
        out.print("no other submission has results on these workloads yet: "
                  "score other submissions into the same --db to get performance profiles")
    out.print(f"results in {database.url}")


@app.command()
def tune(
    ctx: typer.Context,
    submission: Annotated[str, typer.Argument(help="AlgoPerf-format submission folder "
                                              "(submission.py + tuning_search_space.json)")],
    workloads: Annotated[list[str], typer.Option(
        help="workload variants: repeat the option or separate them with ';'")] = [],
    ruleset: Annotated[str, typer.Option(help="'external-tuning' (AlgoPerf v0.6: 5 trials x 3 "
                                         "studies) or 'self-tuning' (no search space, 1 trial "
                                         "per study, 1.5x step budget)")] = "external-tuning",
    trials: Annotated[Optional[int], typer.Option(min=1, help="search-space points per study "
                                                  "(default: the ruleset's, 5)")] = None,
    studies: Annotated[Optional[int], typer.Option(min=1, help="studies (study s: trial seed s, "
                                                   "points drawn under search seed + s; "
                                                   "default: the ruleset's, 3)")] = None,
    search_seed: Annotated[int, typer.Option(min=0, help="seed of the quasi-random points")] = 0,
    timing: Annotated[str, typer.Option(help="'algoperf' (AlgoPerf's time-to-target) or 'training'")] = "algoperf",
    max_steps: MaxStepsOpt = None,
    eval_every: EvalEveryOpt = None,
    tag: Annotated[str, typer.Option(help="runs of study s are tagged TAG-studyS")] = "tune",
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """AlgoPerf v0.6's rulesets. External tuning (default): per study, N points of the search
    space trained once each (timed alone); per workload the fastest trial of each study, the
    median over studies. Self-tuning: no search space, one run per study with 1.5x the step
    budget. Then performance-profile scores by the suite's exact integral and AlgoPerf's
    trapezoid rule."""
    specs = grids.parse_workload_list(workloads)
    database = open_db(db, create=True)
    from harness.algoperf.tuning import budget_steps, ruleset as find_ruleset, tune as run_tuning

    rules = find_ruleset(ruleset)
    trials = rules.trials if trials is None else trials
    studies = rules.studies if studies is None else studies

    def run_study(requests, study, budget_factor=1.0):
        steps = (max_steps if budget_factor == 1.0
                 else budget_steps(requests[0].workload, max_steps, budget_factor))
        return sweep_with_progress(
            requests, trial_options("sweep", max_steps=steps, eval_every=eval_every,
                                    tag=f"{tag}-{study}"),
            database.url, quiet=quiet or as_json, command=command_line(ctx),
            name=f"{tag}-{study}", data_dir=data_dir, timed_alone=True)

    result = run_tuning(submission, specs, trials, studies, run_study, timing=timing,
                        search_seed=search_seed, rules=rules)
    if as_json:
        print_json(result.to_json())
        return
    per_workload = make_table(f"tune: {result.submission} ({result.ruleset}, {timing} time; "
                              f"{studies} studies x {result.trials_per_study} trials)",
                              ("workload", "fastest trial per study (s)",
                               "median over studies (s)"))
    for w, per_study in result.study_times.items():
        per_workload.add_row(w, ", ".join(fmt_s(t) for t in per_study),
                             fmt_s(result.times[result.submission][w]))
    out.print(per_workload)
    prof = make_table("performance-profile score (suite: exact integral; AlgoPerf: trapezoid rule)",
                      ("submission", "suite", "AlgoPerf"))
    for sub, value in result.suite_scores.items():
        prof.add_row(sub, f"{value:.3f}", f"{result.algoperf_scores[sub]:.3f}")
    out.print(prof)
    out.print(f"results in {database.url} (tags {tag}-study0..{studies - 1})")
