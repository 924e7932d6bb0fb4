"""What an installation holds and needs: the core dependencies cover every module-level import,
the built-in submissions and reference sets ship in the package and are found by name from a
non-editable install, `refs export` writes only where it is told, and `check`'s environment line."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from harness import refs
from harness.check import tiers
from harness.data import mnist
from harness.spec import SpecError
from harness.submissions import (BUILTIN_DIR, builtin_submissions, load_submission,
                                 portable_submission, resolve_submission)

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: import names the project provides itself (the `algoperf` names come from harness/algoperf/api)
OWN = {"harness", "workloads", "algoperf"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def module_level_imports(path: Path) -> set[str]:
    """Top-level names a module imports when it is imported (not inside functions or classes)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_dependencies_cover_every_module_level_import():
    """Anything imported at the top of a module of harness/, workloads/ or a built-in submission
    is a core dependency; optional libraries are imported inside functions (and name their extra)."""
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    dists = packages_distributions()
    missing = {}
    for path in [*(REPO / "harness").rglob("*.py"), *(REPO / "workloads").rglob("*.py"),
                 *(REPO / "submissions").rglob("*.py")]:
        for name in module_level_imports(path) - OWN - set(sys.stdlib_module_names):
            provided_by = {d.lower().replace("_", "-") for d in dists.get(name, [name])}
            if not provided_by & core:
                missing.setdefault(name, []).append(str(path.relative_to(REPO)))
    assert not missing, f"imported at module level but not a core dependency: {missing}"
    assert not {"torch", "mlxtend", "pandas"} & core


def test_extras_leave_torch_to_the_user_and_gpu_is_jax_cuda():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert not any(_name(r) == "torch" for reqs in extras.values() for r in reqs)
    assert [r.split(">")[0] for r in extras["gpu"]] == ["jax[cuda12]"]


def test_constraints_pin_the_references_jax():
    """constraints.txt holds the exact versions the shipped reference sets were made with."""
    pins = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    envs = {(r["run"]["environment"]["jax_version"], r["run"]["environment"]["jaxlib_version"])
            for s in refs.read_sets(refs.SHIPPED_DIR) for r in s.records}
    assert envs == {(pins["jax"], pins["jaxlib"])}
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert core <= {_name(n) for n in pins}


def test_mnist_sample_is_package_data_with_its_checksum():
    assert hashlib.sha256(mnist.SAMPLE_FILE.read_bytes()).hexdigest() == mnist.SAMPLE_SHA256


def test_builtin_names_and_paths(tmp_path, monkeypatch):
    assert {"adam", "sgd", "momentum", "algoperf_adamw"} <= set(builtin_submissions())
    assert BUILTIN_DIR == REPO / "submissions"  # the top-level folder of the checkout
    adam = load_submission("adam")
    assert adam.path == BUILTIN_DIR / "adam" and adam.name == "adam"
    copy = shutil.copytree(BUILTIN_DIR / "adam", tmp_path / "adam")
    by_path = load_submission(copy)
    assert (by_path.name, by_path.code_hash) == ("adam", adam.code_hash)
    # workers on other hosts get a built-in by name (their own installed copy), a folder by path
    assert portable_submission("adam") == portable_submission(str(BUILTIN_DIR / "adam")) == "adam"
    assert portable_submission(str(copy)) == str(Path(copy).resolve())
    monkeypatch.chdir(tmp_path)  # a folder named like a built-in, given as a path, is that folder
    assert resolve_submission("adam") == Path("adam")
    with pytest.raises(SpecError, match=r"no submission 'adamm'.*built-in name \(adam, adamw"):
        resolve_submission("adamm")
    with pytest.raises(SpecError, match="no submission 'submissions/adam'"):
        load_submission("submissions/adam")


def test_export_refuses_site_packages(db, tmp_path):
    refs.import_sets(db, [refs.SHIPPED_DIR])
    with pytest.raises(refs.RefsError, match="inside installed packages"):
        refs.export_sets(db, tmp_path / "venv" / "lib" / "site-packages" / "harness")
    assert not (tmp_path / "venv").exists()


def _shipped(workload: str) -> refs.RefSet:
    (refset,) = [s for s in refs.read_sets(refs.SHIPPED_DIR) if s.header["variant"] == workload]
    return refset


