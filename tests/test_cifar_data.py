"""The CIFAR-10 loader on small data written in the real python-version format."""

from __future__ import annotations

import pickle
import shutil
import tarfile

import numpy as np
import pytest

from harness.data import cifar
from harness.spec import DataUnavailable

N_TRAIN, N_TEST = 100, 20


def real_format_pickle(entry: dict) -> bytes:
    """Pickle as the original Python 2 files do: protocol 2, arrays rebuilt through
    numpy.core.multiarray._reconstruct (the module path numpy 1.x wrote)."""
    raw = pickle.dumps(entry, protocol=2)
    return raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def raw_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
    """One batch laid out by hand as the CIFAR page documents: each row is the 1024 red,
    then 1024 green, then 1024 blue values of an image, row-major."""
    rows = np.stack([np.concatenate([img[:, :, c].ravel() for c in range(3)]) for img in images])
    return real_format_pickle({b"batch_label": b"batch", b"labels": [int(y) for y in labels],
                               b"data": rows.astype(np.uint8),
                               b"filenames": [b"x.png"] * len(images)})


@pytest.fixture(scope="module")
def raw_data():
    rng = np.random.default_rng(5)
    return {"train_images": rng.integers(0, 256, (N_TRAIN, 32, 32, 3), dtype=np.uint8),
            "train_labels": rng.integers(0, 10, N_TRAIN).astype(np.int32),
            "test_images": rng.integers(0, 256, (N_TEST, 32, 32, 3), dtype=np.uint8),
            "test_labels": rng.integers(0, 10, N_TEST).astype(np.int32)}


def write_real_folder(root, raw) -> None:
    """DIR/cifar-10-batches-py/ with five hand-laid train batches, test_batch and batches.meta."""
    folder = root / cifar.FOLDER_NAME
    folder.mkdir(parents=True)
    chunks = np.array_split(np.arange(N_TRAIN), 5)
    for fname, idx in zip(cifar.TRAIN_FILES, chunks):
        (folder / fname).write_bytes(raw_batch(raw["train_images"][idx], raw["train_labels"][idx]))
    (folder / cifar.TEST_FILE).write_bytes(raw_batch(raw["test_images"], raw["test_labels"]))
    (folder / "batches.meta").write_bytes(real_format_pickle({b"label_names": [b"a"] * 10}))


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, raw_data):
    root = tmp_path_factory.mktemp("cifar_extracted")
    write_real_folder(root, raw_data)
    return root


@pytest.fixture(scope="module")
def packed(tmp_path_factory, extracted):
    root = tmp_path_factory.mktemp("cifar_packed")
    with tarfile.open(root / cifar.ARCHIVE_NAME, "w:gz") as tar:
        tar.add(extracted / cifar.FOLDER_NAME, arcname=cifar.FOLDER_NAME)
    return root


def expected_normalised(images: np.ndarray, train_images: np.ndarray) -> np.ndarray:
    pixels = train_images.reshape(-1, 3).astype(np.float64)
    return (images - pixels.mean(0)) / pixels.std(0)


def test_every_way_of_pointing_at_the_data_gives_the_same_dataset(extracted, packed):
    fingerprints = {cifar.load_cifar10(str(path)).fingerprint for path in (
        extracted, extracted / cifar.FOLDER_NAME, packed, packed / cifar.ARCHIVE_NAME)}
    assert len(fingerprints) == 1


def test_splits_shapes_dtypes_labels_and_order(extracted, raw_data):
    ds = cifar.load_cifar10(str(extracted))
    cut = N_TRAIN - N_TRAIN // 10
    assert {k: ds.size(k) for k in ds.splits} == {"train": cut, "validation": N_TRAIN - cut,
                                                  "test": N_TEST}
    for split in ds.splits.values():
        assert split["inputs"].dtype == np.float32 and split["inputs"].shape[1:] == (32, 32, 3)
        assert split["targets"].dtype == np.int32
        assert split["targets"].min() >= 0 and split["targets"].max() <= 9
    train_raw = raw_data["train_images"][:cut]
    np.testing.assert_array_equal(ds.splits["train"]["targets"], raw_data["train_labels"][:cut])
    np.testing.assert_array_equal(ds.splits["validation"]["targets"], raw_data["train_labels"][cut:])
    np.testing.assert_array_equal(ds.splits["test"]["targets"], raw_data["test_labels"])
    for split, images in (("train", train_raw), ("validation", raw_data["train_images"][cut:]),
                          ("test", raw_data["test_images"])):
        np.testing.assert_allclose(ds.splits[split]["inputs"],
                                   expected_normalised(images, train_raw), atol=1e-5)


