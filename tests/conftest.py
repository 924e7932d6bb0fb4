"""Shared fixtures: a fresh SQLite results database per test, the real offline MNIST sample;
JAX's persistent compilation cache in a directory of the test session, not the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.db import open_database

REPO = Path(__file__).resolve().parent.parent
SUBMISSIONS = REPO / "submissions"


@pytest.fixture(scope="session", autouse=True)
def session_compile_cache(tmp_path_factory):
    os.environ["CURVEBENCH_COMPILE_CACHE"] = str(tmp_path_factory.mktemp("jax-cache"))


@pytest.fixture
def db(tmp_path):
    return open_database(f"sqlite:///{tmp_path / 'results.db'}")


@pytest.fixture(scope="session")
def mnist_sample():
    from harness.data.mnist import load_mnist_sample

    return load_mnist_sample()
