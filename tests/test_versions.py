"""A workload's version sees every change of its code: every project file that runs when the
workload is built, initialised, trained on and evaluated is among its version modules, and a
code change in any version module changes the version (prose changes do not)."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from harness import provenance, spec
from harness.environment import REPO_ROOT
from workloads import REGISTRY

PROJECT_DIRS = tuple(str(REPO_ROOT / p) + "/" for p in provenance.PROJECT_PACKAGES)
#: process-wide hooks that run whenever JAX compiles, once an earlier test installed them
#: (the compilation-cache hit counter is a jax.monitoring listener): not workload code
PROCESS_HOOKS = {str(REPO_ROOT / "harness" / "compile_cache.py")}


def _synthetic(workload):
    return workload.synthetic_dataset({"train": 16, "validation": 8}, seed=0)


def _exercise(workload, data=None) -> None:
    """Build, initialise, take a loss and evaluate (for real, through finalize_metrics)."""
    data = data or _synthetic(workload)
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
    covered = {str(Path(m.__file__).resolve()) for m in provenance.version_modules(cls)}
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
    for module in provenance.version_modules(type(workload)):
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
    names = {m.__name__ for m in provenance.version_modules(REGISTRY["ogbg_molpcba"])}
    assert {"workloads.average_precision", "workloads.mnist_mlp", "harness.spec"} <= names
    assert "workloads.toy" not in names and "workloads" not in names  # no unrelated modules
    assert np.all([m.__name__.split(".")[0] in provenance.PROJECT_PACKAGES
                   for m in provenance.version_modules(REGISTRY["cifar_resnet18"])])


# -- the scope: the contract's plumbing and the error classes are outside every version ------

def _with_statement_in(src: str, qualname: str) -> str:
    """`src` with a new statement at the end of the body of the definition `qualname`
    ("Knob.parse", "Workload.eval_batch"): an edit of that definition's code."""
    body = ast.parse(src).body
    for part in qualname.split("."):
        node = next(n for n in body if provenance.defined_names(n) == [part])
        body = node.body
    lines = src.splitlines(keepends=True)
    lines.insert(body[-1].end_lineno, " " * body[-1].col_offset + "edited_by_test = 1\n")
    return "".join(lines)


def _version_with_edit(monkeypatch, workload, module, qualname=None) -> str:
    """The workload's version once `module`'s source has an edit (in `qualname`, else at the end)."""
    real = inspect.getsource

    def edited(obj):
        src = real(obj)
        if obj is not module:
            return src
        return _with_statement_in(src, qualname) if qualname else src + "\nCHANGED = 1\n"

    monkeypatch.setattr(inspect, "getsource", edited)
    try:
        return workload.version
    finally:
        monkeypatch.setattr(inspect, "getsource", real)


@pytest.mark.parametrize("qualname", ["Knob.parse", "Target.reached", "Dataset.size", "_fmt",
                                      "fingerprint_arrays", "Workload.__init__", "Workload.spec",
                                      "Workload.version", "Workload.selecting",
                                      "Workload.describe_knobs", "SubmissionModule"])
def test_editing_the_contracts_plumbing_leaves_every_version(qualname, monkeypatch):
    for name in ("mnist_mlp", "ogbg_molpcba", "noisy_quadratic"):
        workload = REGISTRY[name]()
        assert _version_with_edit(monkeypatch, workload, spec, qualname) == workload.version, \
            f"editing {qualname} moved {name}'s version"


def test_the_error_classes_and_the_version_machinery_are_outside_every_version(monkeypatch):
    from harness import errors
    for cls in REGISTRY.values():
        names = {m.__name__ for m in provenance.version_modules(cls)}
        assert not names & provenance.PLUMBING_MODULES and "harness.spec" in names
    workload = REGISTRY["mnist_mlp"]()
    assert _version_with_edit(monkeypatch, workload, errors) == workload.version
    assert _version_with_edit(monkeypatch, workload, errors, "DataError") == workload.version


