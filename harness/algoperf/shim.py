"""Make `import algoperf` work for AlgoPerf submissions without shadowing a real install.

`installed()` maps `algoperf`, `algoperf.spec`, `algoperf.param_utils`,
`algoperf.jax_sharding_utils` and `algoperf.random_utils` to `harness.algoperf.api` in
`sys.modules` for the duration of a `with` block (importing a submission, calling one of its
functions) and restores `sys.modules` afterwards, so the names never leak into other code.
When a real `algoperf` package is importable it is left alone and used.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType

SUBMODULES = ("spec", "param_utils", "jax_sharding_utils", "random_utils")
_PACKAGE = "harness.algoperf.api"


def real_algoperf_installed() -> bool:
    """True when an `algoperf` package other than this shim can be imported."""
    module = sys.modules.get("algoperf")
    if module is not None:
        return getattr(module, "__name__", "") != _PACKAGE
    try:
        return importlib.util.find_spec("algoperf") is not None
    except (ImportError, ValueError):
        return False


def shim_modules() -> dict[str, ModuleType]:
    """The shim's modules under the names AlgoPerf submissions import."""
    names = {"algoperf": importlib.import_module(_PACKAGE)}
    for sub in SUBMODULES:
        names[f"algoperf.{sub}"] = importlib.import_module(f"{_PACKAGE}.{sub}")
    return names


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """`algoperf` importable inside the block: the real package if present, else the shim."""
    if real_algoperf_installed():
        yield
        return
    modules = shim_modules()
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
