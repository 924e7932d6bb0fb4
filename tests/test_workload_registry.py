"""The registry finds its workloads: built-ins by scanning workloads/, installed ones through
the `curvebench.workloads` entry point of a real distribution (tests/installed_workload.py)."""

from __future__ import annotations

import json

from tests.installed_workload import curvebench, install, python
from workloads import BROKEN, REGISTRY

VERSION = ("from workloads import get_workload; w = get_workload('{spec}'); "
           "print(w.version, [m.__name__ for m in __import__('harness.provenance', fromlist=['x'])"
           ".version_modules(type(w))])")


def test_builtins_register_themselves():
    """Every Workload subclass with its own name in workloads/ is registered, no list to edit."""
    import importlib
    import inspect
    import pkgutil

    import workloads
    from harness.spec import Workload
    defined = {obj.name for info in pkgutil.iter_modules(workloads.__path__)
               for obj in vars(importlib.import_module(f"workloads.{info.name}")).values()
               if isinstance(obj, type) and issubclass(obj, Workload) and "name" in vars(obj)
               and not inspect.isabstract(obj)}
    assert defined == set(REGISTRY) and {"mnist_mlp", "ogbg_molpcba", "lowrank"} <= defined
    assert not BROKEN


def test_installed_workload_listed_and_versioned(tmp_path):
    site = install(tmp_path / "site")
    listed = curvebench(site, "workloads", "--json")
    assert listed.returncode == 0, listed.stderr
    entry = {w["name"]: w for w in json.loads(listed.stdout)}["shift_tokens"]
    assert entry["module"] == "shift_tokens_pkg" and entry["scored_by_default"] is False

    first = python(site, VERSION.format(spec="shift_tokens"))
    assert first.returncode == 0, first.stderr
    version, modules = first.stdout.split(" ", 1)
    assert "shift_tokens_pkg" in modules and "harness.spec" in modules
    assert python(site, VERSION.format(spec="shift_tokens:width=8")).stdout.split()[0] != version
    # the package's own code is in its version: an edit that changes a number moves it
    module = site / "shift_tokens_pkg.py"
    module.write_text(module.read_text().replace("rng = np.random.default_rng(7)",
                                                 "rng = np.random.default_rng(8)"))
    assert python(site, VERSION.format(spec="shift_tokens")).stdout.split()[0] != version


def test_broken_entry_points_are_named_not_fatal(tmp_path):
    """A package whose entry point fails to import, or names a workload under another name,
    stops neither the listing nor any other workload; asking for it says what is wrong."""
    site = install(tmp_path / "site", entry_points={"shift_tokens": "shift_tokens_pkg:ShiftTokens",
                                                    "no_such": "shift_tokens_pkg:Missing",
                                                    "renamed": "shift_tokens_pkg:ShiftTokens"})
    listed = curvebench(site, "workloads", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {w["name"] for w in json.loads(listed.stdout)}
    assert "shift_tokens" in names and "mnist_mlp" in names and not {"no_such", "renamed"} & names
    assert "'no_such' not registered" in listed.stderr and "renamed" in listed.stderr
    bad = curvebench(site, "run", "--workload", "renamed", "--submission", "adam", "--db", tmp_path / "x.db")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "make the two agree" in bad.stderr


def test_installed_per_token_workload_trains_to_its_target_through_the_cli(tmp_path):
    """Per-token logits over integer inputs, no default overridden: `run` trains it to target
    and stores its version and data fingerprint as for a built-in."""
    site = install(tmp_path / "site")
    res = curvebench(site, "run", "--workload", "shift_tokens", "--submission", "adam",
                     "--db", tmp_path / "r.db", "--json")
    assert res.returncode == 0, res.stderr
    trial = json.loads(res.stdout)[0]
    assert trial["status"] == "reached" and trial["steps_to_target"] <= 600
    assert trial["evals"][-1]["accuracy"] >= 0.95
    shown = curvebench(site, "runs", "show", trial["run_id"], "--db", tmp_path / "r.db", "--json")
    assert shown.returncode == 0, shown.stderr
    row = json.loads(shown.stdout)
    flat = json.dumps(row)
    version = python(site, VERSION.format(spec="shift_tokens")).stdout.split()[0]
    assert version in flat and '"data_fingerprint"' in flat


def test_workloads_check_judges_an_installed_workload(tmp_path):
    """`workloads check` runs the contract checks on another package's workload: all pass on
    the per-token one (exit 0); one whose loss ignores the mask fails, naming it (exit 1)."""
    from tests.installed_workload import SHIFT_TOKENS
    site = install(tmp_path / "site")
    good = curvebench(site, "workloads", "check", "shift_tokens", "--json")
    assert good.returncode == 0, good.stderr
    assert {v["check"]: v["status"] for v in json.loads(good.stdout)} == {
        "data": "pass", "declares": "pass", "loss": "pass", "training": "pass", "mask": "pass",
        "knobs": "pass", "eval": "pass", "target": "not judged"}
    broken = install(tmp_path / "broken", source=SHIFT_TOKENS.replace(
        'return per_token.mean(-1) * batch["mask"]', "return per_token.mean(-1)"))
    bad = curvebench(broken, "workloads", "check", "shift_tokens")
    assert bad.returncode == 1
    assert "FAIL  mask      loss_per_example is not 0 on masked rows" in bad.stdout
    assert "multiply each example's loss by batch[\"mask\"]" in bad.stdout
    assert "1 check(s) failed: mask" in bad.stderr


def test_joining_the_default_score_is_declared_and_outside_the_version():
    """Undeclared, a workload (built-in or installed) is not in `score`'s default set; the
    declaration decides no number, so it leaves the version alone."""
    from harness.provenance import _code_hash
    from harness.spec import Workload
    from tests.installed_workload import SHIFT_TOKENS
    assert Workload.scored_by_default is False
    assert {n for n, c in REGISTRY.items() if c.scored_by_default} == {
        "mnist_mlp", "fashion_mnist_mlp", "algoperf_mnist", "ogbg_molpcba", "cifar_simplecnn",
        "cifar_resnet_ln", "cifar_resnet18"}
    declared = SHIFT_TOKENS.replace("    eval_every = 20\n", "    eval_every = 20\n    scored_by_default = True\n")
    assert declared != SHIFT_TOKENS and _code_hash(declared) == _code_hash(SHIFT_TOKENS)
    assert _code_hash(SHIFT_TOKENS.replace("batch_size = 32", "batch_size = 33")) != _code_hash(SHIFT_TOKENS)