def test_environment_line_says_whether_bit_exact_is_expected():
    refset = _shipped("mnist_mlp")
    env = dict(refset.records[0]["run"]["environment"])
    assert tiers.environment_line(refset, env).endswith("bit-exact reproduction is expected")
    env["jax_version"] = "9.9.9"
    line = tiers.environment_line(refset, env)
    assert "environment differs" in line and "jax_version '0.10.2' here '9.9.9'" in line
    assert "pip install jax==0.10.2 jaxlib==0.10.2" in line and "\n" not in line
    ref_cpu = refset.records[0]["run"]["environment"]["cpu"]
    env = dict(refset.records[0]["run"]["environment"], cpu="Other CPU x64")
    line = tiers.environment_line(refset, env)
    assert f"cpu {ref_cpu!r} here 'Other CPU x64'" in line and "pip install" not in line


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / "python"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """curvebench as a wheel built from this checkout, installed (non-editable, --no-deps,
    offline) into a venv that borrows the dependencies this interpreter has: its site-packages
    directories (a venv's, or the system's) as plain path entries after the venv's own, so none of
    their .pth files runs and this checkout's editable install, if any, stays out."""
    tmp = tmp_path_factory.mktemp("install")
    build = tmp / "src"  # build from a copy: a build writes build/ and *.egg-info beside the sources
    shutil.copytree(REPO, build, ignore=shutil.ignore_patterns(".git", "tests", "benchmarks",
                                                                "*.egg-info", "build", "__pycache__",
                                                                "*.db"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
                    str(tmp / "wheel"), str(build)], check=True, env=env, cwd=tmp)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run([str(_venv_python(venv)), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, env=env, capture_output=True, text=True).stdout.strip()
    borrowed = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")
                and Path(p).is_dir()]
    (Path(purelib) / "borrowed_dependencies.pth").write_text("\n".join(borrowed) + "\n")
    (wheel,) = (tmp / "wheel").glob("curvebench-*.whl")
    subprocess.run([*pip, "--python", str(_venv_python(venv)), "install", "--no-deps", "--no-index",
                    str(wheel)], check=True, env=env, cwd=tmp)
    shutil.rmtree(build)
    return venv, env, tmp


def test_non_editable_install_finds_builtins_and_references(installed):
    venv, env, tmp = installed
    script = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        import harness
        from harness import refs
        from harness.db import open_database
        from harness.submissions import builtin_submissions, load_submission, portable_submission
        db = open_database("sqlite:///" + sys.argv[1])
        builtins = {n: [str((s := load_submission(n)).path), s.code_hash,
                        portable_submission(str(s.path))] for n in builtin_submissions()}
        imported = refs.import_sets(db, [refs.SHIPPED_DIR])
        written = refs.export_sets(db, "exported")
        try:
            refs.export_sets(db, refs.SHIPPED_DIR)
            refused = ""
        except refs.RefsError as e:
            refused = str(e)
        print(json.dumps({"harness": harness.__file__, "builtins": builtins,
                          "shipped_dir": str(refs.SHIPPED_DIR),
                          "shipped": [s.id for s in refs.read_sets()], "imported": imported,
                          "written": sorted(Path(p).name for p in written), "refused": refused}))
    """)
    work = tmp / "elsewhere"
    work.mkdir()
    result = subprocess.run([str(_venv_python(venv)), "-c", script, str(work / "r.db")], cwd=work,
                            env=env, capture_output=True, text=True, check=True)
    out = json.loads(result.stdout.splitlines()[-1])
    site = str(venv)
    assert out["harness"].startswith(site) and "site-packages" in out["harness"]
    # every built-in of the checkout's top-level submissions/, installed at the top level of
    # site-packages beside harness/, the same code (hash) as the checkout's
    assert sorted(out["builtins"]) == builtin_submissions() == sorted(
        p.parent.name for p in (REPO / "submissions").glob("*/submission.py"))
    for name, (path, code_hash, portable) in out["builtins"].items():
        assert portable == name  # workers elsewhere get a built-in by name
        assert path.startswith(site) and Path(path).parent == Path(out["harness"]).parents[1] / "submissions"
        assert Path(path).name == name and code_hash == load_submission(name).code_hash
    # the reference sets: the checkout's top-level reference_results/, byte for byte
    assert refs.SHIPPED_DIR == REPO / "reference_results"
    assert Path(out["shipped_dir"]) == Path(out["harness"]).parents[1] / "reference_results"
    for name in [p.name for p in refs.SHIPPED_DIR.iterdir()]:
        assert (Path(out["shipped_dir"]) / name).read_bytes() == (refs.SHIPPED_DIR / name).read_bytes()
    shipped = sorted(p.stem for p in refs.SHIPPED_DIR.glob("*.jsonl"))
    assert sorted(out["shipped"]) == shipped and len(out["imported"]) == len(shipped)
    assert out["written"] == [s + ".jsonl" for s in shipped]
    for name in out["written"]:
        assert (work / "exported" / name).read_text() == (refs.SHIPPED_DIR / name).read_text()
    assert "inside installed packages" in out["refused"]
    listed = subprocess.run([str(venv / "bin" / "curvebench"), "refs", "list", "--json", "--db",
                             str(work / "r.db")], cwd=work, env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert sorted(s["id"] for s in json.loads(listed.stdout)) == shipped


@pytest.mark.slow
def test_readme_main_command_in_a_fresh_venv(tmp_path):
    """The README's main command, as written, in a venv with nothing but what it installs
    (the packages come from the configured index; minutes)."""
    readme = (REPO / "README.md").read_text()
    command = re.search(r"## Two commands.*?```bash\n(.*?)\n```", readme, re.S).group(1)
    assert command == "pip install -e . && curvebench score adam"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["CURVEBENCH_COMPILE_CACHE"] = "off"
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(["bash", "-c", f"cd {REPO} && pip install -q -e . && cd {work} && "
                             "curvebench score adam --workloads mnist_mlp"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mnist_mlp" in result.stdout
    freeze = subprocess.run([str(venv / "bin" / "pip"), "freeze"], env=env, capture_output=True,
                            text=True).stdout.lower()
    assert "torch" not in freeze and "mlxtend" not in freeze and "pandas" not in freeze
