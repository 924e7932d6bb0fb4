"""A workload's version sees every change of its code: every project file that runs when the
workload is built, initialised, trained on and evaluated is among its version modules, and a
code change in any version module changes the version (prose changes do not)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from harness import spec
from harness.environment import REPO_ROOT
from workloads import REGISTRY

PROJECT_DIRS = tuple(str(REPO_ROOT / p) + "/" for p in spec.PROJECT_PACKAGES)
#: process-wide hooks that run whenever JAX compiles, once an earlier test installed them
#: (the compilation-cache hit counter is a jax.monitoring listener): not workload code
PROCESS_HOOKS = {str(REPO_ROOT / "harness" / "compile_cache.py")}


def _exercise(workload) -> None:
    """Build, initialise, take a loss and evaluate (for real, through finalize_metrics)."""
    data = workload.synthetic_dataset({"train": 16, "validation": 8}, seed=0)
    key = jax.random.PRNGKey(0)
    params, state = jax.eval_shape(workload.init, key)
    if workload.input_mode == "host":
        batch = next(iter(workload.train_batches(data, 4, 0)))
    else:
        batch = workload.sample_batch(data.splits["train"], key, 4)
    jax.eval_shape(lambda p, s, b: workload.loss(p, s, b, rng=key), params, state, batch)
    eval_batch = next(iter(workload.eval_batches(data.splits["validation"], 8)))
    shapes = jax.eval_shape(workload.eval_batch, params, state, eval_batch)
    rng = np.random.default_rng(0)
    outputs = {k: rng.integers(0, 2, s.shape).astype(s.dtype) for k, s in shapes.items()}
    workload.finalize_metrics([outputs])


def _executed_project_files(fn) -> set[str]:
    seen: set[str] = set()

    def profile(frame, event, _arg):
        if event == "call":
            name = frame.f_code.co_filename
            if name.startswith(PROJECT_DIRS) and name not in PROCESS_HOOKS:
                seen.add(name)

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return seen


#: conv nets take minutes to trace under the profiler on CPU: slow tests
SLOW_TO_TRACE = {"cifar_resnet18", "cifar_resnet_ln", "cifar_simplecnn"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_TO_TRACE
                                  else n for n in sorted(REGISTRY)])
def test_every_file_a_workload_runs_is_part_of_its_version(name):
    cls = REGISTRY[name]
    covered = {str(Path(m.__file__).resolve()) for m in spec.version_modules(cls)}
    executed = _executed_project_files(lambda: _exercise(cls()))
    assert executed, "the profile saw no project code"
    missing = sorted(str(Path(f).relative_to(REPO_ROOT)) for f in executed
                     if str(Path(f).resolve()) not in covered)
    assert not missing, f"{name}'s version misses code it runs: {missing}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_a_code_change_in_any_version_module_changes_the_version(name, monkeypatch):
    workload = REGISTRY[name]()
    before = workload.version
    real = inspect.getsource
    for module in spec.version_modules(type(workload)):
        monkeypatch.setattr(inspect, "getsource",
                            lambda obj, m=module, extra="\nCHANGED = 1\n":
                            real(obj) + (extra if obj is m else ""))
        assert workload.version != before, f"editing {module.__name__} left {name}'s version"
        monkeypatch.setattr(inspect, "getsource",
                            lambda obj, m=module: real(obj) + ("\n# a comment\n" if obj is m else ""))
        assert workload.version == before, f"a comment in {module.__name__} changed the version"
    monkeypatch.setattr(inspect, "getsource", real)


def test_the_cases_that_used_to_slip_through_are_covered():
    """Halving the mAP (workloads/average_precision.py) or changing ACTIVATIONS["gelu"]
    (workloads/mnist_mlp.py) used to leave ogbg_molpcba's version unchanged."""
    names = {m.__name__ for m in spec.version_modules(REGISTRY["ogbg_molpcba"])}
    assert {"workloads.average_precision", "workloads.mnist_mlp", "harness.spec"} <= names
    assert "workloads.toy" not in names and "workloads" not in names  # no unrelated modules
    assert np.all([m.__name__.split(".")[0] in spec.PROJECT_PACKAGES
                   for m in spec.version_modules(REGISTRY["cifar_resnet18"])])
