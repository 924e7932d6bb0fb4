"""CIFAR-10 sources: the python-version archive (or its extracted folder) and TFDS.

Every source yields the same arrays: inputs float32 (N, 32, 32, 3), normalised per
channel with the mean and standard deviation of the train split; targets int32 (N,)
in 0..9. Splits: the first 90% of the 50,000 training images are "train" (45,000),
the last 10% "validation" (5,000, as AlgoPerf's CIFAR workload), plus the 10,000
"test" images. The split follows the order of the source's own files, so it is the
same on every load.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.data.tfds import load_tfds_train_test
from harness.errors import DataError
from harness.spec import Dataset, DataUnavailable

ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)
#: the last tenth of the training set is validation: 5,000 of 50,000.
VALIDATION_FRACTION = 0.1

HOW_TO_GET = (
    f"CIFAR-10 is not on this machine. Either download {ARCHIVE_URL} (the python version, "
    f"{ARCHIVE_NAME}, 170,498,071 bytes) into a folder DIR, keep it packed or extract it "
    f"there (giving DIR/{FOLDER_NAME}/), and pass --data-dir DIR; or prepare it for TFDS "
    "with `pip install tensorflow-datasets tensorflow-cpu && tfds build cifar10` and pass "
    "--data-source tfds (or --data-source tfds-download to let TFDS download it).")

# The only globals a CIFAR batch pickle may name: numpy array reconstruction and
# Python 3's re-encoding of Python 2 byte strings. Anything else is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("_codecs", "encode"): ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that only builds numpy arrays, so a tampered file cannot run code."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}; "
                                         "only numpy arrays are allowed")
        real_module, real_name = _ALLOWED_GLOBALS[(module, name)]
        return getattr(importlib.import_module(real_module), real_name)


def read_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one CIFAR-10 python batch: uint8 images (N, 32, 32, 3) and int32 labels (N,)."""
    try:
        entry = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise DataError(f"{name}: not a CIFAR-10 python batch ({e})") from None
    if not isinstance(entry, dict) or b"data" not in entry or b"labels" not in entry:
        raise DataError(f"{name}: not a CIFAR-10 python batch (no b'data'/b'labels' entries)")
    data = np.asarray(entry[b"data"])
    labels = np.asarray(entry[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{name}: data is {data.dtype}{data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (len(data),):
        raise DataError(f"{name}: {labels.size} labels for {len(data)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{name}: labels outside 0..{NUM_CLASSES - 1}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int32)


def write_batch(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray,
                batch_label: str) -> None:
    """Write one batch in the python-version format (pickled dict, channel-major rows)."""
    images = np.asarray(images, np.uint8)
    if images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"images must be (N, 32, 32, 3) uint8, got {images.shape}")
    entry = {b"batch_label": batch_label.encode(),
             b"labels": [int(y) for y in labels],
             b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1),
             b"filenames": [f"image_{i:05d}.png".encode() for i in range(len(images))]}
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)


def write_cifar10_python(directory: str | os.PathLike, train_images: np.ndarray,
                         train_labels: np.ndarray, test_images: np.ndarray,
                         test_labels: np.ndarray, *, pack: bool = False) -> Path:
    """Write DIR/cifar-10-batches-py/ (five train batches + test_batch + batches.meta),
    and with `pack` the archive DIR/cifar-10-python.tar.gz instead; returns what was written."""
    directory = Path(directory)
    folder = directory / FOLDER_NAME
    folder.mkdir(parents=True, exist_ok=True)
    chunks = np.array_split(np.arange(len(train_images)), len(TRAIN_FILES))
    for i, (fname, idx) in enumerate(zip(TRAIN_FILES, chunks)):
        write_batch(folder / fname, train_images[idx], train_labels[idx],
                    f"training batch {i + 1} of {len(TRAIN_FILES)}")
    write_batch(folder / TEST_FILE, test_images, test_labels, "testing batch 1 of 1")
    meta = {b"num_cases_per_batch": len(chunks[0]), b"num_vis": 3072,
            b"label_names": [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer",
                                                  "dog", "frog", "horse", "ship", "truck")]}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    if not pack:
        return folder
    archive = directory / ARCHIVE_NAME
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=FOLDER_NAME)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    return archive


def _folder_reader(folder: Path) -> Callable[[str], bytes]:
    def read(fname: str) -> bytes:
        path = folder / fname
        if not path.is_file():
            raise DataUnavailable(f"CIFAR-10 folder {folder} lacks {fname}; it should hold "
                                  f"{', '.join(TRAIN_FILES + (TEST_FILE,))}. {HOW_TO_GET}")
        return path.read_bytes()
    return read


