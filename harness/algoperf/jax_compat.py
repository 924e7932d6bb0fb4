"""JAX APIs that published AlgoPerf submissions call and today's JAX has removed.

Two kinds, each with the JAX version that removed it:
- `ALIASES`: the removed name was an alias of a function JAX still has, same signature and
  behaviour (JAX's changelog names the replacement): `jax.tree_map` is `jax.tree_util.tree_map`,
  and so on. `aliases_installed()` sets these names on their modules only while an AlgoPerf
  submission is imported or called (`harness.algoperf.shim.installed`) and removes them
  afterwards, so no other code sees them; a name JAX still has is never replaced.
- `RENAMED_KEYWORDS`: a function whose keywords were renamed (`jnp.clip(x, a_min=, a_max=)`,
  deprecated in JAX 0.4.27 for `min=`/`max=` and no longer accepted by today's JAX): while a
  submission runs the function is wrapped to take the old keywords as the new (the wrapper
  passes every other call through unchanged), and restored afterwards.
- `REMOVED`: no drop-in alias (the replacement changes how arrays are placed):
  `removed_api(error)` turns the AttributeError into one line naming the API, the version
  that removed it and what to do.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import jax.tree_util as tree_util

#: (module, name) -> (the function it aliased, the JAX version that removed the name)
ALIASES: dict[tuple[ModuleType, str], tuple[Callable, str]] = {
    (jax, "tree_map"): (tree_util.tree_map, "0.6.0"),
    (jax, "tree_flatten"): (tree_util.tree_flatten, "0.6.0"),
    (jax, "tree_leaves"): (tree_util.tree_leaves, "0.6.0"),
    (jax, "tree_unflatten"): (tree_util.tree_unflatten, "0.6.0"),
    (jax, "tree_structure"): (tree_util.tree_structure, "0.6.0"),
    (jax, "tree_transpose"): (tree_util.tree_transpose, "0.6.0"),
    (jax, "treedef_is_leaf"): (tree_util.treedef_is_leaf, "0.6.0"),
    (tree_util, "tree_multimap"): (tree_util.tree_map, "0.3.16"),
}

#: (module, name) -> ({old keyword: new keyword, or None: the first positional argument},
#: the JAX version that deprecated the old keywords)
RENAMED_KEYWORDS: dict[tuple[ModuleType, str], tuple[dict[str, str | None], str]] = {
    (jnp, "clip"): ({"a": None, "a_min": "min", "a_max": "max"}, "0.4.27"),
}


def _old_keywords(function: Callable, renamed: dict[str, str | None]) -> Callable:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        for old, new in renamed.items():
            if old in kwargs and new is None:
                args = (kwargs.pop(old),) + args
            elif old in kwargs:
                kwargs[new] = kwargs.pop(old)
        return function(*args, **kwargs)

    call._curvebench_renamed = function
    return call


#: "jax.<name>" -> (the JAX version that removed it, what to do instead)
REMOVED: dict[str, tuple[str, str]] = {
    "jax.device_put_replicated": ("0.10.0", "use jax.device_put with a replicated sharding "
                                  "(https://docs.jax.dev/en/latest/migrate_pmap.html)"),
    "jax.device_put_sharded": ("0.10.0", "use jax.device_put with a sharding "
                               "(https://docs.jax.dev/en/latest/migrate_pmap.html)"),
    "jax.experimental.maps": ("0.4.31", "use jax.sharding.Mesh and jax.jit's shardings"),
}

_NO_ATTRIBUTE = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'|^([\w.]+) is deprecated")


@contextlib.contextmanager
def aliases_installed() -> Iterator[None]:
    """The `ALIASES` names set on their modules inside the block (only where absent), and the
    `RENAMED_KEYWORDS` functions wrapped to take their old keywords."""
    added, wrapped = [], []
    for (module, name), (function, _) in ALIASES.items():
        if name not in vars(module):
            setattr(module, name, function)
            added.append((module, name))
    for (module, name), (renamed, _) in RENAMED_KEYWORDS.items():
        current = vars(module).get(name)
        if current is not None and not hasattr(current, "_curvebench_renamed"):
            setattr(module, name, _old_keywords(current, renamed))
            wrapped.append((module, name, current))
    try:
        yield
    finally:
        for module, name in added:
            if vars(module).get(name) is ALIASES[(module, name)][0]:
                delattr(module, name)
        for module, name, original in wrapped:
            if getattr(vars(module).get(name), "_curvebench_renamed", None) is original:
                setattr(module, name, original)


def removed_api(error: BaseException) -> str | None:
    """One line for an AttributeError / ModuleNotFoundError raised by a JAX API in `REMOVED`
    (None otherwise)."""
    if isinstance(error, ModuleNotFoundError):
        api = error.name or ""
    elif isinstance(error, AttributeError):
        match = _NO_ATTRIBUTE.search(str(error))
        if match is None:
            return None
        api = match.group(3) or f"{match.group(1)}.{match.group(2)}"
    else:
        return None
    if api not in REMOVED:
        return None
    version, instead = REMOVED[api]
    return (f"the submission calls {api}, removed in JAX {version} (installed: JAX "
            f"{jax.__version__}): {instead}, or run it with a JAX older than {version}")
