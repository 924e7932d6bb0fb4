"""docs/architecture.md describes the code: its layout table names every module and package of
harness/ and workloads/ (and only paths that exist), and its import rules hold for every
import statement of the project, imports inside functions included. The table and the rules
are read from the doc, so keeping the doc true is all a change needs. The project's modules
also import each other in no cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("harness", "workloads")
RULES = ("imports only", "never imports", "is imported only by")


# -- reading the doc ----------------------------------------------------------------------

def _section(text: str, heading: str) -> str:
    match = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ |\Z)", text, re.S | re.M)
    assert match, f"docs/architecture.md has no section {heading!r}"
    return match.group(1)


def layout_paths(text: str) -> list[str]:
    """The paths of the Layout section's table: the first word of each unindented line of its
    first code block."""
    block = re.search(r"```\n(.*?)```", _section(text, "Layout"), re.S)
    assert block, "the Layout section has no code block"
    return [line.split()[0] for line in block.group(1).splitlines() if line[:1].strip()]


def import_rules(text: str) -> list[tuple[list[str], str, list[str]]]:
    """The Import rules table as (modules, rule, targets); targets [] for "nothing"."""
    rows = []
    for line in _section(text, "Import rules").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in ("modules", "") or set(cells[0]) <= {"-"}:
            continue
        modules, rule, targets = (re.findall(r"`([\w.]+)`", cells[0]), cells[1],
                                  re.findall(r"`([\w.]+)`", cells[2]))
        assert rule in RULES, f"unknown rule {rule!r} in: {line}"
        assert modules and (targets or cells[2] == "nothing"), f"unreadable rule: {line}"
        rows.append((modules, rule, targets))
    return rows


# -- reading the code ---------------------------------------------------------------------

def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file of every Python module of harness/ and workloads/."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module an import statement anywhere in the file names (function bodies included):
    a project module by its most specific existing name (`from P import m` is P.m when that is
    a module), any other by its full dotted name."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names)
    return {_existing(n, modules) for n in out} - {name}


def _existing(name: str, modules: dict[str, Path]) -> str:
    """A project name cut back to the module it lives in (`harness.db.Run` -> `harness.db`)."""
    if name.split(".")[0] not in PACKAGES:
        return name
    while name not in modules and "." in name:
        name = name.rpartition(".")[0]
    return name


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _project(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


# -- the checks, as functions of a doc text and a code tree -------------------------------

def layout_problems(text: str, root: Path = ROOT) -> list[str]:
    listed = layout_paths(text)
    problems = [f"listed but missing: {p}" for p in listed if not (root / p).exists()]
    folders = [p.rstrip("/") + "/" for p in listed if p.endswith("/")]
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            rel = path.relative_to(root).as_posix()
            is_module = path.suffix == ".py" and path.name != "__init__.py"
            is_package = path.is_dir() and (path / "__init__.py").exists()
            if rel in PACKAGES or not (is_module or is_package):
                continue
            shown = rel + "/" if is_package else rel
            if shown not in listed and not any(rel.startswith(f) for f in folders):
                problems.append(f"not in the layout table: {shown}")
    return problems


def rule_problems(text: str, graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for modules, rule, targets in import_rules(text):
        for pattern in modules + targets:
            if _project(pattern) and not any(_under(m, pattern) for m in graph):
                problems.append(f"rule names a module that does not exist: {pattern}")
        for importer in sorted(graph):
            own = next((p for p in modules if _under(importer, p)), None)
            for imported in sorted(graph[importer]):
                if rule == "is imported only by":
                    subject = next((p for p in modules if _under(imported, p)), None)
                    bad = (subject is not None and not _under(importer, subject)
                           and not any(_under(importer, t) for t in targets))
                elif own is None or _under(imported, own):
                    bad = False
                elif rule == "imports only":
                    bad = _project(imported) and not any(_under(imported, t) for t in targets)
                else:
                    bad = any(_under(imported, t) for t in targets)
                if bad:
                    problems.append(f"{importer} imports {imported}: breaks "
                                    f"'{', '.join(modules)} {rule} {', '.join(targets) or 'nothing'}'")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The shortest cycle (a -> b -> ... -> a) through each module that is in one, one per
    module of each strongly connected group, without repeats."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v] & graph.keys()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(set(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found: dict[frozenset[str], list[str]] = {}
    for group in groups:
        for start in sorted(group):
            cycle = _cycle_through(start, group, graph)
            found.setdefault(frozenset(cycle), cycle)
    return list(found.values())


def _cycle_through(start: str, group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle from `start` back to it inside its group (breadth first)."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")


# -- tests --------------------------------------------------------------------------------

def test_the_layout_table_lists_every_module_and_only_paths_that_exist():
    problems = layout_problems(DOC.read_text())
    assert not problems, "docs/architecture.md's layout is out of date:\n" + "\n".join(problems)


def test_the_import_rules_hold_for_every_import_statement():
    text = DOC.read_text()
    assert len(import_rules(text)) >= 5, "the Import rules table was not found"
    problems = rule_problems(text, import_graph())
    assert not problems, "imports break docs/architecture.md's rules:\n" + "\n".join(problems)


def test_no_import_cycle_among_the_project_modules():
    found = cycles(import_graph())
    assert not found, "import cycles (imports inside functions included):\n" + "\n".join(
        " -> ".join(c) for c in found)


def test_the_checks_fail_on_drift(tmp_path):
    """A doc or a tree out of step with each other is reported, each kind of drift."""
    for name, src in {"harness/__init__.py": "", "harness/spec.py": "import jax\n",
                      "harness/runner.py": "def f():\n    from harness import spec\n",
                      "harness/cli.py": "", "harness/new.py": "from . import cli\n",
                      "harness/db/__init__.py": "from harness.db.models import Run\n",
                      "harness/db/models.py": "", "workloads/__init__.py": "import harness.runner\n",
                      }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(src)
    doc = ("## Layout\n```\nharness/spec.py   the contract\nharness/runner.py  x\n"
           "harness/cli.py  y\nharness/db/   z\nharness/gone.py  removed\n  continued text\n```\n"
           "## Import rules\n| modules | rule | targets | why |\n|---|---|---|---|\n"
           "| `harness.spec` | imports only | nothing | leaf |\n"
           "| `harness.spec` | never imports | `jax` | light |\n"
           "| `workloads` | never imports | `harness.runner` | no engine |\n"
           "| `harness.cli` | is imported only by | nothing | top |\n"
           "| `harness.db` | imports only | `harness.errors` | layer |\n"
           "| `harness.records` | imports only | nothing | moved |\n")
    assert sorted(layout_problems(doc, tmp_path)) == [
        "listed but missing: harness/gone.py", "not in the layout table: harness/new.py"]
    graph = import_graph(tmp_path)
    assert graph["harness.runner"] == {"harness.spec"} and graph["harness.new"] == {"harness.cli"}
    assert graph["harness.db"] == {"harness.db.models"}  # its own subtree: no rule applies
    problems = rule_problems(doc, graph)
    assert sorted(p.split(": breaks")[0] for p in problems) == [
        "harness.new imports harness.cli", "harness.spec imports jax",
        "rule names a module that does not exist: harness.errors",
        "rule names a module that does not exist: harness.records",
        "workloads imports harness.runner"], problems
    assert cycles(graph) == []
    graph["harness.spec"].add("harness.runner")
    assert cycles(graph) == [["harness.runner", "harness.spec", "harness.runner"]]
