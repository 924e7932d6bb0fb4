"""What a workload's version hash covers: source hashes and the scope rule.

A workload's version (`harness.spec.Workload.version`) must change when anything that decides
its numbers changes, and only then, or the shipped reference sets would be "not comparable"
after an edit that changes no result. The rule:

- **Counted, whole:** the module of every class in the workload's hierarchy and every project
  module (`PROJECT_PACKAGES`) they import, transitively, function-level imports included
  (`version_modules`): its model code, metrics, shared helpers and `harness.data` loaders.
- **Counted, in part:** the contract, `harness.spec`: its code less the plumbing it declares
  (`harness.spec.CONTRACT_PLUMBING`, `WORKLOAD_PLUMBING`: variant parsing, records, the
  version machinery, the submission protocol) and less the `Workload` members the workload
  overrides (it never runs them). What stays is the numeric code the workload inherits: the
  default `sample_batch`, `eval_batches`, `loss`, `eval_batch`, `finalize_metrics` and the
  helpers they call (`scoped_source_hash`). An inherited default counts even where the
  workload's input mode never reaches it (a host-mode workload's `sample_batch`): erring
  towards a new version, never towards a stale one. Code the contract has not classified
  counts too (tests/test_versions.py asks for its classification).
- **A workload from another package** (the `curvebench.workloads` entry point): its own
  top-level package counts as the project does, so its modules and their helpers are counted
  whole, transitively, as a built-in's are (`workload_packages`).
- **Not counted:** `PLUMBING_MODULES`, whose code computes nothing a result depends on: the
  error classes (`harness.errors`) and this module.

Everywhere, docstrings, comments, formatting, import statements and the assignments of
`PLUMBING_CLASS_ATTRIBUTES` in class bodies are left out: editing prose
leaves a hash alone, editing code changes it. This module imports nothing of the harness.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import inspect
import sys
import textwrap
from types import ModuleType
from typing import Any

#: top-level packages of this project: their modules can be part of a workload's version
PROJECT_PACKAGES = ("harness", "workloads")
#: class attributes that decide no number a workload computes (whether the default `score`
#: includes it): their assignments, in any class body, are left out of every source hash, so a
#: workload declares them without a new version
PLUMBING_CLASS_ATTRIBUTES = frozenset({"scored_by_default"})
#: project modules never part of a version, though workload code imports them: error classes
#: say what went wrong, this module says what a version covers; neither computes a result
PLUMBING_MODULES = frozenset({"harness.errors", "harness.provenance"})


def source_hash(obj: Any) -> str:
    """Hash of an object's defining source with docstrings, comments and formatting removed.

    Used for workload and submission version hashes: editing prose leaves the
    hash alone, editing code changes it.
    """
    try:
        src = inspect.getsource(obj)
    except (OSError, TypeError):
        return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]
    return _code_hash(src)


@functools.lru_cache(maxsize=512)
def _code_hash(src: str) -> str:
    """source_hash of a source text; memoised by the text, as every trial's run row asks for
    its workload's version and parsing the modules' sources is most of that cost."""
    return _tree_hash(_without_plumbing_attributes(_without_docstrings(ast.parse(textwrap.dedent(src)))))


def scoped_source_hash(module: ModuleType, excluded: frozenset[str]) -> str:
    """source_hash of a module less its import statements and less the definitions named in
    `excluded`: top-level ones by name ("Knob"), class members as "Class.member"
    ("Workload.spec"). Statements it does not name (new code included) count."""
    return _scoped_hash(inspect.getsource(module), excluded)


@functools.lru_cache(maxsize=512)
def _scoped_hash(src: str, excluded: frozenset[str]) -> str:
    tree = _without_docstrings(ast.parse(src))
    tree.body = [_scoped_node(node, excluded) for node in tree.body
                 if not isinstance(node, (ast.Import, ast.ImportFrom))
                 and not _named_in(node, "", excluded)]
    return _tree_hash(tree)


def _scoped_node(node: ast.stmt, excluded: frozenset[str]) -> ast.stmt:
    """A top-level statement; a class less its members named in `excluded`."""
    if isinstance(node, ast.ClassDef):
        node.body = [n for n in node.body if not _named_in(n, node.name + ".", excluded)] or [ast.Pass()]
    return node


def _named_in(node: ast.stmt, prefix: str, excluded: frozenset[str]) -> bool:
    names = defined_names(node)
    return bool(names) and all(prefix + n in excluded for n in names)


def defined_names(node: ast.stmt) -> list[str]:
    """The names a statement defines: a function's or class's name, an assignment's targets;
    [] for other statements."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else (
        [node.target] if isinstance(node, ast.AnnAssign) else [])
    return [t.id for t in targets if isinstance(t, ast.Name)]


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _without_plumbing_attributes(tree: ast.Module) -> ast.Module:
    """`tree` less the assignments of `PLUMBING_CLASS_ATTRIBUTES` in class bodies."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            node.body = [n for n in node.body
                         if not (defined_names(n) and set(defined_names(n)) <= PLUMBING_CLASS_ATTRIBUTES)
                         ] or [ast.Pass()]
    return tree


def _tree_hash(tree: ast.AST) -> str:
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


def version_modules(workload_class: type) -> list[ModuleType]:
    """The project modules that define a workload class: the modules of its class hierarchy
    and every project module they import, transitively, sorted by name, less
    `PLUMBING_MODULES`. Found by walking the import statements, so a new helper module is
    covered the moment a workload imports it. `harness.spec` is among them, hashed in part
    (see the module docstring). For a workload defined outside this project (an installed
    package's, through the `curvebench.workloads` entry point), "project" also means the
    top-level packages its class hierarchy lives in (`workload_packages`): its own code and
    helpers count as a built-in's do."""
    roots = workload_packages(workload_class)
    pending = [sys.modules[c.__module__] for c in workload_class.__mro__
               if c.__module__.split(".")[0] in roots]
    seen: dict[str, ModuleType] = {}
    while pending:
        module = pending.pop()
        if module.__name__ in seen or module.__name__ in PLUMBING_MODULES:
            continue
        seen[module.__name__] = module
        pending += [importlib.import_module(n) for n in _imported_names(module, roots) if n not in seen]
    return [seen[n] for n in sorted(seen)]


def workload_packages(workload_class: type) -> tuple[str, ...]:
    """`PROJECT_PACKAGES` plus the top-level package of every class in the workload's
    hierarchy outside the standard library: the packages whose modules its version covers."""
    tops = [c.__module__.split(".")[0] for c in workload_class.__mro__]
    return tuple(dict.fromkeys([*PROJECT_PACKAGES, *(t for t in tops if t not in sys.stdlib_module_names
                                                          and t != "builtins")]))


def _imported_names(module: ModuleType, roots: tuple[str, ...] = PROJECT_PACKAGES) -> list[str]:
    """Dotted names of the project modules an import statement anywhere in `module` names
    (function-level imports included): `from P import n` names P.n when that is a module,
    else P (so importing a submodule does not pull in its package's __init__)."""
    try:
        src = inspect.getsource(module)
    except (OSError, TypeError):
        return []
    names = []
    for base, level, aliases in _import_statements(src):
        if level is None:
            names += aliases
            continue
        if level:
            package = (module.__package__ or "").split(".")
            base = ".".join(package[: len(package) - level + 1] + ([base] if base else []))
        for alias in aliases:
            candidate = f"{base}.{alias}"
            names.append(candidate if _is_project_module(candidate, roots) else base)
    return [n for n in dict.fromkeys(names) if n.split(".")[0] in roots]


@functools.lru_cache(maxsize=512)
def _import_statements(src: str) -> tuple[tuple[str, int | None, tuple[str, ...]], ...]:
    """Every import statement of a source text, as (module, level, names): `import a, b` is
    ("", None, ("a", "b")); `from .m import n` is ("m", 1, ("n",)). Memoised by the text."""
    out = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            out.append(("", None, tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level, tuple(alias.name for alias in node.names)))
    return tuple(out)


def _is_project_module(name: str, roots: tuple[str, ...] = PROJECT_PACKAGES) -> bool:
    if name.split(".")[0] not in roots:
        return False
    parent = sys.modules.get(name.rpartition(".")[0])
    if parent is not None and not hasattr(parent, "__path__"):
        return False  # a name inside a plain module, not a submodule
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
