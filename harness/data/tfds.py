"""Read a dataset's train and test splits through TensorFlow Datasets as numpy arrays."""

from __future__ import annotations

from typing import Any

from harness.spec import DataUnavailable


def load_tfds_train_test(name: str, data_dir: str | None, download: bool,
                         how_to_get: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """The whole train and test splits of TFDS dataset `name`; downloads only if asked.
    Raises DataUnavailable saying what to install or build when they are not here."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataUnavailable("source 'tfds' needs tensorflow-datasets: pip install "
                              f"tensorflow-datasets tensorflow-cpu. {how_to_get}".strip()) from None
    try:
        train, test = tfds.as_numpy(tfds.load(name, split=["train", "test"], batch_size=-1,
                                              data_dir=data_dir, download=download))
    except Exception as e:  # tfds raises several types for "not prepared"
        raise DataUnavailable(f"TFDS {name} is not prepared ({e}); run `tfds build {name}` "
                              "or pass --data-source tfds-download") from e
    return train, test
