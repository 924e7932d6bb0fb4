"""Make `import algoperf` work for AlgoPerf submissions without shadowing a real install.

`installed()` maps `algoperf`, `algoperf.spec`, `algoperf.param_utils`,
`algoperf.jax_sharding_utils` and `algoperf.random_utils` to `harness.algoperf.api` in
`sys.modules` for the duration of a `with` block (importing a submission, calling one of its
functions) and restores `sys.modules` afterwards, so the names never leak into other code.
When a real `algoperf` package is importable it is left alone and used.

`algorithmic_efficiency` (the package's name up to AlgoPerf v0.5) is the same shim under its
old name (`algorithmic_efficiency.spec`, ...), unless a real package of that name is installed.
Inside the block the removed JAX names AlgoPerf's older files call are aliased too
(`harness.algoperf.jax_compat`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType

from harness.algoperf.jax_compat import aliases_installed

SUBMODULES = ("spec", "param_utils", "jax_sharding_utils", "random_utils")
#: the package names AlgoPerf submissions import: today's, and the one up to AlgoPerf v0.5
PACKAGE_NAMES = ("algoperf", "algorithmic_efficiency")
_PACKAGE = "harness.algoperf.api"


def real_algoperf_installed(name: str = "algoperf") -> bool:
    """True when a package `name` (algoperf, algorithmic_efficiency) other than this shim can
    be imported."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__name__", "") != _PACKAGE
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def shim_modules(package: str = "algoperf") -> dict[str, ModuleType]:
    """The shim's modules under the names AlgoPerf submissions import from `package`."""
    names = {package: importlib.import_module(_PACKAGE)}
    for sub in SUBMODULES:
        names[f"{package}.{sub}"] = importlib.import_module(f"{_PACKAGE}.{sub}")
    return names


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """`algoperf` and `algorithmic_efficiency` importable inside the block (each the real
    package if present, else the shim), with the removed JAX aliases installed."""
    modules = {name: module for package in PACKAGE_NAMES if not real_algoperf_installed(package)
               for name, module in shim_modules(package).items()}
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        with aliases_installed():
            yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
