"""Time to build `curvebench report` for many runs with curvature, side by side with few runs.

How the database is filled: a few real trials (mnist_mlp, offline MNIST sample, adam and
sgd, Hessian and GGN snapshots on a log schedule, training past the target so every curve
has its full length) are run once; then each of N report runs is a copy of one real run's
rows (the run row, eval rows, training losses, snapshots with their values and arrays)
under a new id, relabelled to one of 5 width variants x 4 submission names x seeds, with
its times scaled per submission so the performance profiles differ. Making 200 real trials
would take most of an hour on 2 CPU cores; what the report costs depends on the rows'
number and shape, which the copies keep. The copies are timing data only: their labels are
not what was trained.

Printed: seconds per phase (select + load rows, build figures, write SVG + HTML) for the
small and the full database, built one after the other in this process, and their ratio;
the write phase twice side by side: one figure after the other (`workers=1`) and in forked
workers (the default, one per CPU up to 4). The real trials train in a child process, so no
JAX backend runs in this one (the report forks its workers only then, as `curvebench report`).

Run: python benchmarks/report_build.py [--runs 200] [--small 20] [--steps 200]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from harness.curvature import SnapshotConfig, snapshot_callback, snapshot_steps
from harness.db import Database, Run, open_database
from harness.db.models import CurvatureArray, CurvatureSnapshot, CurvatureValue, EvalRow, TrainLosses
from harness.report import Filters, write_report
from harness.report.data import load_series, select_runs
from harness.report.figures import standard_sections
from harness.runner import run_trial
from harness.submissions import load_submission
from workloads import get_workload

REPO = Path(__file__).resolve().parent.parent
WIDTHS = (64, 128, 256, 512, 1024)
NAMES = (("adam", 1.0), ("adam_fast", 0.7), ("sgd", 1.6), ("momentum", 1.2))


def real_runs(db: Database, steps: int) -> list[str]:
    """Two real trials with Hessian and GGN snapshots: adam and sgd on mnist_mlp."""
    workload = get_workload("mnist_mlp")
    dataset = workload.load_data()
    config = SnapshotConfig(kinds=("hessian", "ggn"), curvature_batch=256, lanczos_order=20)
    ids = []
    for name in ("adam", "sgd"):
        submission = load_submission(REPO / "submissions" / name)
        callback = snapshot_callback(workload, dataset, config, db=db, hparams=submission.hparams,
                                     batch_size=workload.batch_size)
        result = run_trial(workload, submission, dataset, seed=0, db=db, max_steps=steps,
                           eval_every=max(1, steps // 20), stop_at_target=False,
                           snapshot_steps=snapshot_steps(f"init,log:4:{steps}", steps),
                           on_snapshot=callback)
        ids.append(result.run_id)
    return ids


def copy_runs(source: Database, target: Database, sources: list[str], count: int) -> None:
    """`count` copies of the source runs' rows under new ids and labels (see the docstring)."""
    with source.session() as s:
        runs = {r.id: r for r in s.scalars(select(Run).where(Run.id.in_(sources)))}
        evals = {i: s.scalars(select(EvalRow).where(EvalRow.run_id == i)).all() for i in sources}
        losses = {i: s.scalars(select(TrainLosses).where(TrainLosses.run_id == i)).all() for i in sources}
        snaps = {i: s.scalars(select(CurvatureSnapshot)
                              .options(selectinload(CurvatureSnapshot.values),
                                       selectinload(CurvatureSnapshot.arrays))
                              .where(CurvatureSnapshot.run_id == i)).all() for i in sources}
        columns = [c.key for c in Run.__table__.columns]
        with target.session() as t:
            for n in range(count):
                src = sources[n % len(sources)]
                width = WIDTHS[(n // len(sources)) % len(WIDTHS)]
                name, scale = NAMES[(n // (len(sources) * len(WIDTHS))) % len(NAMES)]
                new_id = str(uuid.uuid4())
                fields = {c: getattr(runs[src], c) for c in columns}
                fields.update(id=new_id, variant=f"mnist_mlp:width={width}", submission=name,
                              seed=n // (len(sources) * len(WIDTHS) * len(NAMES)),
                              time_to_target_s=(fields["time_to_target_s"] or 0) * scale or None,
                              train_s=fields["train_s"] * scale)
                t.add(Run(**fields))
                t.flush()  # the run row first: snapshots reference it, and no relationship says so
                t.add_all(EvalRow(run_id=new_id, step=e.step, split=e.split, metric=e.metric,
                                  value=e.value, wall_s=e.wall_s * scale, train_s=e.train_s * scale)
                          for e in evals[src])
                t.add_all(TrainLosses(run_id=new_id, start_step=x.start_step, count=x.count, data=x.data)
                          for x in losses[src])
                for x in snaps[src]:
                    snap = CurvatureSnapshot(run_id=new_id, step=x.step, kind=x.kind, compute_s=x.compute_s,
                                             includes_compile=x.includes_compile, config=x.config)
                    snap.values = [CurvatureValue(name=v.name, value=v.value) for v in x.values]
                    snap.arrays = [CurvatureArray(name=a.name, dtype=a.dtype, shape=a.shape, data=a.data)
                                   for a in x.arrays]
                    t.add(snap)


def timed_build(db: Database, out: Path) -> tuple[dict[str, float], int]:
    t0 = time.perf_counter()
    selection = select_runs(db, Filters())
    series = load_series(db, selection.runs)
    t1 = time.perf_counter()
    sections = standard_sections(selection.runs, series)
    t2 = time.perf_counter()
    write_report(out / "serial", "benchmark", sections, workers=1)
    t3 = time.perf_counter()
    sections = standard_sections(selection.runs, series)  # writing clears the figures it wrote
    t4 = time.perf_counter()
    write_report(out / "forked", "benchmark", sections)
    t5 = time.perf_counter()
    return ({"select + load": t1 - t0, "figures": t2 - t1, "write serial": t3 - t2,
             "write forked": t5 - t4, "total (forked)": (t1 - t0) + (t2 - t1) + (t5 - t4)},
            sum(len(s.figures) for s in sections))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200, help="steps of each real trial")
    parser.add_argument("--make-source", help=argparse.SUPPRESS)  # the child: train, print ids
    args = parser.parse_args()
    if args.make_source:
        print(" ".join(real_runs(open_database(f"sqlite:///{args.make_source}"), args.steps)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        made = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--make-source",
                               str(tmp / "real.db")], check=True, capture_output=True, text=True)
        sources = made.stdout.split()
        source = open_database(f"sqlite:///{tmp / 'real.db'}")
        results = {}
        for count in (args.small, args.runs):
            db = open_database(f"sqlite:///{tmp / f'copies{count}.db'}")
            copy_runs(source, db, sources, count)
            results[count] = timed_build(db, tmp / f"report{count}")
        snapshots = len(source.snapshots(sources[0]))
        print(f"report build, {len(sources)} real mnist_mlp trials of {args.steps} steps copied; "
              f"{snapshots} snapshots (hessian + ggn) per run")
        print(f"{'runs':>6}{'figures':>9}" + "".join(f"{k:>15}" for k in results[args.runs][0]))
        for count, (phases, figures) in results.items():
            print(f"{count:>6}{figures:>9}" + "".join(f"{v:>14.2f}s" for v in phases.values()))
        big, small = results[args.runs][0], results[args.small][0]
        print(f"ratio {args.runs}/{args.small} runs: " + ", ".join(
            f"{k} x{big[k] / small[k]:.2f}" for k in big))
        print(f"write serial / forked ({os.cpu_count()} CPUs): " + ", ".join(
            f"{count} runs x{p['write serial'] / p['write forked']:.2f}" for count, (p, _) in results.items()))


if __name__ == "__main__":
    main()
