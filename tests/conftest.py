"""Shared fixtures: a fresh SQLite results database per test, the real offline MNIST sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.db import open_database

REPO = Path(__file__).resolve().parent.parent
SUBMISSIONS = REPO / "submissions"


@pytest.fixture
def db(tmp_path):
    return open_database(f"sqlite:///{tmp_path / 'results.db'}")


@pytest.fixture(scope="session")
def mnist_sample():
    from harness.data.mnist import load_mnist_sample

    return load_mnist_sample()
