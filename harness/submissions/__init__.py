"""Load a submission folder: submission.py (AlgoPerf functions) + hparams.json, with overrides.

The built-in submissions (adam, sgd, momentum, ...) are the folders of the top-level
`submissions/` directory, shipped in the wheel beside `harness/`, so `--submission adam` works
from any installation; a path to a folder works everywhere a name does (`resolve_submission`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
import numbers
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.spec import SpecError, source_hash

REQUIRED_FUNCTIONS = ("init_optimizer_state", "update_params", "get_batch_size", "data_selection")
#: the folder of the built-in submissions, one sub-folder each: `submissions/` beside the `harness`
#: package (the checkout's top level, or site-packages for a wheel install)
BUILTIN_DIR = Path(__file__).resolve().parents[2] / "submissions"


def builtin_submissions() -> list[str]:
    """Names of the built-in submissions: the folders of BUILTIN_DIR with a submission.py."""
    return sorted(p.parent.name for p in BUILTIN_DIR.glob("*/submission.py"))


def _is_bare_name(text: str) -> bool:
    return bool(text) and "/" not in text and "\\" not in text and text not in (".", "..")


def resolve_submission(path_or_name: str | Path) -> Path:
    """The submission folder a `--submission` value names: an existing path as given (a folder,
    or its submission.py), else a built-in submission of that name; a one-line error listing
    the built-ins otherwise."""
    path = Path(path_or_name)
    if path.is_file() and path.name == "submission.py":
        return path.parent
    if path.exists():
        return path
    text = str(path_or_name)
    if _is_bare_name(text) and (BUILTIN_DIR / text / "submission.py").is_file():
        return BUILTIN_DIR / text
    raise SpecError(f"no submission {text!r}: give a folder with submission.py or a built-in "
                    f"name ({', '.join(builtin_submissions())})")


def portable_submission(path_or_name: str) -> str:
    """The submission as workers elsewhere should see it: a built-in stays a bare name (each
    worker finds its own installed copy), a folder becomes an absolute path."""
    resolved = resolve_submission(path_or_name).resolve()
    return resolved.name if resolved.parent == BUILTIN_DIR else str(resolved)


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
        size = self.hparams.get("batch_size")
        where = "hparams batch_size"
        if size is None:
            size, where = self.module.get_batch_size(workload_name), "get_batch_size"
        if size is None:
            size, where = default, "the workload's default batch size"
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise SpecError(f"submission {self.name}: batch size {size!r} (from {where}) must be a "
                            "positive integer, e.g. --hparam batch_size=128")
        return int(size)


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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"non-finite number {name}; hyperparameters must be finite")


def check_override(key: str, value: Any, default: Any) -> None:
    """An override must be finite and of the kind hparams.json gives (a number for a number,
    true/false for a flag); hparams.json's null admits any value (e.g. batch_size)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"--hparam {key}={value}: hyperparameters must be finite numbers")
    if _is_number(default) and not _is_number(value):
        raise SpecError(f"--hparam {key}={value!r}: {key} is a number in hparams.json "
                        f"({default!r}); give a number, e.g. {key}={default!r}")
    if isinstance(default, bool) and not isinstance(value, bool):
        raise SpecError(f"--hparam {key}={value!r}: {key} is true/false in hparams.json")
    if isinstance(default, str) and not isinstance(value, str):
        raise SpecError(f"--hparam {key}={value!r}: {key} is text in hparams.json ({default!r})")


def apply_overrides(name: str, defaults: Mapping[str, Any], overrides: Mapping[str, Any]
                    ) -> dict[str, Any]:
    """The hyperparameters after overrides: known names only, each of its default's kind
    (check_override); raises SpecError naming the valid names otherwise."""
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise SpecError(f"submission {name} has no hyperparameter {', '.join(unknown)}; "
                        f"valid: {', '.join(sorted(defaults))}")
    for key, value in overrides.items():
        check_override(key, value, defaults[key])
    return {**defaults, **overrides}


def load_submission(path: str | Path, overrides: dict[str, Any] | Iterable[str] = (),
                    search_point: int = 0) -> Submission:
    """Import `path/submission.py` (`path`: a folder, or a built-in's name, `resolve_submission`), read `path/hparams.json`, apply overrides of known keys only.

    A folder in AlgoPerf's format (tuning_search_space.json, or a submission.py importing
    `algoperf`) is loaded unmodified through `harness.algoperf`; `search_point` picks its point."""
    path = resolve_submission(path)
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
        hparams = json.loads(hp_file.read_text(), parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise SpecError(f"{hp_file}: invalid JSON ({e})") from None
    except ValueError as e:
        raise SpecError(f"{hp_file}: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"cannot read {hp_file}: {e}") from None
    if not isinstance(hparams, dict):
        raise SpecError(f"{hp_file}: must hold a JSON object of hyperparameters")
    if not isinstance(overrides, dict):
        overrides = parse_overrides(overrides)
    hparams = apply_overrides(path.name, hparams, overrides)
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
