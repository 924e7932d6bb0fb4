"""Curvature engine: Hessian / GGN / gradient-covariance products, Lanczos, SLQ, metrics, snapshots."""

from harness.curvature.lanczos import LanczosResult, lanczos
from harness.curvature.recorder import snapshot_callback
from harness.curvature.schedule import DEFAULT_SCHEDULE, ScheduleError, snapshot_steps
from harness.curvature.snapshot import KINDS, SnapshotConfig, Snapshotter, SnapshotResult
from harness.curvature.trace import TraceMethod

__all__ = ["LanczosResult", "lanczos", "snapshot_callback", "DEFAULT_SCHEDULE", "ScheduleError",
           "snapshot_steps", "KINDS", "SnapshotConfig", "Snapshotter", "SnapshotResult", "TraceMethod"]
