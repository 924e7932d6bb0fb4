"""Mirror stored runs to MLflow (`--mlflow URI`; the `mlflow` extra).

Each curvebench run becomes one MLflow run in experiment `curvebench` (or the one given),
read back from the results database after the trial finished:

- params: the full hyperparameters under their own names, and the run's settings
  (harness.runs_query.SETTINGS) as `setting.NAME`;
- metrics with their step: every eval value as `SPLIT/METRIC` (e.g. `validation/accuracy`;
  values stored as NULL, i.e. not finite, are left out), every training loss as
  `train/loss` (non-finite losses kept as NaN/inf, as stored), every scalar curvature value
  as `curvature/KIND/NAME` (characters MLflow refuses in a key, e.g. `@` and `*` of a
  parameter pattern, become `_`), and the outcome (`steps_to_target`, `time_to_target_s`,
  `compile_s`, `final_step`, ...) at step 0 where it is set;
- tags: `curvebench.run_id`, `.workload`, `.variant`, `.submission`, `.seed`, `.status`,
  `.origin`, `.sweep_id`, `.sweep`, `.tag`, `.submission_hash`, `.git_commit`; the
  run name is "VARIANT / SUBMISSION / seed N"; the MLflow status is FINISHED for a run that
  finished (reached, not_reached, diverged), FAILED for a failed one, KILLED for an
  interrupted one; start and end times are the run's.

A run already mirrored to the experiment (same `curvebench.run_id` tag) is not mirrored
again. `MlflowMirror` is a sweep event sink (harness.experiment.run_sweep's `on_event`):
every trial of a finished group is mirrored as the group finishes; a tracker that fails
mid-sweep costs the mirror, never the sweep (the failure is kept in `failures`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.db import Database, open_database
from harness.errors import TrackingError, one_line
from harness.runs_query import run_detail
from harness.records.status import RunStatus

DEFAULT_EXPERIMENT = "curvebench"
TAG_PREFIX = "curvebench."
#: MLflow's batch limit on metrics per log_batch call
METRIC_BATCH = 1000
#: what MLflow allows in a metric key (others become "_")
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. :/]")
_STATUS = {RunStatus.REACHED: "FINISHED", RunStatus.NOT_REACHED: "FINISHED",
           RunStatus.DIVERGED: "FINISHED", RunStatus.FAILED: "FAILED",
           RunStatus.INTERRUPTED: "KILLED"}
#: outcome fields logged once, at step 0
OUTCOME_METRICS = ("steps_to_target", "time_to_target_s", "algoperf_time_to_target_s",
                   "final_step", "compile_s", "compiles", "train_s", "eval_s")


def _mlflow():
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise TrackingError("--mlflow needs the mlflow package: pip install -e '.[mlflow]'") from None
    return MlflowClient, Metric, Param, RunTag, MlflowException


#: opening the mirror: one HTTP try of at most this many seconds (MLflow's default: 7 retries
#: with backoff, 120 s each), so a wrong URI is told before anything trains, not minutes later
OPEN_TIMEOUT_S = 10


def check_uri(uri: str) -> None:
    """TrackingError (one line) for a URI that cannot be a tracking store, told before MLflow
    is asked: blank; http(s) with no server listening at its host and port; a local path
    (plain or file://) that is a file; sqlite:/// below a file, or naming a folder."""
    parsed = urllib.parse.urlparse(uri)
    if not uri.strip():
        raise TrackingError("--mlflow '' names no tracking store: give e.g. sqlite:///mlflow.db "
                            "or http://HOST:5000")
    if parsed.scheme in ("http", "https"):
        host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            socket.create_connection((host, port), timeout=OPEN_TIMEOUT_S).close()
        except (OSError, ValueError) as e:
            why = getattr(e, "strerror", None) or one_line(str(e))
            raise TrackingError(f"MLflow at {uri}: no server answers at {host}:{port} ({why}); "
                                "start one (mlflow server) or give sqlite:///mlflow.db") from None
        return
    if parsed.scheme == "sqlite":
        path = Path(parsed.path[1:])  # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
        above = next((p for p in path.parents if p.exists()), None)  # MLflow creates the rest
        if parsed.path[1:] and above is not None and not above.is_dir():
            raise TrackingError(f"MLflow at {uri}: {above} is a file, not a folder; give "
                                "sqlite:///PATH in a folder")
        if path.is_dir():
            raise TrackingError(f"MLflow at {uri}: {path} is a folder; give a file path")
        return
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme == "file" else uri).expanduser()
        if path.exists() and not path.is_dir():
            raise TrackingError(f"MLflow at {uri}: {path} is a file; give sqlite:///{path} for "
                                "an MLflow database there, or a server's http:// URI")


