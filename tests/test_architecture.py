"""The import rules of ARCHITECTURE.md, checked on the source with ``ast`` (nothing is imported).

Every ``import`` of every module of ``ssmlab/`` counts: at module level and inside functions
(a lazy import hides a cycle at import time, not in the design), ``import x`` and ``from x import
y``, relative imports, and ``importlib.import_module("ssmlab...")`` with a literal name. Two rules:

(a) a module of unit U (``ssmlab/U.py`` or ``ssmlab/U/...``) imports only its own unit and the
    units ``MAY_IMPORT[U]`` lists: nothing upward, nothing sideways that the table does not allow;
(b) no import cycle between ssmlab modules (the chain is reported with file:line).

``MAY_IMPORT`` is the one place to change the rules; ARCHITECTURE.md shows the same table.
"""

from __future__ import annotations

import ast
import itertools
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "ssmlab"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# unit -> the other units its modules may import (transitively closed: a unit may import what
# the units below it may). The root module (ssmlab/__init__.py, the version only) imports nothing
# and anyone may import it.
MAY_IMPORT: dict[str, set[str]] = {
    "ssm": set(),  # the math: torch only
    "data": set(),  # datasets, splits, batches
    "metrics": set(),  # ranking metrics on scores
    "layers": {"ssm"},
    "models": {"ssm", "layers"},  # tensors to tensors: no Dataset, no trainer
    "viz": {"ssm"},  # figure builders: no model, trainer or dataset
    "config": {"ssm", "layers", "models", "data"},  # schema + YAML presets
    "train": {"ssm", "layers", "models", "data", "metrics", "config"},
    "bench": {"ssm", "layers", "models", "data", "metrics", "config", "train", "viz"},
    "cli": {"ssm", "layers", "models", "data", "metrics", "config", "train", "viz", "bench"},
}
# Top-level names the package never imports (they import it).
NEVER_IMPORTED = ("benchmarks", "notebooks", "tests", "conftest")


@dataclass(frozen=True)
class Import:
    importer: str  # module name, e.g. ssmlab.models.sasrec
    imported: str  # resolved module name, e.g. ssmlab.layers.attention (or a foreign top name)
    path: Path
    line: int

    def where(self, base: Path) -> str:
        return f"{self.path.relative_to(base)}:{self.line}"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Module name -> file for every .py under ``root`` (the package directory)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((package, *parts))] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The longest prefix of dotted ``name`` that is a module of the package (``name`` if none)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in modules:
            return ".".join(parts[:n])
    return name


def imports_of(module: str, path: Path, modules: dict[str, Path], package: str) -> list[Import]:
    """Every import statement in ``path`` (any depth), resolved to module names."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package, level - 1 steps up
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # from pkg import submodule -> the submodule; from pkg import name -> pkg
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (
                    isinstance(node.func, ast.Name)
                    and node.func.id in ("import_module", "__import__")
                )
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        for name in names:
            top = name.split(".")[0]
            if top == package:
                found.append(Import(module, _resolve(name, modules), path, node.lineno))
            elif top in NEVER_IMPORTED:
                found.append(Import(module, name, path, node.lineno))
    return found


def import_graph(root: Path, package: str) -> list[Import]:
    modules = module_files(root, package)
    return [imp for mod, path in modules.items() for imp in imports_of(mod, path, modules, package)]


def unit_of(module: str, package: str) -> str | None:
    """``ssmlab.models.sasrec`` -> ``models``; the root module -> None."""
    parts = module.split(".")
    return parts[1] if parts[0] == package and len(parts) > 1 else None


def rule_violations(
    imports: list[Import], rules: dict[str, set[str]], package: str, base: Path
) -> list[str]:
    """Rule (a): imports that leave the importer's unit for one ``rules`` does not allow."""
    errors = []
    for imp in imports:
        src, dst = unit_of(imp.importer, package), unit_of(imp.imported, package)
        where = f"{imp.where(base)}: {imp.importer} imports {imp.imported}"
        if not imp.imported.startswith(package + ".") and imp.imported != package:
            errors.append(f"{where}: {package}/ never imports {imp.imported.split('.')[0]}/")
        elif src is None and dst is not None:
            errors.append(f"{where}: the root module {package}/__init__.py imports nothing")
        elif src is not None and src not in rules:
            errors.append(f"{where}: unit {src!r} has no row in MAY_IMPORT (add one)")
        elif dst is not None and src != dst and dst not in rules[src]:
            allowed = ", ".join(sorted(rules[src])) or "nothing"
            kind = "upward" if src in rules.get(dst, set()) else "not allowed"
            errors.append(
                f"{where}: {src} may not import {dst} ({kind}; {src} may import {allowed})"
            )
    return errors


