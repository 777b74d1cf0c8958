# SPDX-License-Identifier: GPL-2.0-or-later
"""The shape of the package, read from its source with :mod:`ast`: no import cycle
at any level, no module over 500 lines, no private ``_name`` imported from another
module (docs/architecture.md, "Rules that keep it so").

The import graph has one node per module of ``rmem_inspect/`` (a package is its
``__init__.py``) and one edge per import statement anywhere in a module: at module
level, under ``if TYPE_CHECKING:``, inside functions and methods, and
``importlib.import_module("name")`` with a literal name. ``from pkg import name`` is
an edge to the submodule ``pkg.name`` when that is a module, else to ``pkg`` (whose
``__init__.py`` must have run to define ``name``). Importing ``a.b.c`` also runs the
``__init__.py`` of ``a`` and ``a.b``: those count as edges too, except packages that
enclose the importing module (already imported before it ran). ``import_module(x)``
with ``x`` computed counts as an edge to every module it may name
(:func:`_dynamic_targets`). A cycle through a function-local import is still a
cycle: it only moves the failure to run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "rmem_inspect"

#: The project's limit on a module's length, in lines.
MAX_LINES = 500


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``line`` (``how`` says in which way)."""

    source: str
    target: str
    line: int
    how: str

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.how}, line {self.line})"


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ``root``."""
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _is_package(files: dict[str, Path], name: str) -> bool:
    return name in files and files[name].name == "__init__.py"


def _function_ranges(tree: ast.Module) -> list[tuple[int, int]]:
    return [
        (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    ]


def _dynamic_targets(
    name: str, tree: ast.Module, arg: ast.expr, files: dict[str, Path]
) -> list[str]:
    """What ``import_module(arg)`` may import when ``arg`` is not a literal:
    ``f"{__name__}.{...}"`` (a package importing its own modules) is any module of
    that package; anything else is any module of ours named by a string constant in
    the module (``_LAZY = {"inspect": ("rmem_inspect.collect.snapshot", ...)}``)."""
    if (
        isinstance(arg, ast.JoinedStr)
        and len(arg.values) >= 2
        and isinstance(arg.values[0], ast.FormattedValue)
        and isinstance(arg.values[0].value, ast.Name)
        and arg.values[0].value.id == "__name__"
    ):
        return [m for m in files if m.rpartition(".")[0] == name]
    return sorted(
        {
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in files
        }
    )


def _imports(name: str, path: Path, files: dict[str, Path]) -> Iterator[tuple[str, int, str]]:
    """(target, line, kind) for every import in the module ``name``."""
    tree = ast.parse(path.read_text(), str(path))
    local = _function_ranges(tree)
    package = name if _is_package(files, name) else name.rpartition(".")[0]

    def kind(node: ast.AST) -> str:
        line = getattr(node, "lineno", 0)
        return "function-local" if any(a <= line <= b for a, b in local) else "module-level"

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, kind(node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                if alias.name != "*" and sub in files:
                    yield sub, node.lineno, kind(node)
                else:
                    yield module, node.lineno, kind(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield arg.value, node.lineno, kind(node) + " import_module"
            else:
                for target in _dynamic_targets(name, tree, arg, files):
                    yield target, node.lineno, kind(node) + " import_module by name"


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, list[Edge]]:
    """Module -> the edges out of it, to modules of ``package`` only."""
    files = module_files(root, package)
    graph: dict[str, list[Edge]] = {name: [] for name in files}
    for name, path in files.items():
        enclosing = set(_ancestors(name)) | {name}
        for target, line, how in _imports(name, path, files):
            if target != package and not target.startswith(package + "."):
                continue
            while target not in files:  # an attribute path: its module
                target = target.rpartition(".")[0]
            edges = [Edge(name, target, line, how)]
            edges += [
                Edge(name, a, line, how + ", runs its __init__.py")
                for a in _ancestors(target)
                if a not in enclosing
            ]
            graph[name] += [e for e in edges if e.target != name]
    return graph


def find_cycles(graph: dict[str, list[Edge]]) -> list[list[Edge]]:
    """One cycle (as its edges) per strongly connected component with more than one
    module (Tarjan's algorithm; self-imports are dropped by :func:`import_graph`)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:  # recursion depth: the number of modules, ~100
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for e in graph[v]:
            if e.target not in index:
                connect(e.target)
                low[v] = min(low[v], low[e.target])
            elif e.target in on_stack:
                low[v] = min(low[v], index[e.target])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(graph, set(c), c[0]) for c in components]


