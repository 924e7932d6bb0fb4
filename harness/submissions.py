"""Load a submission folder: submission.py (AlgoPerf functions) + hparams.json, with overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.spec import SpecError, source_hash

REQUIRED_FUNCTIONS = ("init_optimizer_state", "update_params", "get_batch_size", "data_selection")


@dataclasses.dataclass(frozen=True)
class Submission:
    """A loaded submission: its module, hyperparameters (after overrides) and code hash
    (of the code with docstrings and comments removed, like a workload's version)."""

    name: str
    path: Path
    module: ModuleType
    hparams: dict[str, Any]
    code_hash: str

    def batch_size(self, workload_name: str, default: int) -> int:
        """hparams["batch_size"] (null: not set), else get_batch_size(workload), else the workload default."""
        size = self.hparams.get("batch_size") or self.module.get_batch_size(workload_name) or default
        if not isinstance(size, int) or size < 1:
            raise SpecError(f"submission {self.name}: batch size {size!r} must be a positive int")
        return size


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`k=v` strings to a dict; values parsed as JSON (numbers, true/false), else kept as text."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise SpecError(f"bad --hparam {item!r}; expected name=value")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def load_submission(path: str | Path, overrides: dict[str, Any] | Iterable[str] = (),
                    search_point: int = 0) -> Submission:
    """Import `path/submission.py`, read `path/hparams.json`, apply overrides of known keys only.

    A folder in AlgoPerf's format (tuning_search_space.json, or a submission.py importing
    `algoperf`) is loaded unmodified through `harness.algoperf`; `search_point` picks its point."""
    path = Path(path)
    if path.is_file() and path.name == "submission.py":
        path = path.parent
    from harness.algoperf.loading import is_algoperf_folder, load_algoperf_submission

    if is_algoperf_folder(path):
        return load_algoperf_submission(path.resolve(), overrides if isinstance(overrides, dict)
                                        else parse_overrides(overrides), search_point)
    if search_point:
        raise SpecError(f"--search-point {search_point}: submission {path.name} has a fixed "
                        "hparams.json, not a tuning_search_space.json")
    source, hp_file = path / "submission.py", path / "hparams.json"
    if not source.is_file():
        raise SpecError(f"{path} is not a submission: no submission.py there")
    if not hp_file.is_file():
        raise SpecError(f"submission {path} has no hparams.json beside submission.py")
    try:
        hparams = json.loads(hp_file.read_text())
    except json.JSONDecodeError as e:
        raise SpecError(f"{hp_file}: invalid JSON ({e})") from None
    if not isinstance(hparams, dict):
        raise SpecError(f"{hp_file}: must hold a JSON object of hyperparameters")
    if not isinstance(overrides, dict):
        overrides = parse_overrides(overrides)
    unknown = sorted(set(overrides) - set(hparams))
    if unknown:
        raise SpecError(f"submission {path.name} has no hyperparameter {', '.join(unknown)}; "
                        f"valid: {', '.join(sorted(hparams))}")
    hparams.update(overrides)
    module_name = f"curvebench_submission_{path.resolve().name}_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[module_name]
        raise SpecError(f"{source} failed to import: {type(e).__name__}: {e}") from e
    missing = [f for f in REQUIRED_FUNCTIONS if not callable(getattr(module, f, None))]
    if missing:
        raise SpecError(f"{source} lacks the submission function(s) {', '.join(missing)}")
    return Submission(name=path.resolve().name, path=path.resolve(), module=module,
                      hparams=hparams, code_hash=source_hash(module))
