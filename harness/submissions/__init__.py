"""Load a submission folder: submission.py (AlgoPerf functions) + hparams.json, with overrides.

One loader for every submission format: a format adapter (`NATIVE`, `harness.algoperf.loading.
ALGOPERF`) recognises its folders and declares what its submissions need from the engine
(`Capabilities`); the steps are the same for all (`load_submission`), and each submission.py
is executed once per process (`harness.submissions.execution`). The record, `Submission`, is a
leaf (`harness.records.submission`), re-exported here.

The built-in submissions (adam, sgd, momentum, ...) are the folders of the top-level
`submissions/` directory, shipped in the wheel beside `harness/`, so `--submission adam` works
from any installation; a path to a folder works everywhere a name does (`resolve_submission`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.algoperf.loading import ALGOPERF
from harness.errors import SpecError
from harness.records.submission import Capabilities, Submission, SubmissionFormat
from harness.submissions.execution import REQUIRED_FUNCTIONS, execute
from harness.submissions.native import NATIVE

__all__ = ["BUILTIN_DIR", "FORMATS", "REQUIRED_FUNCTIONS", "Capabilities", "Submission",
           "apply_overrides", "builtin_submissions", "check_override", "check_ranges", "load_submission",
           "parse_overrides", "portable_submission", "resolve_submission"]

#: the formats a folder may be in, asked in order (native takes every folder)
FORMATS: tuple[SubmissionFormat, ...] = (ALGOPERF, NATIVE)
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
    if _is_number(value) and isinstance(value, int) and abs(value) >= 2**63:
        raise SpecError(f"--hparam {key}={value}: past 64 bits; give a number that fits")
    if _is_number(default) and not _is_number(value):
        raise SpecError(f"--hparam {key}={value!r}: {key} is a number in hparams.json "
                        f"({default!r}); give a number, e.g. {key}={default!r}")
    if isinstance(default, bool) and not isinstance(value, bool):
        raise SpecError(f"--hparam {key}={value!r}: {key} is true/false in hparams.json")
    if isinstance(default, str) and not isinstance(value, str):
        raise SpecError(f"--hparam {key}={value!r}: {key} is text in hparams.json ({default!r})")


RANGES_FILE = "hparam_ranges.json"
_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])\s*$")


def _interval(text: Any, where: str) -> tuple[float, float, bool, bool]:
    """'[0, 1)' -> (0, 1, closed below, open above); SpecError if it does not parse."""
    m = _INTERVAL.match(text) if isinstance(text, str) else None
    try:
        low, high = float(m.group(2)), float(m.group(3))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        raise SpecError(f"{where}: range {text!r} is not an interval like \"(0, inf)\" or "
                        "\"[0, 1)\"") from None
    return low, high, m.group(1) == "[", m.group(4) == "]"


def read_ranges(folder: Path) -> dict[str, str]:
    """The folder's hparam_ranges.json: {name: interval}, each interval checked; {} if absent."""
    file = folder / RANGES_FILE
    if not file.is_file():
        return {}
    ranges = _read_json(file)
    if not isinstance(ranges, dict):
        raise SpecError(f"{file}: must hold a JSON object {{name: \"[low, high)\"}}")
    for key, text in ranges.items():
        _interval(text, f"{file}: {key}")
    return dict(ranges)


def check_ranges(name: str, hparams: Mapping[str, Any], ranges: Mapping[str, str]) -> None:
    """Every numeric hyperparameter inside the interval its submission declares valid
    (hparam_ranges.json): a negative learning rate or beta1 = 2 is refused before anything
    trains, naming the range."""
    for key, text in ranges.items():
        value = hparams.get(key)
        if not _is_number(value):
            continue
        low, high, closed_low, closed_high = _interval(text, f"submission {name}: {key}")
        inside = ((low < value or (closed_low and value == low))
                  and (value < high or (closed_high and value == high)))
        if not inside:
            raise SpecError(f"--hparam {key}={value!r}: outside {text}, the values submission "
                            f"{name} declares valid for {key} ({RANGES_FILE})")


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
    """The submission in folder `path` (a folder, or a built-in's name, `resolve_submission`):
    its submission.py executed (once per process, `execution.execute`) and wrapped by its
    format, its hyperparameters from hparams.json — or, in a format with search spaces (AlgoPerf's
    tuning_search_space.json), point `search_point` of it — with overrides of known keys only.
    Records of one file share its executed module."""
    folder = resolve_submission(path).resolve()
    source = folder / "submission.py"
    if not source.is_file():
        raise SpecError(f"{folder} is not a submission: no submission.py there")
    fmt = next(f for f in FORMATS if f.recognises(folder))
    fmt.check_source(source)
    defaults, point = _default_hparams(fmt, folder, search_point)
    hparams = apply_overrides(folder.name, defaults, overrides if isinstance(overrides, Mapping)
                              else parse_overrides(overrides))
    ranges = read_ranges(folder)
    check_ranges(folder.name, hparams, ranges)
    executed = execute(source, fmt)
    module, capabilities = fmt.adapt(executed.module, folder, point, executed.files)
    return Submission(name=folder.name, path=folder, module=module, hparams=hparams,
                      code_hash=executed.code_hash, capabilities=capabilities, search_point=point,
                      ranges=ranges)


def _default_hparams(fmt: SubmissionFormat, folder: Path, search_point: int
                     ) -> tuple[dict[str, Any], tuple[int, int] | None]:
    """The folder's hyperparameters before overrides, and the search point they are (None:
    hparams.json's)."""
    hp_file = folder / "hparams.json"
    space = None if fmt.search_space is None else folder / fmt.search_space.name
    if hp_file.is_file():
        if search_point:
            raise SpecError(f"--search-point {search_point}: submission {folder.name} has a fixed "
                            "hparams.json, not a search space")
        hparams = _read_json(hp_file)
        if not isinstance(hparams, dict):
            raise SpecError(f"{hp_file}: must hold a JSON object of hyperparameters")
        return hparams, None
    if space is not None and space.is_file():
        return fmt.search_space.point(_read_json(space), str(space), search_point)
    if fmt.hyperparameter_free:
        if search_point:
            raise SpecError(f"--search-point {search_point}: submission {folder.name} is "
                            "self-tuning (no hparams.json, no search space): it has no points")
        return {}, None
    alternative = "" if space is None else f" or {space.name}"
    raise SpecError(f"submission {folder} has no hparams.json{alternative} beside submission.py")


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(), parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise SpecError(f"{file}: invalid JSON ({e})") from None
    except ValueError as e:
        raise SpecError(f"{file}: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"cannot read {file}: {e}") from None
