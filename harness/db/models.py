"""SQLAlchemy 2.x typed models of the results database (schema owned by Alembic migrations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text,
                        UniqueConstraint, false, true)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from harness.records.status import RunOrigin, RunStatus

RUN_STATUSES = tuple(s.value for s in RunStatus)


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Run(Base):
    """One trial: workload variant x submission+hparams x seed, with its environment."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workload: Mapped[str] = mapped_column(String(128), index=True)
    variant: Mapped[str] = mapped_column(String(512), index=True)
    workload_version: Mapped[str] = mapped_column(String(64))
    submission: Mapped[str] = mapped_column(String(128), index=True)
    submission_path: Mapped[str] = mapped_column(Text)
    submission_hash: Mapped[str] = mapped_column(String(64))
    hparams: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    rng_derivation: Mapped[str] = mapped_column(Text)
    batch_size: Mapped[int] = mapped_column(Integer)
    max_steps: Mapped[int] = mapped_column(Integer)
    eval_every: Mapped[int] = mapped_column(Integer)
    chunk_mode: Mapped[str] = mapped_column(String(16))
    data_source: Mapped[str] = mapped_column(Text)
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    jax_version: Mapped[str] = mapped_column(String(32))
    jaxlib_version: Mapped[str] = mapped_column(String(32))
    backend: Mapped[str] = mapped_column(String(32))
    device_kind: Mapped[str] = mapped_column(String(128))
    xla_flags: Mapped[str] = mapped_column(Text, default="")
    git_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    environment: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True, default=RunStatus.RUNNING.value)
    steps_to_target: Mapped[int | None] = mapped_column(Integer, nullable=True)
    time_to_target_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    compile_s: Mapped[float] = mapped_column(Float, default=0.0)
    compiles: Mapped[int] = mapped_column(Integer, default=0)
    train_s: Mapped[float] = mapped_column(Float, default=0.0)
    eval_s: Mapped[float] = mapped_column(Float, default=0.0)
    final_step: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    host: Mapped[str] = mapped_column(String(256), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    origin: Mapped[str] = mapped_column(String(16), index=True, default=RunOrigin.RUN.value,
                                        server_default=RunOrigin.RUN.value)
    tag: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)
    #: sweeps.id; no foreign key, so that adding the column never rebuilds `runs` on SQLite
    sweep_id: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    #: trials in the one compiled program this run trained in (1: timed alone)
    group_size: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    stop_at_target: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    divergence_factor: Mapped[float | None] = mapped_column(Float, nullable=True)
    compile_cache_hit: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    #: AlgoPerf's time-to-target: training + its compilation + prepare_for_eval, not evals
    algoperf_time_to_target_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: {"k": k, "seed": seed} of the search-space point the hparams came from (None: hparams.json)
    search_point: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    #: {name: value} of hyperparameters the workload ignored, as AlgoPerf's own does (a dropout
    #: rate on a model without dropout); None: none
    ignored_hparams: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: the step the last resume of this run continued from (None: never resumed)
    resumed_from_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: folder of the latest checkpoint of this run's compiled program (harness/checkpoint.py);
    #: None: none written yet, or deleted when the run finished
    checkpoint_path: Mapped[str | None] = mapped_column(Text, nullable=True)

    evals: Mapped[list[EvalRow]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                order_by="EvalRow.step")


class EvalRow(Base):
    """One metric of one evaluation of a run."""

    __tablename__ = "eval_rows"
    __table_args__ = (UniqueConstraint("run_id", "step", "split", "metric"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)  # NULL: NaN/inf (diverged)
    wall_s: Mapped[float] = mapped_column(Float)
    train_s: Mapped[float] = mapped_column(Float)

    run: Mapped[Run] = relationship(back_populates="evals")


class Sweep(Base):
    """A grid of trials launched by one command; its runs carry its id."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)
    command: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrainLosses(Base):
    """Training losses of consecutive steps, compactly: `count` little-endian float32 values,
    value i being the loss update_params reported at (0-based) step start_step + i."""

    __tablename__ = "train_losses"
    __table_args__ = (UniqueConstraint("run_id", "start_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    start_step: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class CurvatureSnapshot(Base):
    """One curvature snapshot (Hessian, GGN or gradient covariance) of a run at a step."""

    __tablename__ = "curvature_snapshots"
    __table_args__ = (UniqueConstraint("run_id", "step", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(128))
    compute_s: Mapped[float] = mapped_column(Float)
    includes_compile: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    values: Mapped[list[CurvatureValue]] = relationship(cascade="all, delete-orphan")
    arrays: Mapped[list[CurvatureArray]] = relationship(cascade="all, delete-orphan")


class CurvatureValue(Base):
    """A scalar curvature metric (queryable as a row)."""

    __tablename__ = "curvature_values"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("curvature_snapshots.id", ondelete="CASCADE"),
                                             index=True)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)


class CurvatureArray(Base):
    """An array of a snapshot (tridiagonal, Ritz values, density) with its dtype and shape."""

    __tablename__ = "curvature_arrays"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("curvature_snapshots.id", ondelete="CASCADE"),
                                             index=True)
    name: Mapped[str] = mapped_column(String(64))
    dtype: Mapped[str] = mapped_column(String(16))
    shape: Mapped[list[int]] = mapped_column(JSON)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ReferenceSet(Base):
    """Reference runs of one workload variant x submission (code + hparams) x hardware class x precision."""

    __tablename__ = "reference_sets"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    workload: Mapped[str] = mapped_column(String(128), index=True)
    variant: Mapped[str] = mapped_column(String(512), index=True)
    workload_version: Mapped[str] = mapped_column(String(64))
    submission: Mapped[str] = mapped_column(String(128), index=True)
    submission_hash: Mapped[str] = mapped_column(String(64))
    hparams: Mapped[dict[str, Any]] = mapped_column(JSON)
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(32))
    device_kind: Mapped[str] = mapped_column(String(128))
    precision: Mapped[str] = mapped_column(String(16))
    steps_tolerance: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    members: Mapped[list[ReferenceSetRun]] = relationship(cascade="all, delete-orphan")


class ReferenceSetRun(Base):
    """Membership of a run in a reference set; a referenced run cannot be deleted (RESTRICT)."""

    __tablename__ = "reference_set_runs"

    set_id: Mapped[str] = mapped_column(ForeignKey("reference_sets.id", ondelete="CASCADE"),
                                        primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="RESTRICT"), primary_key=True,
                                        index=True)
