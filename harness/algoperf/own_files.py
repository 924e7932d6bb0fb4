"""Files an AlgoPerf submission writes itself (its own checkpoints), kept out of the user's
folders: each loaded submission gets a private folder (`OwnFiles.root`, a temporary folder
removed when the process exits), and while its functions run:

- flax's checkpoint functions (`flax.training.checkpoints.save_checkpoint`,
  `save_checkpoint_multiprocess`, `restore_checkpoint`, `latest_checkpoint`) get their
  `ckpt_dir` re-rooted there: a relative `ckpt/` becomes `<root>/ckpt/`, an absolute `/tmp`
  becomes `<root>/tmp` (AlgoPerf's runner gives submissions no folder of their own, so
  published files write to `/tmp` or the working folder, where two trials would overwrite
  each other's files);
- `open` as the submission module calls it writes a relative path under the root, and reads
  a relative path from there when it wrote that file (else from where it points: a file the
  submission reads, not writes, is found as before).

Only these names are redirected, and only while the submission's code runs (the names are
replaced once, by wrappers that act as the originals outside a submission's call): a function imported by name at import time
(`from flax.training.checkpoints import save_checkpoint`), NumPy's or other libraries' own
file functions, and absolute paths given to `open` are not intercepted.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import functools
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

#: flax.training.checkpoints functions whose first argument (or `ckpt_dir`) is the folder
FLAX_FUNCTIONS = ("save_checkpoint", "save_checkpoint_multiprocess", "restore_checkpoint",
                  "latest_checkpoint")
FLAX_MODULE = "flax.training.checkpoints"


def _under(root: Path, path: Any) -> Any:
    """`path` re-rooted under `root` (an absolute path keeps its parts below root)."""
    if not isinstance(path, (str, os.PathLike)):
        return path
    p = Path(os.fsdecode(path))
    if p.is_absolute() and (p == root or root in p.parents):
        return type(path)(p) if isinstance(path, str) else p
    target = root / (p.relative_to(p.anchor) if p.is_absolute() else p)
    return str(target) if isinstance(path, str) else target


#: the private folder of the submission whose code runs in this thread (None: no redirection)
_ROOT: contextvars.ContextVar[Path | None] = contextvars.ContextVar("algoperf_own_files",
                                                                   default=None)


def _redirecting_dir(fn: Any) -> Any:
    """`fn` (a flax checkpoint function) with its folder re-rooted while a submission runs."""
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        root = _ROOT.get()
        if root is not None:
            if "ckpt_dir" in kwargs:
                kwargs["ckpt_dir"] = _under(root, kwargs["ckpt_dir"])
            elif args:
                args = (_under(root, args[0]),) + args[1:]
        return fn(*args, **kwargs)

    call._curvebench_own_files = True
    return call


def _open(file: Any, *args: Any, **kwargs: Any) -> Any:
    """`open` as a submission module sees it: a relative path under the running submission's
    folder (module docstring)."""
    root = _ROOT.get()
    if (root is not None and isinstance(file, (str, os.PathLike))
            and not Path(os.fsdecode(file)).is_absolute()):
        mode = args[0] if args else kwargs.get("mode", "r")
        private = _under(root, file)
        if any(c in mode for c in "wax+"):
            Path(private).parent.mkdir(parents=True, exist_ok=True)
            file = private
        elif Path(private).exists():  # a file it wrote; else a file that was there (its data)
            file = private
    return builtins.open(file, *args, **kwargs)


def _install(module: ModuleType) -> None:
    """The redirecting names, once: on flax's checkpoint module (when imported) and as the
    submission module's `open` (unless it defines its own). Outside a submission's call they
    behave as the originals (no folder is set)."""
    flax_ckpt = sys.modules.get(FLAX_MODULE)
    for name in FLAX_FUNCTIONS if flax_ckpt is not None else ():
        fn = getattr(flax_ckpt, name, None)
        if fn is not None and not getattr(fn, "_curvebench_own_files", False):
            setattr(flax_ckpt, name, _redirecting_dir(fn))
    module.__dict__.setdefault("open", _open)


class OwnFiles:
    """One submission's private folder and the redirection into it (module docstring)."""

    def __init__(self, name: str):
        self.name = name
        self._root: Path | None = None

    @property
    def root(self) -> Path:
        """The folder (made on first use, removed at process exit)."""
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix=f"curvebench-algoperf-{self.name}-"))
            weakref.finalize(self, shutil.rmtree, str(self._root), True)
        return self._root

    @contextlib.contextmanager
    def redirected(self, module: ModuleType) -> Iterator[None]:
        """While the submission `module` runs in this thread: flax's checkpoint folders and
        the module's relative `open` paths under `root`."""
        _install(module)
        token = _ROOT.set(self.root)
        try:
            yield
        finally:
            _ROOT.reset(token)
