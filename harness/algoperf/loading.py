"""The AlgoPerf submission format, as the submission loader (harness.submissions) sees it.

A folder is in AlgoPerf's format when it has `tuning_search_space.json` beside `submission.py`,
or when `submission.py` imports `algoperf` (or `algorithmic_efficiency`, its name up to v0.5).
Its hyperparameters are the suite's `hparams.json` when present, else point k of the search
space (`harness.algoperf.search_space`), else none: a self-tuning submission. PyTorch
submissions (those importing `torch`) are refused with a one-line error. The file runs with
`algoperf` importable (`harness.algoperf.shim`) and is wrapped in an `AlgoPerfSubmission`.
"""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.algoperf.adapter import AlgoPerfSubmission, Convention
from harness.algoperf.jax_compat import removed_api
from harness.algoperf.repo_imports import repo_root_imports
from harness.algoperf.search_space import SEARCH_SEED, SearchSpace
from harness.algoperf.shim import installed
from harness.errors import SpecError
from harness.records.submission import Capabilities, SearchSpaceFile

SEARCH_SPACE_FILE = "tuning_search_space.json"
#: an import of AlgoPerf's package (either name) at the start of a line
_IMPORTS_ALGOPERF = re.compile(r"^\s*(from|import)\s+(algoperf|algorithmic_efficiency)\b",
                               re.MULTILINE)


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
    text = source.read_text()
    try:
        return bool({"algoperf", "algorithmic_efficiency", "torch"} & _imports(ast.parse(text)))
    except SyntaxError:  # still AlgoPerf's when its text imports it: check_source says why
        return _IMPORTS_ALGOPERF.search(text) is not None


def is_self_tuning(folder: Path) -> bool:
    """A folder with neither hparams.json nor tuning_search_space.json: a self-tuning
    submission (its hyperparameters live in submission.py)."""
    return not (folder / "hparams.json").is_file() and not (folder / SEARCH_SPACE_FILE).is_file()


def uses_pmap(tree: ast.AST) -> bool:
    """Whether the source calls `pmap` (pmap-era AlgoPerf: arrays with a leading device axis)."""
    return any((isinstance(n, ast.Attribute) and n.attr == "pmap") or
               (isinstance(n, ast.Name) and n.id == "pmap") for n in ast.walk(tree))


def search_space_point(data: Any, where: str, k: int) -> tuple[dict[str, Any], tuple[int, int]]:
    """Point k of a tuning_search_space.json's content (read from `where`), with (k, seed)."""
    return SearchSpace.from_json(data, where).point(k, SEARCH_SEED), (k, SEARCH_SEED)


class AlgoPerfFormat:
    """AlgoPerf's JAX submissions, run unmodified behind `AlgoPerfSubmission` (this format as
    a `harness.records.submission.SubmissionFormat`)."""

    label = "AlgoPerf submission"
    search_space = SearchSpaceFile(SEARCH_SPACE_FILE, search_space_point)
    #: a folder with neither hparams.json nor a search space is a self-tuning submission
    #: (AlgoPerf's self-tuning ruleset): no hyperparameters, its functions get None
    hyperparameter_free = True

    def recognises(self, folder: Path) -> bool:
        return is_algoperf_folder(folder)

    def check_source(self, source: Path) -> None:
        if "torch" in _imports(_parse(source)):
            raise SpecError(f"{source} is a PyTorch AlgoPerf submission; curvebench runs JAX "
                            "submissions only (port it to JAX, or run it with AlgoPerf's own "
                            "runner)")

    @contextlib.contextmanager
    def executing(self, folder: Path) -> Iterator[list[Path]]:
        """The shim installed, and imports resolved as from AlgoPerf's repository root."""
        with installed(), repo_root_imports(folder) as roots:
            yield roots

    def import_hint(self, error: Exception) -> str:
        removed = removed_api(error)
        if removed is not None:
            return f": {removed}"
        return (" (AlgoPerf submissions' usual dependencies: pip install -e \".[algoperf]\")"
                if isinstance(error, ModuleNotFoundError) else "")

    def adapt(self, module: ModuleType, folder: Path, search_point: tuple[int, int] | None,
              files: Sequence[Path] = ()) -> tuple[AlgoPerfSubmission, Capabilities]:
        """A fresh adapter (it holds one trial's eval results) around the shared module; the
        submission is pmap-era when submission.py or a helper module it imported calls pmap."""
        sources = files or (Path(module.__file__),)
        pmap = any(uses_pmap(_parse(Path(f))) for f in sources if str(f).endswith(".py"))
        adapter = AlgoPerfSubmission(module, folder.name, Convention.PMAP if pmap else Convention.JIT)
        adapter.search_point = search_point
        adapter.self_tuning = is_self_tuning(folder)
        return adapter, Capabilities(static_hparams=True, one_variant_per_program=True,
                                     may_need_concrete_step=True,
                                     prepare_for_eval=adapter.has_prepare_for_eval,
                                     eval_hooks=True)


ALGOPERF = AlgoPerfFormat()