@pytest.mark.parametrize("member", ["sample_batch", "eval_batches", "loss", "eval_batch",
                                    "finalize_metrics", "loss_normalizer"])
def test_an_inherited_numeric_default_is_in_the_version_of_exactly_the_workloads_inheriting_it(
        member, monkeypatch):
    for name, cls in sorted(REGISTRY.items()):
        workload = cls()
        inherits = next(c for c in cls.__mro__ if member in vars(c)) is spec.Workload
        moved = _version_with_edit(monkeypatch, workload, spec, f"Workload.{member}") != workload.version
        assert moved == inherits, f"{name} {'inherits' if inherits else 'overrides'} {member}"


def test_a_helper_the_defaults_call_is_in_every_version(monkeypatch):
    workload = REGISTRY["mnist_mlp"]()
    assert _version_with_edit(monkeypatch, workload, spec, "check_per_example") != workload.version
    assert _version_with_edit(monkeypatch, workload, spec, "_pad_rows") != workload.version


def test_a_workload_module_or_data_loader_moves_the_versions_of_the_workloads_using_it(monkeypatch):
    import harness.data.cifar
    import harness.data.mnist
    import workloads.mnist_mlp
    mnist, cifar = REGISTRY["mnist_mlp"](), REGISTRY["cifar_simplecnn"]()
    for module in (workloads.mnist_mlp, harness.data.mnist):
        assert _version_with_edit(monkeypatch, mnist, module) != mnist.version
        assert _version_with_edit(monkeypatch, cifar, module) == cifar.version
    assert _version_with_edit(monkeypatch, cifar, harness.data.cifar) != cifar.version
    assert _version_with_edit(monkeypatch, mnist, harness.data.cifar) == mnist.version


def test_every_definition_of_the_contract_is_declared_plumbing_or_numeric():
    """Unclassified code counts (the safe side); this test asks its author to say which."""
    tree = ast.parse(inspect.getsource(spec))
    top = [n for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom))
           for n in provenance.defined_names(node)]
    workload_node = next(n for n in tree.body if provenance.defined_names(n) == ["Workload"])
    members = [n for node in workload_node.body for n in provenance.defined_names(node)]
    for names, plumbing, numeric in ((top, spec.CONTRACT_PLUMBING, spec.CONTRACT_NUMERIC),
                                     (members, spec.WORKLOAD_PLUMBING, spec.WORKLOAD_NUMERIC)):
        assert not plumbing & numeric, sorted(plumbing & numeric)
        assert set(names) == plumbing | numeric, (
            f"unclassified: {sorted(set(names) - plumbing - numeric)}; "
            f"declared but gone: {sorted((plumbing | numeric) - set(names))}")


#: plumbing that runs while a workload computes but decides none of its numbers: ogbg_molpcba's
#: init builds a Dataset record of example graphs, which fingerprints them
RECORD_CODE = {"Dataset.__post_init__", "fingerprint_arrays"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_TO_TRACE
                                  else n for n in sorted(REGISTRY)])
def test_no_contract_code_a_workload_computes_with_is_declared_plumbing(name):
    """Every function of harness/spec.py that runs while the workload samples, takes a loss
    and evaluates is part of its version (constructing it and its data runs plumbing:
    variant parsing, the data's fingerprint)."""
    workload = REGISTRY[name]()
    data = _synthetic(workload)
    ran: set[str] = set()

    def profile(frame, event, _arg):
        if event == "call" and frame.f_code.co_filename == spec.__file__:
            ran.add(frame.f_code.co_qualname)

    sys.setprofile(profile)
    try:
        _exercise(workload, data)
    finally:
        sys.setprofile(None)
    plumbing = spec.CONTRACT_PLUMBING | {f"Workload.{m}" for m in spec.WORKLOAD_PLUMBING}
    assert ran, "the profile saw no contract code"
    ran_plumbing = sorted(q for q in ran - RECORD_CODE if q in plumbing or q.split(".")[0] in plumbing)
    assert not ran_plumbing, f"{name} computes with plumbing: {ran_plumbing}"
