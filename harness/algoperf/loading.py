"""Recognise and load a submission folder in AlgoPerf's format.

A folder is in AlgoPerf's format when it has `tuning_search_space.json` beside `submission.py`,
or when `submission.py` imports `algoperf`. Its hyperparameters are the suite's `hparams.json`
when present, else point k of the search space (`harness.algoperf.search_space`). PyTorch
submissions (those importing `torch`) are refused with a one-line error.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from harness.algoperf.adapter import AlgoPerfSubmission, Convention
from harness.algoperf.search_space import SEARCH_SEED, SearchSpace
from harness.algoperf.shim import installed
from harness.spec import SpecError, source_hash

SEARCH_SPACE_FILE = "tuning_search_space.json"
REQUIRED = ("init_optimizer_state", "update_params", "get_batch_size", "data_selection")


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _parse(source: Path) -> ast.AST:
    try:
        return ast.parse(source.read_text(), str(source))
    except SyntaxError as e:
        raise SpecError(f"{source} is not valid Python: {e}") from None


def is_algoperf_folder(path: Path) -> bool:
    """True for a folder in AlgoPerf's format (see the module docstring)."""
    source = path / "submission.py"
    if not source.is_file():
        return False
    if (path / SEARCH_SPACE_FILE).is_file():
        return True
    try:
        return bool({"algoperf", "torch"} & _imports(ast.parse(source.read_text())))
    except SyntaxError:
        return False


def uses_pmap(tree: ast.AST) -> bool:
    """Whether the source calls `pmap` (pmap-era AlgoPerf: arrays with a leading device axis)."""
    return any((isinstance(n, ast.Attribute) and n.attr == "pmap") or
               (isinstance(n, ast.Name) and n.id == "pmap") for n in ast.walk(tree))


def load_algoperf_submission(path: Path, overrides: dict[str, Any], search_point: int = 0,
                             search_seed: int = SEARCH_SEED):
    """Import an AlgoPerf-format folder unmodified and wrap it: a suite `Submission` whose
    module is an `AlgoPerfSubmission`, whose hparams are the chosen point (with overrides of
    known keys) and whose code hash is the wrapped file's."""
    from harness.submissions import Submission

    source = path / "submission.py"
    tree = _parse(source)
    if "torch" in _imports(tree):
        raise SpecError(f"{source} is a PyTorch AlgoPerf submission; curvebench runs JAX "
                        "submissions only (port it to JAX, or run it with AlgoPerf's own runner)")
    hp_file, space_file = path / "hparams.json", path / SEARCH_SPACE_FILE
    if hp_file.is_file():
        hparams = _read_json(hp_file)
        if not isinstance(hparams, dict):
            raise SpecError(f"{hp_file}: must hold a JSON object of hyperparameters")
        chosen = None
    elif space_file.is_file():
        space = SearchSpace.from_json(_read_json(space_file), str(space_file))
        hparams = space.point(search_point, search_seed)
        chosen = (search_point, search_seed)
    else:
        raise SpecError(f"submission {path} has neither hparams.json nor {SEARCH_SPACE_FILE}")
    if search_point and chosen is None:
        raise SpecError(f"--search-point {search_point}: submission {path.name} has a fixed "
                        "hparams.json, not a search space")
    unknown = sorted(set(overrides) - set(hparams))
    if unknown:
        raise SpecError(f"submission {path.name} has no hyperparameter {', '.join(unknown)}; "
                        f"valid: {', '.join(sorted(hparams))}")
    hparams = {**hparams, **overrides}
    module = _import(source, path)
    adapter = AlgoPerfSubmission(module, path.name, Convention.PMAP if uses_pmap(tree) else Convention.JIT)
    adapter.search_point = chosen
    return Submission(name=path.name, path=path, module=adapter, hparams=hparams,
                      code_hash=source_hash(module))


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise SpecError(f"{file}: invalid JSON ({e})") from None


def _import(source: Path, path: Path):
    name = f"curvebench_algoperf_{path.name}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with installed():
            spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        hint = (" (AlgoPerf submissions' usual dependencies: pip install -e \".[algoperf]\")"
                if isinstance(e, ModuleNotFoundError) else "")
        raise SpecError(f"{source} failed to import: {type(e).__name__}: {e}{hint}") from e
    missing = [f for f in REQUIRED if not callable(getattr(module, f, None))]
    if missing:
        raise SpecError(f"{source} lacks the AlgoPerf submission function(s) {', '.join(missing)}")
    return module