def _archive_reader(archive: Path) -> Callable[[str], bytes]:
    try:
        tar = tarfile.open(archive, "r:*")
        members = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{archive}: not a readable tar archive, truncated or corrupt "
                        f"({type(e).__name__}: {e}); download it again. {HOW_TO_GET}") from None

    def read(fname: str) -> bytes:
        member = members.get(f"{FOLDER_NAME}/{fname}")
        if member is None:
            raise DataUnavailable(f"{archive} lacks {FOLDER_NAME}/{fname}: is it the python "
                                  f"version of CIFAR-10? {HOW_TO_GET}")
        try:
            return tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DataError(f"{archive}: {FOLDER_NAME}/{fname} is truncated or corrupt "
                            f"({type(e).__name__}: {e}); download the archive again") from None
    return read


def locate(data_dir: str | os.PathLike) -> tuple[str, Callable[[str], bytes]]:
    """Find CIFAR-10 under `data_dir`: the archive itself, a folder holding the archive or
    cifar-10-batches-py/, or cifar-10-batches-py/ itself. Returns (description, reader)."""
    path = Path(data_dir).expanduser()
    if path.is_file():
        return f"archive:{path}", _archive_reader(path)
    if (path / TRAIN_FILES[0]).is_file():
        return f"folder:{path}", _folder_reader(path)
    if (path / FOLDER_NAME).is_dir():
        return f"folder:{path / FOLDER_NAME}", _folder_reader(path / FOLDER_NAME)
    if (path / ARCHIVE_NAME).is_file():
        return f"archive:{path / ARCHIVE_NAME}", _archive_reader(path / ARCHIVE_NAME)
    raise DataUnavailable(f"no CIFAR-10 at {path}: expected {path / ARCHIVE_NAME} or "
                          f"{path / FOLDER_NAME}/. {HOW_TO_GET}")


def split_and_normalise(train_images: np.ndarray, train_labels: np.ndarray,
                        test_images: np.ndarray, test_labels: np.ndarray,
                        source: str) -> Dataset:
    """Hold out the last tenth of the training set as validation and normalise every split
    per channel with the train split's mean and standard deviation."""
    n = len(train_images)
    n_val = int(round(n * VALIDATION_FRACTION))
    if n_val < 1 or n_val >= n:
        raise DataError(f"CIFAR-10 training set of {n} images is too small to split")
    cut = n - n_val
    pixels = train_images[:cut].reshape(-1, 3).astype(np.float64)
    mean, std = pixels.mean(0), pixels.std(0)
    if np.any(std == 0):
        raise DataError("CIFAR-10 train split has a constant colour channel; cannot normalise")
    scale = (1.0 / std).astype(np.float32)

    def arrays(images, labels):
        x = (images.astype(np.float32) - mean.astype(np.float32)) * scale
        return {"inputs": x, "targets": np.asarray(labels, np.int32)}

    splits = {"train": arrays(train_images[:cut], train_labels[:cut]),
              "validation": arrays(train_images[cut:], train_labels[cut:]),
              "test": arrays(test_images, test_labels)}
    return Dataset(name="cifar10", source=source, splits=splits)


def load_cifar10_python(data_dir: str | os.PathLike) -> Dataset:
    """CIFAR-10 from the python-version archive or its extracted folder (see `locate`)."""
    where, read = locate(data_dir)
    parts = [read_batch(read(f), f) for f in TRAIN_FILES]
    train_images = np.concatenate([p[0] for p in parts])
    train_labels = np.concatenate([p[1] for p in parts])
    test_images, test_labels = read_batch(read(TEST_FILE), TEST_FILE)
    return split_and_normalise(train_images, train_labels, test_images, test_labels,
                               f"cifar10-python:{where}")


def load_cifar10_tfds(data_dir: str | None = None, download: bool = False) -> Dataset:
    """CIFAR-10 through TensorFlow Datasets; downloads only when the user asks for it."""
    train, test = load_tfds_train_test("cifar10", data_dir, download, HOW_TO_GET)
    return split_and_normalise(train["image"], train["label"], test["image"], test["label"],
                               "tfds:cifar10")


def load_cifar10(data_dir: str | None = None, source: str | None = None) -> Dataset:
    """CIFAR-10 from `source`: 'python' (the archive or folder in data_dir; the default when
    data_dir is given), 'tfds' (the default without data_dir) or 'tfds-download'."""
    source = source or ("python" if data_dir else "tfds")
    if source == "python":
        if not data_dir:
            raise DataUnavailable(f"source 'python' needs --data-dir. {HOW_TO_GET}")
        return load_cifar10_python(data_dir)
    if source in ("tfds", "tfds-download"):
        return load_cifar10_tfds(data_dir, download=source == "tfds-download")
    raise DataUnavailable(f"unknown CIFAR-10 source {source!r}; valid: python, tfds, tfds-download")
