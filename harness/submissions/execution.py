"""Execute a submission.py once per process, and mark its code as the user's.

A sweep asks for the same submission several times (validating the requests, the preflight
checks, each group it runs); executing the file each time would run its module-level code
again and give each record another module. `execute` keeps one executed module per file path
and content (an edited file is executed again), as module `submission` of a package of its
folder (relative imports find the modules beside it), and hands the files it executed — submission.py
and the helper modules it imported from its folder — to `harness.errors.mark_submission_code`,
so a failure raised in them is reported as the submission's, whatever its format.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from harness.errors import SpecError, mark_submission_code
from harness.records.submission import SubmissionFormat
from harness.spec import source_hash

#: the functions every submission.py defines, in either format (AlgoPerf's submission API)
REQUIRED_FUNCTIONS = ("init_optimizer_state", "update_params", "get_batch_size", "data_selection")
#: module-name prefix of executed submission files
MODULE_PREFIX = "curvebench_submission_"
#: path components of installed packages (never a submission's helper)
INSTALLED_PARTS = frozenset({"site-packages", "dist-packages"})


@dataclasses.dataclass(frozen=True)
class Executed:
    """A submission.py as executed: its module, its code hash and the files that ran."""

    module: ModuleType
    code_hash: str
    files: tuple[Path, ...]


#: (resolved path of submission.py, sha256 of its bytes) -> the module that file executed to
_EXECUTED: dict[tuple[Path, str], Executed] = {}


def execute(source: Path, fmt: SubmissionFormat) -> Executed:
    """The module of `source` (a resolved submission.py) executed in `fmt`'s context: the
    same module for the same file and content for the life of the process. A file that fails
    to import, or lacks a submission function, raises SpecError and is not kept."""
    key = (source, hashlib.sha256(source.read_bytes()).hexdigest())
    done = _EXECUTED.get(key)
    if done is not None:
        return done
    folder = source.parent
    package = f"{MODULE_PREFIX}{folder.name}_{hashlib.sha1(str(folder).encode()).hexdigest()[:8]}"
    name = f"{package}.submission"
    spec = importlib.util.spec_from_file_location(name, source)
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    sys.modules[package] = _folder_package(package, folder)
    sys.modules[name] = module
    try:
        with fmt.executing(folder) as roots:
            spec.loader.exec_module(module)
            helpers = _helpers((folder, *roots), before, name)
    except (Exception, SystemExit) as e:  # sys.exit() in a submission is its failure, not ours
        for loaded in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
            del sys.modules[loaded]
        raise SpecError(f"{source} failed to import: {type(e).__name__}: {e}"
                        f"{fmt.import_hint(e)}") from e
    missing = [f for f in REQUIRED_FUNCTIONS if not callable(getattr(module, f, None))]
    if missing:
        raise SpecError(f"{source} lacks the {fmt.label} function(s) {', '.join(missing)}")
    files = (source, *helpers)
    mark_submission_code(files)
    done = _EXECUTED[key] = Executed(module, source_hash(module), files)
    return done


def _folder_package(name: str, folder: Path) -> ModuleType:
    """The package submission.py runs in: its folder (its `__init__.py` is not run), so a
    relative import (`from .helper import x`) finds a module beside it, as when AlgoPerf's
    runner imports a submission as a module of its repository's packages."""
    package = ModuleType(name)
    package.__path__ = [str(folder)]
    package.__package__ = name
    return package


def _helpers(places: tuple[Path, ...], before: set[str], submission: str) -> list[Path]:
    """The files of the submission's helper modules: imported while it ran (not in `before`),
    in its folder (or another of `places`: where its format found its helpers), of a package
    that was not loaded before (the harness is) and not installed below that place (a folder
    holding the repository or a virtual environment holds those too)."""
    files = []
    for name in set(sys.modules) - before - {submission, submission.rpartition(".")[0]}:
        file = getattr(sys.modules.get(name), "__file__", None)
        if not file or name.partition(".")[0] in before:
            continue
        path = Path(file).resolve()
        place = next((p for p in places if path == p or path.is_relative_to(p)), None)
        if place is not None and not INSTALLED_PARTS & set(path.relative_to(place).parts):
            files.append(path)
    return sorted(files)
