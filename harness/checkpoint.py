"""Checkpoints of a compiled program's trials, so that a killed run resumes where it was.

A checkpoint is taken where the training loop returns to the host anyway (every SEGMENT_STEPS
steps with in-loop evals, at each host eval otherwise), at the first such point after
`checkpoint_every` steps or `checkpoint_every_s` seconds of wall time since the last one (by
default every 10 minutes: trials that finish in minutes write none). Taking it there adds no
step boundary, so a run with checkpoints computes what it computes without them.

What a checkpoint holds, for every trial of the program (the trial axis of the stacked state):
params, optimizer state and model state (batch norm statistics) with the submission's state
inside it, the stop bookkeeping (active/stop masks, step-0 loss, final and target steps), the
step and the program's training clock, its compile time so far, and each trial's host record
(status, evals so far, steps and time to target, its position in the stored training losses,
the wall clock of its eval rows). RNG keys need no saving: every step's key is
fold_in(train key, step), the train key a function of the seed (harness.trial.RNG_DERIVATION).
The data position is the step too: device-mode workloads draw a step's batch from that key;
a host-mode (graph) iterator depends only on its seed and is replayed to the step on resume
(the batches are rebuilt, not trained on). The training losses up to the checkpoint are written
to the database when it is taken; rows a killed process wrote after it (evals, losses,
curvature snapshots) are deleted on resume, so the resumed run's rows are those of an
uninterrupted one.

Files: `<root>/<first run id of the program>/manifest.json` (JSON: step, records, the group to
rebuild, versions, the leaves' dtypes and shapes, the state's tree structure) and
`state-<step>.npz` (the flattened state, each leaf as raw bytes so bfloat16 survives). Each is
written to a temporary name and renamed into place, the manifest last, so a kill at any moment
leaves the previous checkpoint or the new one, never half of one. Every trial's run row points
at the folder (`runs.checkpoint_path`). Root: `checkpoint_dir`, else beside a SQLite results
database (`<db file>.checkpoints/`), else `$XDG_CACHE_HOME/curvebench/checkpoints`. When a
program's trials all finish, the folder is deleted, unless `keep_checkpoints`, which also
writes the final state. Plain files rather than orbax: one process writes a few arrays per
program, and numpy's npz and a JSON manifest need no extra dependency or async machinery.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import CheckpointError

MANIFEST = "manifest.json"
FORMAT = 1
#: `--checkpoint-every` values: N steps, Ns / Nm / Nh of wall time, or off
_CADENCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


def parse_cadence(text: str) -> tuple[int | None, float | None]:
    """`--checkpoint-every`: "500" (steps), "90s", "10m", "2h" (wall time) or "off":
    (steps, seconds), at most one of them set; both None for off."""
    if text.strip().lower() == "off":
        return None, None
    m = _CADENCE.match(text)
    if m is None or float(m.group(1)) <= 0 or (not m.group(2) and "." in m.group(1)):
        raise ValueError(f"--checkpoint-every {text!r}: give N steps (e.g. 500), a wall time "
                         "(90s, 10m, 2h) or off")
    if not m.group(2):
        return int(m.group(1)), None
    return None, float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def default_root(db_url: str) -> Path:
    """Beside a SQLite results database file, else the user cache dir."""
    from sqlalchemy.engine import make_url

    from harness.db.database import resolve_url

    url = make_url(resolve_url(db_url))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database).expanduser().resolve()
        return path.with_name(path.name + ".checkpoints")
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "curvebench" / "checkpoints"


@dataclasses.dataclass(frozen=True)
class Checkpointing:
    """How one group's programs checkpoint: where, how often, whether to keep them, the group
    itself as plain data (to rebuild it on resume), and the folder to resume from, if so."""

    root: Path
    every_steps: int | None
    every_s: float | None
    keep: bool
    group: Mapping[str, Any]
    resume: Path | None = None


@dataclasses.dataclass
class TrialRecord:
    """One trial's host-side record at a checkpoint: what it is, its TrialResult's fields,
    where its next training losses go in the stored sequence, the wall clock of its eval rows."""

    trial: dict[str, Any]  # the TrialSpec (seed, hyperparameter overrides) it runs
    result: dict[str, Any]
    losses_from: int
    wall_s: float


@dataclasses.dataclass
class Saved:
    """A checkpoint read back: everything but the state's leaves, which `carry` restores."""

    path: Path
    step: int
    clock: float
    compile_s: float
    compiles: int
    trials: list[TrialRecord]
    group: dict[str, Any]
    versions: dict[str, str]
    leaves: list[dict[str, Any]]
    treedef: str
    state_file: str

    def carry(self, like: Any) -> Any:
        """The saved state in the tree structure of `like` (e.g. jax.eval_shape of a fresh
        one): refused if the structure, a shape or a dtype differs."""
        import jax
        import jax.numpy as jnp

        flat, treedef = jax.tree_util.tree_flatten(like)
        if str(treedef) != self.treedef or len(flat) != len(self.leaves):
            raise CheckpointError(f"checkpoint {self.path} holds a state of another structure "
                                "than this code builds (the workload or submission changed?); "
                                "rerun the trials")
        with np.load(self.path / self.state_file) as data:
            out = []
            for i, (want, meta) in enumerate(zip(flat, self.leaves)):
                dtype = jnp.dtype(meta["dtype"])
                shape = tuple(meta["shape"])
                if tuple(want.shape) != shape or jnp.dtype(want.dtype) != dtype:
                    raise CheckpointError(
                        f"checkpoint {self.path}: leaf {i} is {meta['dtype']}{list(shape)}, this "
                        f"code builds {want.dtype}{list(want.shape)}; rerun the trials")
                out.append(jnp.asarray(data[str(i)].view(dtype).reshape(shape)))
        return jax.tree_util.tree_unflatten(treedef, out)


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Writer:
    """Checkpoints of one program's trials into one folder, on the cadence asked for."""

    def __init__(self, checkpointing: Checkpointing, folder: Path, versions: Mapping[str, str],
                 step: int = 0):
        self.cfg, self.folder, self.versions = checkpointing, folder, dict(versions)
        self.last_step, self.last_t = step, time.monotonic()
        self.written = False

    def due(self, step: int) -> bool:
        c = self.cfg
        return ((c.every_steps is not None and step - self.last_step >= c.every_steps)
                or (c.every_s is not None and time.monotonic() - self.last_t >= c.every_s))

    def write(self, step: int, clock: float, carry: Any, trials: Sequence[TrialRecord],
              compile_s: float, compiles: int) -> None:
        """Save the state (any pytree of arrays) and the records; the manifest last."""
        import jax

        flat, treedef = jax.tree_util.tree_flatten(jax.device_get(carry))
        arrays = [np.ascontiguousarray(np.asarray(x)) for x in flat]
        self.folder.mkdir(parents=True, exist_ok=True)
        state_file = f"state-{step}.npz"
        _atomic_write(self.folder / state_file, lambda f: np.savez(
            f, **{str(i): a.reshape(-1).view(np.uint8) for i, a in enumerate(arrays)}))
        manifest = {"format": FORMAT, "step": int(step), "clock": float(clock),
                    "compile_s": float(compile_s), "compiles": int(compiles),
                    "trials": [dataclasses.asdict(t) for t in trials],
                    "group": dict(self.cfg.group), "versions": self.versions,
                    "leaves": [{"dtype": a.dtype.name, "shape": list(a.shape)} for a in arrays],
                    "treedef": str(treedef), "state_file": state_file}
        text = json.dumps(manifest, default=_plain).encode()
        _atomic_write(self.folder / MANIFEST, lambda f: f.write(text))
        for old in self.folder.glob("state-*.npz"):
            if old.name != state_file:
                old.unlink(missing_ok=True)
        self.last_step, self.last_t, self.written = step, time.monotonic(), True

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _plain(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (tuple, set)):
        return list(x)
    raise TypeError(f"{type(x).__name__} is not JSON")


