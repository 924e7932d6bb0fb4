"""Reference result sets: freeze runs of the database into a set, export/import sets as text.

A reference *set* groups finished runs that share a key: workload variant + version
hash, submission + code hash + hparams, data fingerprint, hardware class (backend +
device kind) and precision. On disk a set is one JSON Lines file: a header line describing the set, then one JSON record
per run (its row, eval curve, curvature scalars, environment and hashes), reviewable in a diff.
The shipped sets are package data (`SHIPPED_DIR`), read from any installation; `export`
writes only to a directory the caller names, never into the installed package.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from harness.db import Database, DatabaseError
from harness.db.models import (CurvatureSnapshot, CurvatureValue, EvalRow, ReferenceSet,
                               ReferenceSetRun, Run)
from harness import output_dir
from harness.errors import RefsError
from harness.records.status import FINISHED, RunStatus
from workloads import REGISTRY

FORMAT = "curvebench.reference_set"
FORMAT_VERSION = 1
#: the reference sets shipped with curvebench: `reference_results/` beside the `harness` package
#: (the checkout's top level, or site-packages for a wheel install); read, never written by export
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "reference_results"
#: fields that must be equal for runs to share a set (SetKey), in file order
KEY_FIELDS = ("workload", "variant", "workload_version", "submission", "submission_hash", "hparams",
              "data_fingerprint", "backend", "device_kind", "precision")
#: step-defining settings every run of a set shares (and a candidate must share with them,
#: `harness.check.tiers.comparability`): runs of other budgets or eval intervals cannot be one set
SETTINGS = ("batch_size", "eval_every", "max_steps", "rng_derivation")
#: relative steps-to-target difference a check tolerates even when significant, per workload
#: (recorded in a set at freeze time; `curvebench check` never goes below one eval interval)
_RUN_COLUMNS = tuple(c.name for c in Run.__table__.columns)
_DATETIME_COLUMNS = ("started_at", "heartbeat_at", "finished_at")
#: non-nullable columns added to `runs` after reference files were first written, and the
#: value a run written before them has (what the migration gives existing rows); a nullable
#: column a file lacks is NULL, as the migration leaves it
_ADDED_COLUMN_DEFAULTS = {"origin": "run", "tag": None, "sweep_id": None, "group_size": 1,
                          "stop_at_target": True, "divergence_factor": None,
                          "compile_cache_hit": None}


#: a set id becomes a file name: letters, digits and _.=+- only, no "..", bounded length
SET_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=+-]*")
MAX_SET_ID = 200
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def check_set_id(set_id: Any, where: str) -> str:
    """A set id that is safe as a file name (no path separators, no "..", at most MAX_SET_ID
    characters); raise RefsError naming `where` otherwise."""
    if (not isinstance(set_id, str) or not SET_ID_PATTERN.fullmatch(set_id) or ".." in set_id
            or len(set_id) > MAX_SET_ID):
        shown = repr(set_id) if len(repr(set_id)) < 80 else repr(set_id)[:77] + "..."
        raise RefsError(f"{where}: set id {shown} is not allowed: use at most {MAX_SET_ID} letters, "
                        "digits and _.=+- (no path separators, no '..'), as `curvebench refs freeze` makes")
    return set_id


def precision(environment: dict[str, Any]) -> str:
    """Default float precision of a run: float64 under jax x64, else float32."""
    return "float64" if environment.get("x64") else "float32"


def run_key(run: dict[str, Any]) -> dict[str, Any]:
    """The set key of a run record's row."""
    key = {k: run[k] for k in KEY_FIELDS if k != "precision"}
    key["precision"] = precision(run.get("environment") or {})
    return {k: key[k] for k in KEY_FIELDS}


@dataclasses.dataclass
class RefSet:
    """A reference set in memory: header (key, tolerance, note) and one record per run."""

    header: dict[str, Any]
    records: list[dict[str, Any]]
    origin: str  # the file it came from, or "database"

    @property
    def id(self) -> str:
        return self.header["id"]

    @property
    def key(self) -> dict[str, Any]:
        return {k: self.header[k] for k in KEY_FIELDS}

    @property
    def hardware(self) -> str:
        return f"{self.header['backend']} / {self.header['device_kind']} / {self.header['precision']}"


