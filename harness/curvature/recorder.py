"""The runner's `on_snapshot` callback: snapshot on schedule, write rows to the results DB.

Built once per trial (the fixed curvature data is drawn and put on the device
here, not at each snapshot); each kind's compute time is measured on its own
and stored beside the metrics, apart from the trial's training time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.curvature.snapshot import SnapshotConfig, Snapshotter, SnapshotResult
from harness.spec import Dataset, Workload


def snapshot_callback(workload: Workload, dataset: Dataset, config: SnapshotConfig, *,
                      batch_size: int, hparams: Mapping[str, Any] | None = None, db: Any = None,
                      sink: Callable[[str, int, SnapshotResult], None] | None = None
                      ) -> Callable[[str, int, Any, Any], None]:
    """on_snapshot(run_id, step, params, model_state) for `run_trial`.

    Each result goes to `db.add_snapshot` (if a database is given) and to `sink`
    (if given, e.g. to print progress or collect results in memory).
    """
    snapshotter = Snapshotter(workload, dataset, config, batch_size=batch_size, hparams=hparams)
    stored_config = config.to_json()

    def on_snapshot(run_id: str, step: int, params: Any, model_state: Any) -> None:
        for result in snapshotter.snapshot(params, model_state):
            if db is not None:
                db.add_snapshot(run_id, step, result.kind, result.compute_s, result.metrics,
                                result.arrays, stored_config,
                                includes_compile=result.includes_compile)
            if sink is not None:
                sink(run_id, step, result)

    return on_snapshot
