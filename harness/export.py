"""Export selected runs as flat tables for pandas, R or a spreadsheet: `curvebench export`.

Four tables, one file each in the output directory (`Table`; columns in
docs/results-schema.md, which a test keeps complete):

- `runs`: every column of the `runs` table, JSON columns (hparams, environment,
  search_point) as JSON text, plus one column `hparams.NAME` per hyperparameter name;
- `evals`: every eval row (run_id, step, split, metric, value, wall_s, train_s);
- `losses`: the per-step training losses, decoded from `train_losses` (run_id, step, loss);
- `curvature`: every scalar curvature value with its snapshot (run_id, snapshot_id, step,
  kind, name, value, compute_s, includes_compile).

The tables are pandas DataFrames: CSV is written by pandas, Parquet by pandas through pyarrow
or fastparquet. pandas and pyarrow are the `export` extra (kept out of the core install);
without them the command is refused with a one-line error naming the extra.
"""

from __future__ import annotations

import enum
import importlib.util
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from harness import output_dir
from harness.db import Database, Run
from harness.db.models import CurvatureSnapshot, CurvatureValue, EvalRow, TrainLosses
from harness.errors import ExportError
from harness.runs_query import RunFilter, find_runs

if TYPE_CHECKING:
    import pandas as pd

#: ids per IN (...) query: below SQLite's default limit on bound parameters
ID_CHUNK = 500
JSON_COLUMNS = ("hparams", "environment", "search_point")
HPARAM_PREFIX = "hparams."


class Format(enum.Enum):
    CSV = "csv"
    PARQUET = "parquet"


class Table(enum.Enum):
    RUNS = "runs"
    EVALS = "evals"
    LOSSES = "losses"
    CURVATURE = "curvature"


EVAL_COLUMNS = ("run_id", "step", "split", "metric", "value", "wall_s", "train_s")
LOSS_COLUMNS = ("run_id", "step", "loss")
CURVATURE_COLUMNS = ("run_id", "snapshot_id", "step", "kind", "name", "value", "compute_s",
                     "includes_compile")


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), ID_CHUNK):
        yield list(ids[i:i + ID_CHUNK])


def runs_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: every column of `runs`, JSON columns as JSON text, and one
    `hparams.NAME` column per hyperparameter name (empty where a run lacks it)."""
    import pandas as pd

    columns = [c.name for c in Run.__table__.columns]
    rows = []
    for r in runs:
        row = {c: getattr(r, c) for c in columns}
        for c in JSON_COLUMNS:
            row[c] = None if row[c] is None else json.dumps(row[c], sort_keys=True, default=str)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=columns)
    names = list(dict.fromkeys(k for r in runs for k in r.hparams))
    for name in names:
        frame[HPARAM_PREFIX + name] = _column([r.hparams.get(name) for r in runs])
    return frame


def _column(values: list) -> pd.Series:
    """One hyperparameter's values: numbers, strings or booleans as themselves when all are
    of one kind (None where missing), else JSON text, so every Parquet column has one type."""
    import pandas as pd

    kinds = {"number" if isinstance(v, (int, float)) and not isinstance(v, bool)
             else type(v).__name__ for v in values if v is not None}
    if len(kinds) > 1 or kinds & {"dict", "list"}:
        values = [None if v is None else json.dumps(v, sort_keys=True) for v in values]
    return pd.Series(values)


def evals_frame(db: Database, run_ids: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    with db.session() as s:
        for chunk in _chunks(run_ids):
            rows += s.execute(select(*(getattr(EvalRow, c) for c in EVAL_COLUMNS))
                              .where(EvalRow.run_id.in_(chunk))
                              .order_by(EvalRow.run_id, EvalRow.step, EvalRow.split,
                                        EvalRow.metric)).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=list(EVAL_COLUMNS))


def losses_frame(db: Database, run_ids: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    parts = []
    with db.session() as s:
        for chunk in _chunks(run_ids):
            for row in s.scalars(select(TrainLosses).where(TrainLosses.run_id.in_(chunk))
                                 .order_by(TrainLosses.run_id, TrainLosses.start_step)):
                values = np.frombuffer(row.data, "<f4", count=row.count).astype(np.float64)
                parts.append(pd.DataFrame({"run_id": row.run_id,
                                           "step": row.start_step + np.arange(row.count),
                                           "loss": values}))
    if not parts:
        return pd.DataFrame(columns=list(LOSS_COLUMNS))
    return pd.concat(parts, ignore_index=True)


def curvature_frame(db: Database, run_ids: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    with db.session() as s:
        for chunk in _chunks(run_ids):
            rows += s.execute(
                select(CurvatureSnapshot.run_id, CurvatureSnapshot.id, CurvatureSnapshot.step,
                       CurvatureSnapshot.kind, CurvatureValue.name, CurvatureValue.value,
                       CurvatureSnapshot.compute_s, CurvatureSnapshot.includes_compile)
                .join(CurvatureValue, CurvatureValue.snapshot_id == CurvatureSnapshot.id)
                .where(CurvatureSnapshot.run_id.in_(chunk))
                .order_by(CurvatureSnapshot.run_id, CurvatureSnapshot.step,
                          CurvatureSnapshot.kind, CurvatureValue.name)).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=list(CURVATURE_COLUMNS))


def frames(db: Database, filters: RunFilter = RunFilter()) -> dict[Table, pd.DataFrame]:
    """The four tables of the runs matching `filters`."""
    runs = find_runs(db, filters)
    ids = [r.id for r in runs]
    return {Table.RUNS: runs_frame(runs), Table.EVALS: evals_frame(db, ids),
            Table.LOSSES: losses_frame(db, ids), Table.CURVATURE: curvature_frame(db, ids)}


def parquet_engine() -> str:
    """The installed Parquet engine pandas will use; ExportError naming the extra if none."""
    for engine in ("pyarrow", "fastparquet"):
        if importlib.util.find_spec(engine) is not None:
            return engine
    raise ExportError("Parquet export needs pyarrow or fastparquet: pip install -e '.[export]' "
                      "(or use --format csv)")


def _require_pandas() -> None:
    if importlib.util.find_spec("pandas") is None:
        raise ExportError("export writes its tables with pandas: pip install -e '.[export]'")


def export(db: Database, out_dir: str | Path, fmt: Format = Format.CSV,
           filters: RunFilter = RunFilter(), *, force: bool = False) -> dict[Table, Path]:
    """Write runs, evals, losses and curvature of the selected runs to `out_dir` (created),
    one file per table named TABLE.csv or TABLE.parquet; returns the paths written. A file of
    those names curvebench did not write is refused (harness.output_dir), unless `force`."""
    _require_pandas()
    engine = parquet_engine() if fmt is Format.PARQUET else None
    out = output_dir.claim(out_dir, [f"{t.value}.{fmt.value}" for t in Table], force=force)
    written = {}
    for table, frame in frames(db, filters).items():
        path = out / f"{table.value}.{fmt.value}"
        if fmt is Format.CSV:
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False, engine=engine)
        written[table] = path
    return written