@contextlib.contextmanager
def _one_try():
    """MLflow's HTTP requests made inside: one try of OPEN_TIMEOUT_S (unless the environment
    sets them)."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                                             "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(OPEN_TIMEOUT_S))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def metric_key(*parts: str) -> str:
    return "/".join(_KEY_CHARS.sub("_", p) for p in parts)


@dataclasses.dataclass
class MlflowMirror:
    """Mirrors runs of the results database `db_url` to the MLflow tracking server or store
    `uri`, in `experiment`. Opening it checks the URI and creates the experiment, so a bad
    URI fails before anything trains (TrackingError)."""

    uri: str
    db_url: str
    experiment: str = DEFAULT_EXPERIMENT
    mirrored: dict[str, str] = dataclasses.field(default_factory=dict)
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        client_cls, *_, error = _mlflow()
        check_uri(self.uri)
        try:
            with _one_try():
                self._client = client_cls(tracking_uri=self.uri)
                found = self._client.get_experiment_by_name(self.experiment)
                self._experiment_id = (found.experiment_id if found is not None
                                       else self._client.create_experiment(self.experiment))
        except (error, OSError, ValueError) as e:
            raise TrackingError(f"MLflow at {self.uri}: {one_line(str(e))}") from None
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = open_database(self.db_url)
        return self._db

    def __call__(self, event: Any) -> None:
        """Sweep event sink: mirror every trial of a finished group."""
        from harness.records.sweep import GroupFinished

        if isinstance(event, GroupFinished):
            for outcome in event.outcomes:
                self.mirror_safely(outcome.result.run_id)

    def mirror_safely(self, run_id: str) -> str | None:
        """mirror(), keeping a failure in `failures` instead of raising it."""
        *_, error = _mlflow()
        try:
            return self.mirror(run_id)
        except (error, OSError, ValueError) as e:
            self.failures.append((run_id, one_line(str(e))))
            return None

    def existing(self, run_id: str) -> str | None:
        """The MLflow run id this curvebench run was mirrored to before, if any."""
        found = self._client.search_runs([self._experiment_id],
                                         filter_string=f"tags.`{TAG_PREFIX}run_id` = '{run_id}'",
                                         max_results=1)
        return found[0].info.run_id if found else None

    def mirror(self, run_id: str) -> str:
        """Mirror one stored run (id or unique prefix); returns its MLflow run id."""
        _, metric_cls, param_cls, tag_cls, _ = _mlflow()
        detail = run_detail(self.db, run_id)
        known = self.mirrored.get(detail.id) or self.existing(detail.id)
        if known is not None:
            self.mirrored[detail.id] = known
            return known
        settings, outcome = detail.settings, detail.outcome
        start_ms = _ms(outcome["started_at"])
        tags = {"mlflow.runName": f"{settings['variant']} / {settings['submission']} / "
                                  f"seed {settings['seed']}"}
        tags.update({TAG_PREFIX + k: str(v) for k, v in {
            "run_id": detail.id, "workload": settings["workload"], "variant": settings["variant"],
            "submission": settings["submission"], "seed": settings["seed"],
            "status": outcome["status"], "origin": settings["origin"],
            "sweep_id": settings["sweep_id"], "sweep": detail.sweep_name, "tag": settings["tag"],
            "submission_hash": settings["submission_hash"],
            "git_commit": detail.environment.get("git_commit")}.items() if v is not None})
        run = self._client.create_run(self._experiment_id, start_time=start_ms, tags=tags)
        mlflow_id = run.info.run_id
        params = dict(detail.hparams)
        params.update({f"setting.{k}": v for k, v in settings.items() if v is not None})
        metrics = list(self._metrics(detail, metric_cls, start_ms))
        param_list = [param_cls(k, str(v)) for k, v in params.items()]
        self._client.log_batch(mlflow_id, params=param_list[:100],
                               tags=[tag_cls(k, v) for k, v in tags.items()])
        for i in range(100, len(param_list), 100):
            self._client.log_batch(mlflow_id, params=param_list[i:i + 100])
        for i in range(0, len(metrics), METRIC_BATCH):
            self._client.log_batch(mlflow_id, metrics=metrics[i:i + METRIC_BATCH])
        end = outcome["finished_at"]
        self._client.set_terminated(mlflow_id, _STATUS.get(outcome["status"], "FINISHED"),
                                    end_time=None if end is None else _ms(end))
        self.mirrored[detail.id] = mlflow_id
        return mlflow_id

    def _metrics(self, detail, metric_cls, start_ms: int) -> Iterable[Any]:
        for point in detail.evals:
            stamp = start_ms + int(point.train_s * 1000)
            for key, value in point.values.items():
                if value is not None:
                    yield metric_cls(metric_key(*key.split("/", 1)), value, stamp, point.step)
        steps, losses = self.db.losses(detail.id)
        for step, loss in zip(steps.tolist(), losses.tolist()):
            yield metric_cls("train/loss", float(loss), start_ms, int(step))
        for snap in detail.snapshots:
            for name, value in snap.metrics.items():
                if value is not None:
                    yield metric_cls(metric_key("curvature", snap.kind, name), value, start_ms,
                                     snap.step)
        for name in OUTCOME_METRICS:
            value = detail.outcome.get(name)
            if value is not None:
                yield metric_cls(name, float(value), start_ms, 0)


def mirror_runs(run_ids: Sequence[str], uri: str, db_url: str,
                experiment: str = DEFAULT_EXPERIMENT) -> MlflowMirror:
    """Mirror these stored runs; the returned mirror says which MLflow run each became
    (`mirrored`) and which failed (`failures`)."""
    mirror = MlflowMirror(uri, db_url, experiment)
    for run_id in run_ids:
        mirror.mirror_safely(run_id)
    return mirror


def _ms(t) -> int:
    import datetime as dt

    if t.tzinfo is None:  # SQLite hands back naive datetimes; the database stores UTC
        t = t.replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp() * 1000)