def import_cycles(imports: list[Import], base: Path) -> list[str]:
    """Rule (b): one reported cycle per strongly connected group of modules (Tarjan)."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in imports:
        if imp.importer != imp.imported:
            edges.setdefault(imp.importer, {}).setdefault(imp.imported, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)

    errors = []
    for group in groups:
        # a shortest way back to the group's first module, inside the group
        start, members = group[0], set(group)
        prev: dict[str, str] = {}
        frontier, seen = [start], {start}
        while frontier and start not in prev:
            nxt = []
            for v in frontier:
                for w in sorted(edges.get(v, {})):
                    if w == start:
                        prev.setdefault(start, v)
                    elif w in members and w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        chain, v = [start], prev[start]
        while v != start:
            chain.append(v)
            v = prev[v]
        chain.append(start)
        chain.reverse()
        steps = [f"{a} -> {b} ({edges[a][b].where(base)})" for a, b in itertools.pairwise(chain)]
        errors.append(f"import cycle among {', '.join(group)}: " + "; ".join(steps))
    return errors


def check(root: Path, package: str, rules: dict[str, set[str]]) -> list[str]:
    imports = import_graph(root, package)
    base = root.parent
    return rule_violations(imports, rules, package, base) + import_cycles(imports, base)


# --- the rules themselves ---------------------------------------------------------------------


def test_rules_are_a_layering():
    """The table is closed (a unit may import what the units it imports may) and has no cycle."""
    for unit, allowed in MAY_IMPORT.items():
        assert unit not in allowed, f"{unit} lists itself"
        for dep in allowed:
            assert dep in MAY_IMPORT, f"{unit} may import {dep}, which has no row"
            missing = MAY_IMPORT[dep] - allowed
            assert not missing, f"{unit} may import {dep} but not what {dep} may: {missing}"
            assert unit not in MAY_IMPORT[dep], f"{unit} and {dep} may import each other"


def test_every_unit_has_a_row():
    units = {unit_of(m, PACKAGE) for m in module_files(ROOT, PACKAGE)} - {None}
    assert units == set(MAY_IMPORT), (
        f"units without a row: {sorted(units - set(MAY_IMPORT))}; "
        f"rows without a unit: {sorted(set(MAY_IMPORT) - units)}"
    )


def test_the_graph_sees_lazy_imports():
    """Function-level imports count: cli imports bench only inside a handler."""
    pairs = {(i.importer, i.imported) for i in import_graph(ROOT, PACKAGE)}
    assert ("ssmlab.cli", "ssmlab.bench") in pairs
    assert ("ssmlab.layers.ssd", "ssmlab.ssm.ssd") in pairs
    assert len(pairs) > 100


def test_architecture_md_shows_the_same_table():
    """ARCHITECTURE.md's "Who may import whom" table is MAY_IMPORT (``everything``: every unit)."""
    text = (ROOT.parent / "ARCHITECTURE.md").read_text()
    shown: dict[str, set[str]] = {}
    for line in text.split("## Who may import whom")[1].split("\n## ")[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        for unit in re.findall(r"`(\w+)`", cells[0]):
            allowed = set(re.findall(r"`(\w+)`", cells[1]))
            shown[unit] = set(MAY_IMPORT) - {unit} if cells[1] == "everything" else allowed
    assert shown == MAY_IMPORT, "ARCHITECTURE.md and MAY_IMPORT differ: update both"


# --- ssmlab obeys them ------------------------------------------------------------------------


def test_no_import_breaks_the_layering():
    imports = import_graph(ROOT, PACKAGE)
    errors = rule_violations(imports, MAY_IMPORT, PACKAGE, ROOT.parent)
    assert not errors, "imports against MAY_IMPORT (ARCHITECTURE.md):\n" + "\n".join(errors)


def test_no_import_cycle():
    errors = import_cycles(import_graph(ROOT, PACKAGE), ROOT.parent)
    assert not errors, "\n".join(errors)


# --- and the checker can fail -----------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_checker_reports_upward_imports_and_cycles(tmp_path):
    pkg = tmp_path / "toypkg"
    _write(
        pkg,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/a.py": """\
                import math


                def lazy():
                    from toypkg.high.top import thing  # upward, inside a function
                    return thing
                """,
            "low/b.py": "from . import c\n",  # relative: low.b -> low.c
            "low/c.py": "import toypkg.low.b\n",  # low.c -> low.b: a cycle
            "high/__init__.py": "",
            "high/top.py": "from toypkg.low import c\nthing = 1\n",  # downward: fine
            "side.py": "import json\nfrom os import path\n",  # outside the package: ignored
        },
    )
    rules = {"low": set(), "high": {"low"}, "side": set()}
    errors = check(pkg, "toypkg", rules)
    assert len(errors) == 2, errors
    upward, cycle = errors
    assert upward.startswith("toypkg/low/a.py:5: toypkg.low.a imports toypkg.high.top: ")
    assert "low may not import high (upward; low may import nothing)" in upward
    assert cycle.startswith("import cycle among toypkg.low.b, toypkg.low.c: ")
    assert "toypkg.low.b -> toypkg.low.c (toypkg/low/b.py:1)" in cycle
    assert "toypkg.low.c -> toypkg.low.b (toypkg/low/c.py:1)" in cycle


def test_checker_reports_unknown_units_and_forbidden_names(tmp_path):
    pkg = tmp_path / "toypkg"
    _write(
        pkg,
        {
            "__init__.py": "",
            "a.py": "import importlib\nm = importlib.import_module('toypkg.b')\n",
            "b.py": "import benchmarks.kernels\n",
        },
    )
    errors = check(pkg, "toypkg", {"a": set(), "b": {"a"}})
    assert errors == [
        "toypkg/a.py:2: toypkg.a imports toypkg.b: a may not import b (upward; a may import "
        "nothing)",
        "toypkg/b.py:1: toypkg.b imports benchmarks.kernels: toypkg/ never imports benchmarks/",
    ], errors