def _cycle_in(graph: dict[str, list[Edge]], comp: set[str], start: str) -> list[Edge]:
    """The shortest path of edges from ``start`` back to itself inside ``comp``."""
    came: dict[str, Edge] = {}
    queue = [start]
    for v in queue:
        for e in graph[v]:
            if e.target not in comp or e.target in came:
                continue
            came[e.target] = e
            if e.target == start:
                path = [e]
                while path[0].source != start:
                    path.insert(0, came[path[0].source])
                return path
            queue.append(e.target)
    raise AssertionError(f"no cycle through {start}")  # not reached: comp is an SCC


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # it read the tree
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(
        "  "
        + " -> ".join([c[0].source] + [e.target for e in c])
        + "\n"
        + "".join(f"      {e}\n" for e in c)
        for c in cycles
    )


def test_no_module_over_500_lines() -> None:
    long = {
        name: n
        for name, path in module_files().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: " + ", ".join(
        f"{name} ({n})" for name, n in sorted(long.items())
    )


def test_no_private_name_imported_across_modules() -> None:
    found = []
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith(PACKAGE)
            ):
                found += [
                    f"{name}:{node.lineno} imports {a.name} from {node.module}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert not found, "private names imported across modules: " + "; ".join(found)


# The checker itself, on small trees written here: each kind of edge it must see.
@pytest.mark.parametrize(
    "files, cycle",
    [
        ({"a.py": "from pkg import b\n", "b.py": "import pkg.a\n"}, ["pkg.a", "pkg.b"]),
        (
            {"a.py": "def f():\n    from pkg.b import x\n", "b.py": "from .a import y\n"},
            ["pkg.a", "pkg.b"],
        ),
        (  # a TYPE_CHECKING import, and a re-export through a package __init__
            {
                "__init__.py": "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg.sub.c import z\n",
                "sub/__init__.py": "",
                "sub/c.py": "from pkg import VERSION\n",
            },
            ["pkg", "pkg.sub.c"],
        ),
        (  # importing pkg.sub.c runs pkg/sub/__init__.py, which imports back
            {
                "a.py": "import pkg.sub.c\n",
                "sub/__init__.py": "from pkg.a import q\n",
                "sub/c.py": "",
            },
            ["pkg.a", "pkg.sub"],
        ),
        (
            {
                "a.py": "import importlib\nimportlib.import_module('pkg.b')\n",
                "b.py": "import pkg.a",
            },
            ["pkg.a", "pkg.b"],
        ),
        (  # a package importing every module of its own by name (checks/__init__.py)
            {
                "sub/__init__.py": "import importlib, pkgutil\n"
                "for m in pkgutil.iter_modules(__path__):\n"
                "    importlib.import_module(f'{__name__}.{m.name}')\n"
                "X = 1\n",
                "sub/d.py": "from pkg.sub import X\n",
            },
            ["pkg.sub", "pkg.sub.d"],
        ),
        (  # lazy re-exports by name (rmem_inspect/__init__.py)
            {
                "__init__.py": "import importlib\nLAZY = {'f': ('pkg.e', 'f')}\n"
                "def __getattr__(n):\n    return importlib.import_module(LAZY[n][0])\n",
                "e.py": "from pkg import VERSION\n",
            },
            ["pkg", "pkg.e"],
        ),
        # a package importing its own submodules, which import their siblings: no cycle
        ({"__init__.py": "from pkg import a\n", "a.py": "from pkg.b import x\n", "b.py": ""}, []),
    ],
)
def test_checker_sees_cycles(tmp_path: Path, files: dict[str, str], cycle: list[str]) -> None:
    for rel, text in {"__init__.py": "", **files}.items():
        (tmp_path / "pkg" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / rel).write_text(text)
    found = find_cycles(import_graph(tmp_path, "pkg"))
    assert sorted({e.source for c in found for e in c}) == cycle
