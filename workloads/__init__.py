"""The registry of workloads, addressed by name and variant (``name:knob=value,...``).

Found, not listed: every module of this package is imported and each `Workload` subclass it
defines that sets its own `name` registers itself; an installed package adds its own through
the entry-point group ``curvebench.workloads`` (``name = "module:Class"`` in its pyproject's
``[project.entry-points."curvebench.workloads"]``). A built-in keeps its name against an entry
point; an entry point that fails to load is listed in `BROKEN` and named when asked for, so
one broken package stops no other workload.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import pkgutil

from harness import threefry_cpu
from harness.spec import SpecError, Workload

# every draw of the workloads, runner and curvature: the same bits, faster on XLA:CPU
threefry_cpu.install()

#: the entry-point group through which an installed package adds workloads
ENTRY_POINT_GROUP = "curvebench.workloads"


def _defined_workloads(module) -> list[type[Workload]]:
    """The concrete `Workload` subclasses `module` defines that name themselves."""
    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Workload) and obj.__module__ == module.__name__
            and "name" in vars(obj) and not inspect.isabstract(obj)]


def _builtin_workloads() -> dict[str, type[Workload]]:
    found: dict[str, type[Workload]] = {}
    for info in pkgutil.iter_modules(__path__):  # sorted by module name
        for cls in _defined_workloads(importlib.import_module(f"{__name__}.{info.name}")):
            if cls.name in found:
                raise RuntimeError(f"two built-in workloads are named {cls.name!r}: "
                                   f"{found[cls.name].__qualname__} and {cls.__qualname__}")
            found[cls.name] = cls
    return found


def _entry_point_workloads(taken: set[str]) -> tuple[dict[str, type[Workload]], dict[str, str]]:
    """The workloads installed packages declare, and why each one that could not load did not."""
    found: dict[str, type[Workload]] = {}
    broken: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name} = {ep.value!r}" + (f" of {ep.dist.name}" if ep.dist else "")
        try:
            cls = ep.load()
        except Exception as exc:  # the package's own import error: named when the workload is asked for
            broken[ep.name] = f"{where} failed to load ({type(exc).__name__}: {exc})"
            continue
        if not (isinstance(cls, type) and issubclass(cls, Workload)) or inspect.isabstract(cls):
            broken[ep.name] = f"{where} is not a concrete harness.spec.Workload subclass"
        elif getattr(cls, "name", None) != ep.name:
            broken[ep.name] = (f"{where} names a workload whose name is "
                               f"{getattr(cls, 'name', None)!r}; make the two agree")
        elif ep.name in taken or found.get(ep.name, cls) is not cls:
            broken[ep.name] = f"{where} reuses a name already registered; rename the workload"
        else:
            found[ep.name] = cls
    return found, broken


REGISTRY: dict[str, type[Workload]] = _builtin_workloads()
_installed, BROKEN = _entry_point_workloads(set(REGISTRY))
REGISTRY.update(_installed)


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``name:k=v,k=v`` into the name and the raw knob values."""
    name, _, rest = spec.strip().partition(":")
    knobs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SpecError(f"bad variant item {item!r} in {spec!r}; expected knob=value")
        if key.strip() in knobs:
            raise SpecError(f"knob {key.strip()!r} given twice in {spec!r}")
        knobs[key.strip()] = value.strip()
    return name, knobs


def get_workload(spec: str) -> Workload:
    """Instantiate a registered workload variant; unknown names and knobs list the valid ones."""
    name, knobs = parse_spec(spec)
    if name not in REGISTRY:
        if name in BROKEN:
            raise SpecError(f"workload {name!r}: {BROKEN[name]}")
        raise SpecError(f"unknown workload {name!r}; valid workloads: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](**knobs)