def test_train_split_is_normalised_per_channel(extracted):
    x = cifar.load_cifar10(str(extracted)).splits["train"]["inputs"].reshape(-1, 3)
    np.testing.assert_allclose(x.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(0), 1.0, atol=1e-4)


def test_split_is_deterministic(packed):
    a, b = cifar.load_cifar10(str(packed)), cifar.load_cifar10(str(packed))
    assert a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.splits["validation"]["inputs"], b.splits["validation"]["inputs"])


def test_full_size_split_is_45000_5000():
    images = np.zeros((50_000, 1, 1, 3), np.uint8)  # 1x1 pixels: the split ignores image size
    images[::2] = 255
    labels = np.arange(50_000) % 10
    ds = cifar.split_and_normalise(images, labels, images[:10], labels[:10], "test")
    assert (ds.size("train"), ds.size("validation"), ds.size("test")) == (45_000, 5_000, 10)
    np.testing.assert_array_equal(ds.splits["validation"]["targets"], labels[45_000:])


def test_pixel_layout_is_channel_major_rows():
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 0, 1, 0], image[0, 2, 0, 1], image[0, 31, 31, 2] = 10, 20, 30
    images, labels = cifar.read_batch(raw_batch(image, [7]), "one")
    np.testing.assert_array_equal(images, image)
    assert labels.tolist() == [7]


def test_writer_round_trips_through_the_loader(tmp_path, raw_data):
    cifar.write_cifar10_python(tmp_path, raw_data["train_images"], raw_data["train_labels"],
                               raw_data["test_images"], raw_data["test_labels"], pack=True)
    assert (tmp_path / cifar.ARCHIVE_NAME).is_file()
    assert not (tmp_path / cifar.FOLDER_NAME).exists()
    ds = cifar.load_cifar10(str(tmp_path))
    np.testing.assert_array_equal(ds.splits["test"]["targets"], raw_data["test_labels"])


def test_missing_data_says_what_to_put_where(tmp_path):
    with pytest.raises(DataUnavailable) as e:
        cifar.load_cifar10(str(tmp_path))
    message = str(e.value)
    assert str(tmp_path / cifar.ARCHIVE_NAME) in message
    assert cifar.ARCHIVE_URL in message and "tfds build cifar10" in message


def test_missing_batch_file_is_named(tmp_path, extracted):
    shutil.copytree(extracted / cifar.FOLDER_NAME, tmp_path / cifar.FOLDER_NAME)
    (tmp_path / cifar.FOLDER_NAME / cifar.TEST_FILE).unlink()
    with pytest.raises(DataUnavailable, match="test_batch"):
        cifar.load_cifar10(str(tmp_path))


def test_archive_without_the_python_folder_is_refused(tmp_path):
    (tmp_path / "other.txt").write_text("not cifar")
    with tarfile.open(tmp_path / cifar.ARCHIVE_NAME, "w:gz") as tar:
        tar.add(tmp_path / "other.txt", arcname="cifar-10-batches-bin/other.txt")
    with pytest.raises(DataUnavailable, match="cifar-10-batches-py/data_batch_1"):
        cifar.load_cifar10(str(tmp_path / cifar.ARCHIVE_NAME))


def test_pickle_naming_other_code_is_refused_without_running_it():
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    with pytest.raises(ValueError, match="print; only numpy arrays"):
        cifar.read_batch(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2), "evil")


@pytest.mark.parametrize("entry, message", [
    ({b"labels": [1]}, "no b'data'"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}, "expected uint8"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "1 labels for 2 images"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, "labels outside"),
])
def test_malformed_batches_are_refused(entry, message):
    with pytest.raises(ValueError, match=message):
        cifar.read_batch(pickle.dumps(entry, protocol=2), "bad")


def test_unknown_source_and_python_source_without_dir_are_refused():
    with pytest.raises(DataUnavailable, match="valid: python, tfds"):
        cifar.load_cifar10(None, "imagenet")
    with pytest.raises(DataUnavailable, match="--data-dir"):
        cifar.load_cifar10(None, "python")


def test_tfds_source_without_tfds_says_how_to_install():
    try:
        import tensorflow_datasets  # noqa: F401
        pytest.skip("tensorflow-datasets is installed here")
    except ImportError:
        pass
    with pytest.raises(DataUnavailable, match="pip install tensorflow-datasets"):
        cifar.load_cifar10(None, None)