# -- records of runs ----------------------------------------------------------------------

def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).isoformat()


def _environment_hash(environment: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(environment, sort_keys=True).encode()).hexdigest()[:16]


def record_from_run(run: Run, snapshots: Sequence[CurvatureSnapshot] = ()) -> dict[str, Any]:
    """One run as a JSON-able record: row, eval curve (all splits), curvature scalars, hashes."""
    row = {c: getattr(run, c) for c in _RUN_COLUMNS}
    for c in _DATETIME_COLUMNS:
        row[c] = _iso(row[c])
    evals: dict[tuple[int, str], dict[str, Any]] = {}
    for e in sorted(run.evals, key=lambda e: (e.step, e.split, e.metric)):
        point = evals.setdefault((e.step, e.split), {"step": e.step, "split": e.split,
                                                     "wall_s": e.wall_s, "train_s": e.train_s,
                                                     "metrics": {}})
        point["metrics"][e.metric] = e.value
    curvature = [{"step": s.step, "kind": s.kind, "compute_s": s.compute_s, "config": s.config,
                  "metrics": {v.name: v.value for v in s.values}}
                 for s in sorted(snapshots, key=lambda s: (s.step, s.kind))]
    return {"run": row, "eval_curve": list(evals.values()), "curvature": curvature,
            "hashes": {"workload_version": run.workload_version,
                       "submission_hash": run.submission_hash,
                       "data_fingerprint": run.data_fingerprint,
                       "environment": _environment_hash(run.environment)}}


