"""Text every machine has offline: source files of the running Python's standard library, as
bytes, cut into next-byte prediction windows.

The files are a fixed list (TRAIN_FILES, VALIDATION_FILES: modules that are one file in every
CPython from 3.8 on), read from `sysconfig`'s stdlib directory in that order and joined. Their
bytes differ between Python minor versions (and where a distribution patches one), so the
dataset's name and source carry the Python version and its fingerprint is computed from the
arrays, which hold every byte used: runs on other text never compare with each other.

inputs: int32 (N, context) byte values; targets: int32 (N, context), each input shifted one
byte ahead. Windows do not overlap: window i reads bytes [i*context, (i+1)*context] of its
split's stream; a tail shorter than that is not used.
"""

from __future__ import annotations

import functools
import sys
import sysconfig
from pathlib import Path

import numpy as np

from harness.errors import DataError
from harness.spec import Dataset, DataUnavailable

VOCAB = 256  # byte values
TRAIN_FILES = (
    "argparse.py", "ast.py", "calendar.py", "configparser.py", "contextlib.py", "difflib.py",
    "dis.py", "enum.py", "functools.py", "ipaddress.py", "pickle.py", "random.py", "shutil.py",
    "statistics.py", "textwrap.py", "threading.py", "traceback.py")
VALIDATION_FILES = ("fractions.py", "tempfile.py")


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


@functools.lru_cache(maxsize=4)
def read_stream(files: tuple[str, ...], directory: str) -> np.ndarray:
    """The bytes of `files` in `directory`, in that order, as one uint8 array."""
    missing = [f for f in files if not (Path(directory) / f).is_file()]
    if missing:
        raise DataUnavailable(f"stdlib text: {directory} lacks {', '.join(missing)} (this "
                              f"Python's standard library sources are not installed; install "
                              f"its full stdlib, e.g. the distribution's python3-stdlib package)")
    return np.frombuffer(b"".join((Path(directory) / f).read_bytes() for f in files), np.uint8)


def windows(stream: np.ndarray, context: int) -> dict[str, np.ndarray]:
    """Non-overlapping next-byte windows of `context` bytes (targets one byte ahead)."""
    n = (len(stream) - 1) // context
    if n < 1:
        raise DataError(f"stdlib text: {len(stream)} bytes make no window of {context}")
    tokens = stream[: n * context + 1].astype(np.int32)
    return {"inputs": tokens[:-1].reshape(n, context), "targets": tokens[1:].reshape(n, context)}


def load_stdlib_text(context: int, data_dir: str | None = None, source: str | None = None) -> Dataset:
    """The train and validation windows; `data_dir`: another directory holding the same files
    (e.g. another Python's stdlib), recorded in the source."""
    if source not in (None, "stdlib"):
        raise DataUnavailable(f"unknown stdlib text source {source!r}; valid: stdlib")
    directory = str(data_dir or stdlib_dir())
    splits = {"train": windows(read_stream(TRAIN_FILES, directory), context),
              "validation": windows(read_stream(VALIDATION_FILES, directory), context)}
    where = f"python{python_version()}-stdlib" + (f":{directory}" if data_dir else "")
    return Dataset(name=f"stdlib_text-py{python_version()}", source=where, splits=splits)


def synthetic_text_dataset(name: str, sizes, context: int, seed: int = 0) -> Dataset:
    """Uniform random bytes of the real shapes (no signal), one entry per split size."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in sizes.items():
        stream = rng.integers(0, VOCAB, n * context + 1).astype(np.uint8)
        splits[split] = windows(stream, context)
    return Dataset(name=f"synthetic-{name}", source="synthetic", splits=splits)