def read(folder: str | Path) -> Saved:
    """The checkpoint in `folder`; CheckpointError if there is none or it is unreadable."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint in {folder} (deleted, or the run was killed before "
                            "its first one); rerun the trials") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"unreadable checkpoint manifest {folder / MANIFEST}: {e}") from None
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {folder} has format {manifest.get('format')}, this "
                            f"curvebench reads {FORMAT}; rerun the trials")
    return Saved(path=folder, step=manifest["step"], clock=manifest["clock"],
                 compile_s=manifest["compile_s"], compiles=manifest["compiles"],
                 trials=[TrialRecord(**t) for t in manifest["trials"]], group=manifest["group"],
                 versions=manifest["versions"], leaves=manifest["leaves"],
                 treedef=manifest["treedef"], state_file=manifest["state_file"])


def discard_after(db: Any, run_id: str, step: int, losses_from: int) -> None:
    """Delete what a killed process stored for `run_id` after a checkpoint at `step`: eval rows
    and curvature snapshots of later steps, training losses from `losses_from` on."""
    from sqlalchemy import delete, select

    from harness.db.models import CurvatureSnapshot, EvalRow, TrainLosses

    with db.session() as s:
        s.execute(delete(EvalRow).where(EvalRow.run_id == run_id, EvalRow.step > step))
        s.execute(delete(TrainLosses).where(TrainLosses.run_id == run_id,
                                            TrainLosses.start_step >= losses_from))
        for snap in s.scalars(select(CurvatureSnapshot).where(CurvatureSnapshot.run_id == run_id,
                                                              CurvatureSnapshot.step > step)):
            s.delete(snap)  # the ORM cascade removes its values and arrays