def records_from_db(db: Database, run_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Records of the given runs (full ids or unique prefixes); unknown ids are an error."""
    ids = [r.id for r in db.get_runs(run_ids)]
    with db.session() as s:
        runs = {r.id: r for r in s.scalars(select(Run).options(selectinload(Run.evals))
                                           .where(Run.id.in_(ids)))}
        snaps: dict[str, list[CurvatureSnapshot]] = {}
        for snap in s.scalars(select(CurvatureSnapshot).options(selectinload(CurvatureSnapshot.values))
                              .where(CurvatureSnapshot.run_id.in_(ids))):
            snaps.setdefault(snap.run_id, []).append(snap)
        return [record_from_run(runs[i], snaps.get(i, ())) for i in ids]


def curve(record: dict[str, Any], split: str = "validation") -> dict[int, dict[str, float]]:
    """{step: {metric: value}} of one split of a run record."""
    return {p["step"]: dict(p["metrics"]) for p in record["eval_curve"] if p["split"] == split}


# -- freeze -------------------------------------------------------------------------------

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.=+-]+", "-", text.lower()).strip("-")


def set_id(key: dict[str, Any], run_ids: Iterable[str]) -> str:
    """Readable, filename-safe and content-derived: variant--submission--hardware--precision--hash."""
    digest = hashlib.sha256(json.dumps({"key": key, "runs": sorted(run_ids)}, sort_keys=True)
                            .encode()).hexdigest()[:8]
    parts = [_slug(x)[:40] for x in (key["variant"], key["submission"],
                                     f"{key['backend']}-{key['device_kind']}", key["precision"])]
    return check_set_id("--".join([*parts, digest]).replace("..", "."), "new reference set")


def _settings(run: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(run.get(k) for k in SETTINGS)


def _check_same_settings(records: Sequence[dict[str, Any]], where: str) -> None:
    """Refuse runs of one key made with different step-defining settings (a 5-step run among
    2,000-step runs): the set's spread and every check against it would mean nothing."""
    first = records[0]["run"]
    for r in records[1:]:
        differ = [f"{k}: {first.get(k)!r} vs {r['run'].get(k)!r}" for k in SETTINGS
                  if r["run"].get(k) != first.get(k)]
        if differ:
            raise RefsError(f"{where}: runs {first['id'][:8]} and {r['run']['id'][:8]} were made with "
                            f"different settings ({'; '.join(differ)}); a reference set holds runs "
                            "of one budget and eval interval — give runs made alike")


def _describe_key_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    return "; ".join(f"{k}: {a[k]!r} vs {b[k]!r}" for k in KEY_FIELDS if a[k] != b[k])


def select_runs(db: Database, variant: str, submission: str) -> tuple[list[str], str]:
    """Ids of the finished runs of variant x submission sharing the newest run's key, one per
    seed (the newest), and a note on what was left out."""
    runs = [r for r in db.runs(variant=variant, submission=submission) if r.status in FINISHED]
    if not runs:
        raise RefsError(f"no finished runs of {variant} / {submission} in {db.url}; "
                        "run `curvebench run` first")
    records = records_from_db(db, [r.id for r in runs])
    newest = max(records, key=lambda r: r["run"]["started_at"])
    key = run_key(newest["run"])
    same = [r for r in records if run_key(r["run"]) == key
            and _settings(r["run"]) == _settings(newest["run"])]
    by_seed: dict[int, dict[str, Any]] = {}
    for r in sorted(same, key=lambda r: r["run"]["started_at"]):
        by_seed[r["run"]["seed"]] = r
    left_out = len(records) - len(by_seed)
    note = (f"{left_out} run(s) left out (other code/hparams/hardware/settings, or repeated seeds)"
            if left_out else "")
    return [by_seed[s]["run"]["id"] for s in sorted(by_seed)], note


def freeze(db: Database, run_ids: Sequence[str], *, tolerance: float | None = None,
           note: str = "") -> RefSet:
    """Make a reference set of the given finished runs (same key, distinct seeds) in the DB."""
    try:
        records = records_from_db(db, run_ids)
    except DatabaseError as e:
        raise RefsError(str(e)) from None
    if len(records) < 2:
        raise RefsError(f"a reference set needs at least 2 runs (got {len(records)}): "
                        "the check estimates the spread from them")
    for r in records:
        if r["run"]["status"] not in FINISHED:
            raise RefsError(f"run {r['run']['id']} is {r['run']['status']}; only finished runs "
                            f"({', '.join(FINISHED)}) can be references")
    key = run_key(records[0]["run"])
    for r in records[1:]:
        if run_key(r["run"]) != key:
            raise RefsError(f"runs {records[0]['run']['id'][:8]} and {r['run']['id'][:8]} belong to "
                            f"different sets ({_describe_key_difference(key, run_key(r['run']))})")
    _check_same_settings(records, "--runs")
    seeds = [r["run"]["seed"] for r in records]
    if len(set(seeds)) != len(seeds):
        raise RefsError(f"repeated seeds among the runs ({sorted(seeds)}); give one run per seed")
    if tolerance is None:
        workload_class = REGISTRY.get(key["workload"])
        if workload_class is None:
            raise RefsError(f"unknown workload {key['workload']!r}; valid: {', '.join(sorted(REGISTRY))}")
        tolerance = workload_class.steps_tolerance
    if not 0 <= tolerance < 10:
        raise RefsError(f"steps tolerance {tolerance} must be a fraction in [0, 10)")
    ids = [r["run"]["id"] for r in records]
    header = {"id": set_id(key, ids), **key, "steps_tolerance": float(tolerance), "note": note,
              "created_at": _iso(dt.datetime.now(dt.timezone.utc)), "runs": len(ids)}
    refset = RefSet(header, records, "database")
    with db.session() as s:
        if s.get(ReferenceSet, header["id"]) is not None:
            raise RefsError(f"reference set {header['id']} already exists in {db.url}")
        s.add(_set_row(header, ids))
    return refset


def _set_row(header: dict[str, Any], run_ids: Iterable[str]) -> ReferenceSet:
    row = ReferenceSet(**{k: header[k] for k in KEY_FIELDS}, id=header["id"],
                       steps_tolerance=header["steps_tolerance"], note=header.get("note", ""),
                       created_at=dt.datetime.fromisoformat(header["created_at"]))
    row.members = [ReferenceSetRun(run_id=r) for r in run_ids]
    return row


# -- sets in the database -----------------------------------------------------------------

def db_sets(db: Database, ids: Iterable[str] | None = None) -> list[RefSet]:
    """Reference sets stored in the database (all, or the given ids; unknown ids are an error)."""
    with db.session() as s:
        query = select(ReferenceSet).options(selectinload(ReferenceSet.members))
        if ids is not None:
            ids = list(ids)
            query = query.where(ReferenceSet.id.in_(ids))
        rows = list(s.scalars(query.order_by(ReferenceSet.created_at)))
        found = {r.id for r in rows}
        missing = [i for i in ids or () if i not in found]
        if missing:
            raise RefsError(f"no reference set {', '.join(missing)} in {db.url}")
        headers = [({"id": r.id, **{k: getattr(r, k) for k in KEY_FIELDS},
                     "steps_tolerance": r.steps_tolerance, "note": r.note,
                     "created_at": _iso(r.created_at), "runs": len(r.members)},
                    [m.run_id for m in r.members]) for r in rows]
    return [RefSet(h, sorted(records_from_db(db, members), key=lambda r: r["run"]["seed"]), "database")
            for h, members in headers]


# -- files --------------------------------------------------------------------------------

def set_path(directory: Path, refset: RefSet) -> Path:
    """Where a set's file goes: always directly inside `directory` (the id is checked)."""
    directory = Path(directory)
    path = directory / f"{check_set_id(refset.id, refset.origin)}.jsonl"
    if path.resolve().parent != directory.resolve():
        raise RefsError(f"set {refset.id} would be written outside {directory}; nothing written")
    return path


def write_set(refset: RefSet, directory: str | os.PathLike) -> Path:
    """Write a set as JSON Lines (header line, then one run per line), atomically."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise RefsError(f"--out {directory} is a file, not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    path = set_path(directory, refset)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "set": refset.header}
    lines = [json.dumps(header, sort_keys=True)]
    lines += [json.dumps(r, sort_keys=True) for r in sorted(refset.records,
                                                             key=lambda r: r["run"]["seed"])]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def export_sets(db: Database, directory: str | os.PathLike,
                ids: Sequence[str] | None = None) -> list[Path]:
    """Write the given (default: all) sets of the database to `directory`, which must not be
    inside an installed package (site-packages): exports are the user's files."""
    if {"site-packages", "dist-packages"} & set(Path(directory).resolve().parts):
        raise RefsError(f"--out {directory} is inside installed packages (site-packages); export to "
                        "a directory of your own, e.g. --out reference_results")
    if not str(directory).strip():
        output_dir.check_folder(directory)  # refused before the database is read
    sets = db_sets(db, ids or None)
    if not sets:
        raise RefsError(f"no reference sets in {db.url}; make one with `curvebench refs freeze`")
    for s in sets:  # every path checked before the first file is written
        set_path(Path(directory), s)
    output_dir.check_folder(directory)  # set files are named by their content: same name, same set
    return [write_set(s, directory) for s in sets]


_HEADER_FIELDS = {"id": str, "steps_tolerance": (int, float), "created_at": str,
                  **{k: (dict if k == "hparams" else str) for k in KEY_FIELDS}}
_RUN_FIELDS = {"id": str, "seed": int, "status": str, "max_steps": int, "eval_every": int,
               "batch_size": int, "environment": dict, "hparams": dict, "rng_derivation": str,
               "chunk_mode": str, "started_at": str}


def _require(obj: Any, fields: dict[str, Any], where: str) -> None:
    if not isinstance(obj, dict):
        raise RefsError(f"{where}: expected a JSON object")
    for name, types in fields.items():
        if name not in obj:
            raise RefsError(f"{where}: missing field {name!r}")
        if not isinstance(obj[name], types) or isinstance(obj[name], bool):
            raise RefsError(f"{where}: field {name!r} has the wrong type ({type(obj[name]).__name__})")


def _check_record(record: Any, where: str) -> None:
    _require(record, {"run": dict, "eval_curve": list, "curvature": list, "hashes": dict}, where)
    run = record["run"]
    _require(run, _RUN_FIELDS, where + " run")
    _check_lengths(run, where)
    for name, default in _ADDED_COLUMN_DEFAULTS.items():  # files written before a migration
        run.setdefault(name, default)
    for column in Run.__table__.columns:
        if column.nullable:
            run.setdefault(column.name, None)
    missing = [c for c in _RUN_COLUMNS if c not in run]
    if missing:
        raise RefsError(f"{where}: run {run['id']} lacks column(s) {', '.join(missing)}")
    if run["status"] not in FINISHED:
        raise RefsError(f"{where}: run {run['id']} is {run['status']}, not a finished run")
    steps = run["steps_to_target"]
    if run["status"] == RunStatus.REACHED and not (isinstance(steps, int) and 0 < steps <= run["max_steps"]):
        raise RefsError(f"{where}: run {run['id']} reached its target but steps_to_target is {steps!r}")
    for i, point in enumerate(record["eval_curve"]):
        _require(point, {"step": int, "split": str, "metrics": dict}, f"{where} eval_curve[{i}]")
        if not all(v is None or isinstance(v, (int, float)) for v in point["metrics"].values()):
            raise RefsError(f"{where} eval_curve[{i}]: metric values must be numbers or null")
    for i, snap in enumerate(record["curvature"]):
        _require(snap, {"step": int, "kind": str, "metrics": dict}, f"{where} curvature[{i}]")
    for field in ("workload_version", "submission_hash", "data_fingerprint"):
        if record["hashes"].get(field) != run[field]:
            raise RefsError(f"{where}: hashes.{field} does not match the run's {field}")


def read_set(path: str | os.PathLike) -> RefSet:
    """Parse and validate one set file; errors name the file and line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise RefsError(f"cannot read reference file {path}: {e}") from None
    objects = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            objects.append((n, json.loads(line, parse_constant=_refuse_constant)))
        except json.JSONDecodeError as e:
            raise RefsError(f"{path}:{n}: not valid JSON ({e.msg} at column {e.colno})") from None
        except ValueError as e:
            raise RefsError(f"{path}:{n}: {e}") from None
    if not objects:
        raise RefsError(f"{path}: empty reference file")
    n, head = objects[0]
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise RefsError(f"{path}:{n}: not a curvebench reference set (first line must have "
                        f'"format": "{FORMAT}")')
    if head.get("format_version") != FORMAT_VERSION:
        raise RefsError(f"{path}:{n}: reference format version {head.get('format_version')!r}; "
                        f"this curvebench reads version {FORMAT_VERSION}")
    header = head.get("set")
    _require(header, _HEADER_FIELDS, f"{path}:{n} set")
    check_set_id(header["id"], f"{path}:{n}")
    records = []
    for n, record in objects[1:]:
        _check_record(record, f"{path}:{n}")
        key = run_key(record["run"])
        if key != {k: header[k] for k in KEY_FIELDS}:
            raise RefsError(f"{path}:{n}: run {record['run']['id']} does not belong to set "
                            f"{header['id']} ({_describe_key_difference(header, key)})")
        records.append(record)
    if len(records) < 2:
        raise RefsError(f"{path}: a reference set needs at least 2 runs, found {len(records)}")
    if header.get("runs") != len(records):
        raise RefsError(f"{path}:{objects[0][0]}: the header says {header.get('runs')!r} runs, the "
                        f"file holds {len(records)}: it was cut or edited; restore it or refreeze")
    _check_same_settings(records, str(path))
    seen: dict[Any, int] = {}
    for (n, _), record in zip(objects[1:], records):
        for what in ("id", "seed"):
            value = record["run"][what]
            if (what, value) in seen:
                raise RefsError(f"{path}:{n}: run {what} {value!r} appears twice (first on line "
                                f"{seen[(what, value)]}); a set holds one run per seed")
            seen[(what, value)] = n
    expected = set_id({k: header[k] for k in KEY_FIELDS}, [r["run"]["id"] for r in records])
    if header["id"] != expected:
        raise RefsError(f"{path}:{objects[0][0]}: set id {header['id']!r} does not match its contents "
                        f"(they make {expected!r}): the file was edited; restore it or refreeze the "
                        "runs with `curvebench refs freeze`")
    return RefSet(header, records, str(path))


def _refuse_constant(name: str) -> None:
    """json.loads hook for NaN/Infinity: a reference set holds finite numbers (null for none)."""
    raise ValueError(f"non-finite number {name} (write null for a missing or non-finite metric)")


def _check_lengths(run: dict[str, Any], where: str) -> None:
    """Run ids are uuids; every string fits its database column."""
    if not RUN_ID_PATTERN.fullmatch(run["id"]) or len(run["id"]) > 36:
        shown = run["id"] if len(run["id"]) < 60 else run["id"][:57] + "..."
        raise RefsError(f"{where}: run id {shown!r} is not a run id (at most 36 letters, digits and -)")
    for column in Run.__table__.columns:
        limit = getattr(column.type, "length", None)
        value = run.get(column.name)
        if limit and isinstance(value, str) and len(value) > limit:
            raise RefsError(f"{where}: run field {column.name!r} has {len(value)} characters, "
                            f"at most {limit} fit")


def read_sets(directory: str | os.PathLike = SHIPPED_DIR) -> list[RefSet]:
    """Every `*.jsonl` set file in a directory (none if it does not exist)."""
    directory = Path(directory)
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise RefsError(f"{directory} is not a directory of reference sets")
    return [read_set(p) for p in sorted(directory.glob("*.jsonl"))]


def available_sets(db: Database, directory: str | os.PathLike | None = None) -> list[RefSet]:
    """The sets `check` and `refs list` consider: the database's and the directory's (default:
    the shipped sets); a file wins over a database set of the same id."""
    sets = {s.id: s for s in db_sets(db)}
    sets.update({s.id: s for s in read_sets(directory or SHIPPED_DIR)})
    return list(sets.values())


def _run_from_record(record: dict[str, Any]) -> Run:
    fields = dict(record["run"])
    for c in _DATETIME_COLUMNS:
        fields[c] = dt.datetime.fromisoformat(fields[c]) if fields[c] else None
    run = Run(**fields)
    run.evals = [EvalRow(step=p["step"], split=p["split"], metric=m, value=v,
                         wall_s=p.get("wall_s", 0.0), train_s=p.get("train_s", 0.0))
                 for p in record["eval_curve"] for m, v in p["metrics"].items()]
    return run


def _same_run(stored: dict[str, Any], incoming: dict[str, Any]) -> bool:
    a, b = stored["run"], incoming["run"]
    fields = ("seed", "status", "steps_to_target", "final_step", *KEY_FIELDS[:-1])
    return all(a.get(f) == b.get(f) for f in fields) and curve(stored) == curve(incoming)


def import_sets(db: Database, paths: Iterable[str | os.PathLike]) -> list[tuple[str, str]]:
    """Load set files into the database in one transaction: all of them, or (on any error) nothing.

    Runs already present must be identical; a set already present must have the same runs.
    Returns (set id, "imported" | "already present") per set.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
    if not files:
        raise RefsError("no reference set files given (expected *.jsonl files or a directory of them)")
    sets = [read_set(f) for f in files]
    outcome = []
    with db.session() as s:
        for refset in sets:
            existing = s.get(ReferenceSet, refset.id)
            members = sorted(r["run"]["id"] for r in refset.records)
            if existing is not None:
                if sorted(m.run_id for m in existing.members) != members:
                    raise RefsError(f"{refset.origin}: set {refset.id} is already in {db.url} "
                                    "with different runs; nothing imported")
                outcome.append((refset.id, "already present"))
                continue
            for record in refset.records:
                run_id = record["run"]["id"]
                stored = s.scalars(select(Run).options(selectinload(Run.evals))
                                   .where(Run.id == run_id)).one_or_none()
                if stored is None:
                    s.add(_run_from_record(record))
                    s.flush()
                    for snap in record["curvature"]:
                        row = CurvatureSnapshot(run_id=run_id, step=snap["step"], kind=snap["kind"],
                                                compute_s=snap.get("compute_s", 0.0),
                                                config=snap.get("config") or {})
                        row.values = [CurvatureValue(name=k, value=v)
                                      for k, v in snap["metrics"].items()]
                        s.add(row)
                elif not _same_run(record_from_run(stored), record):
                    raise RefsError(f"{refset.origin}: run {run_id} is already in {db.url} with "
                                    "different results; nothing imported")
            s.add(_set_row(refset.header, members))
            outcome.append((refset.id, "imported"))
    return outcome
