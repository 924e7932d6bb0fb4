"""The folders commands write into (report, export, refs export, analyze --report): files
this suite did not write are never overwritten or deleted.

A folder written by a command holds `.curvebench-files`, the names it wrote. Writing again
may replace or remove those names; a file of another name in the way, or a folder that holds
files and was never written by curvebench, is refused (one line), unless `force`. The path itself must name a folder: '' or blank, a file, or a
place that cannot be created is refused before any work starts. Imports only harness.errors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from harness.errors import OutputError

MANIFEST = ".curvebench-files"


def check_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """The folder `path` names, created if missing; refused if blank, a file, or not creatable
    or writable there."""
    if not str(path).strip():
        raise OutputError(f"{option} {str(path)!r} names no folder; give a folder path")
    out = Path(path)
    if out.resolve() == Path(out.resolve().anchor):
        raise OutputError(f"{option} {out} is the file system's root; give a folder of its own")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{option} {out} is a file, not a folder; give a folder path")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{option} {out}: cannot create the folder ({e.strerror}); give a "
                          "writable folder path") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"{option} {out} is not writable; give a writable folder path")
    return out


def ours(out: Path) -> set[str]:
    """The names a command of this suite wrote into `out` (its manifest)."""
    try:
        names = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return set()
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def claim(path: str | os.PathLike, names: Iterable[str], *, force: bool = False,
          option: str = "--out") -> Path:
    """Make ready to write `names` into the folder: refused (before anything is written) if one
    of them exists and this suite did not write it, unless `force`. Returns the folder."""
    out = check_folder(path, option)
    names = list(names)
    mine = ours(out)
    if not mine and not force and any(p.name != MANIFEST for p in out.iterdir()):
        raise OutputError(f"{option} {out} already holds files curvebench did not write: give an "
                          "empty or new folder, or --force to write beside them")
    foreign = [n for n in names if (out / n).exists() and n not in mine]
    if foreign and not force:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputError(f"{option} {out} holds {shown}, not written by curvebench: give an empty "
                          "or new folder, or --force to replace them")
    for n in names:
        if (out / n).is_symlink() or ((out / n).exists() and not (out / n).is_file()):
            raise OutputError(f"{option} {out}: {n} there is a link or a folder; give another folder")
    (out / MANIFEST).write_text(json.dumps(sorted(mine | set(names))))
    return out


def remove_stale(out: Path, keep: Iterable[str], pattern: str) -> None:
    """Remove files matching `pattern` that this suite wrote earlier and `keep` does not name;
    files it did not write are left alone."""
    keep, mine, removed = set(keep), ours(out), set()
    for old in out.glob(pattern):
        if old.name in mine and old.name not in keep and old.is_file():
            old.unlink()
            removed.add(old.name)
    (out / MANIFEST).write_text(json.dumps(sorted((mine - removed) | keep)))
