"""Synthetic datasets of a workload's real shapes, for contract tests and speed benchmarks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from harness.spec import Dataset


def synthetic_image_dataset(name: str, sizes: Mapping[str, int], shape: tuple[int, ...],
                            num_classes: int, seed: int = 0) -> Dataset:
    """Uniform [0, 1) float32 images and uniform int32 labels, one entry per split size."""
    rng = np.random.default_rng(seed)
    splits = {split: {"inputs": rng.random((n,) + tuple(shape), dtype=np.float32),
                      "targets": rng.integers(0, num_classes, n).astype(np.int32)}
              for split, n in sizes.items()}
    return Dataset(name=f"synthetic-{name}", source="synthetic", splits=splits)
