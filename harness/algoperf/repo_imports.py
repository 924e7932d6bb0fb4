"""Helper modules a submission imports by their path in AlgoPerf's repository.

AlgoPerf's runner runs from the root of its repository, so a submission there imports its
helpers by their path from that root: `from algorithms.<...> import x`, `from submissions.<...>
import y`, `from reference_algorithms.<...> import z`. A submission copied with its folder
tree keeps that root among its folder's ancestors. While such a submission executes,
`repo_root_imports(folder)` resolves a top-level name the way the runner would there:

- a module or regular package Python already finds (installed, or on sys.path) wins;
- otherwise (not found, or only a namespace package such as a bare folder on sys.path) the
  nearest of the submission's folder and its ancestors that holds `<name>/` or `<name>.py`
  provides it.

Modules imported this way are removed from `sys.modules` when the block ends (the submission
keeps the objects it bound), so two submissions from different trees never share them; a
helper imported lazily, inside a function the submission calls later, is not resolved.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path


class _RepoRootFinder(importlib.abc.MetaPathFinder):
    """Finds top-level names under the nearest ancestor of a folder that holds them."""

    def __init__(self, folder: Path):
        self.roots = [folder, *folder.parents]
        self.claimed: set[str] = set()
        #: the folders and files the claimed names were found at (the submission's code)
        self.locations: list[Path] = []

    def find_spec(self, fullname: str, path: Sequence[str] | None, target=None):
        if "." in fullname or path is not None:
            return None
        found = importlib.machinery.PathFinder.find_spec(fullname)
        if found is not None and found.origin is not None and found.loader is not None:
            return None
        for root in self.roots:
            if (root / fullname).is_dir() or (root / f"{fullname}.py").is_file():
                spec = importlib.machinery.PathFinder.find_spec(fullname, [str(root)])
                if spec is not None:
                    self.claimed.add(fullname)
                    self.locations.append(root / fullname if (root / fullname).is_dir()
                                          else root / f"{fullname}.py")
                    return spec
        return None


@contextlib.contextmanager
def repo_root_imports(folder: Path) -> Iterator[list[Path]]:
    """Inside the block, top-level imports resolve as from AlgoPerf's repository root (see
    the module docstring); the modules imported that way leave sys.modules afterwards. Yields
    the list of where they were found (filled as they are imported)."""
    finder = _RepoRootFinder(Path(folder).resolve())
    sys.meta_path.insert(0, finder)
    try:
        yield finder.locations
    finally:
        sys.meta_path.remove(finder)
        for name in list(sys.modules):
            if name.partition(".")[0] in finder.claimed:
                del sys.modules[name]
