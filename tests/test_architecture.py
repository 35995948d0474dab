"""The structure issue 17 asked for, checked on the source: no import circle between
modules of different packages, a small ModelService, and a dashboard feed that knows no
service class."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "driftloop"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    """``driftloop.serving`` for ``driftloop.serving.hub``; a top-level module is its own."""
    return ".".join(module.split(".")[:2])


def _nodes(tree: ast.AST, typing: bool) -> Iterator[ast.AST]:
    """Every node, at any depth (functions included); without ``typing``, not those under
    ``if TYPE_CHECKING:``, which never run."""
    for node in ast.iter_child_nodes(tree):
        if (not typing and isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                and node.test.id == "TYPE_CHECKING"):
            yield from (n for child in node.orelse for n in [child, *_nodes(child, typing)])
            continue
        yield node
        yield from _nodes(node, typing)


def _imports(path: Path, typing: bool = False) -> set[str]:
    """The driftloop modules and names ``path`` imports, at module level or in a function."""
    found: set[str] = set()
    for node in _nodes(ast.parse(path.read_text(), str(path)), typing):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            prefix = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = _module(path).split(".")
                base = base[:len(base) - node.level + (path.name == "__init__.py")]
                prefix = ".".join([*base, *([node.module] if node.module else [])])
            found.add(prefix)
            found.update(f"{prefix}.{a.name}" for a in node.names)
    return {name for name in found if name.split(".")[0] == "driftloop"}


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of ``graph`` with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while not component or node not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_sees_a_circle_across_packages() -> None:
    graph = {"driftloop.a.x": {"driftloop.b.y"}, "driftloop.b.y": {"driftloop.a.x"},
             "driftloop.c": set()}
    assert _circles(graph) == [{"driftloop.a.x", "driftloop.b.y"}]


def test_no_import_circle_crosses_packages() -> None:
    crossing = [sorted(c) for c in _circles(_graph()) if len({_package(m) for m in c}) > 1]
    assert not crossing, crossing


def test_the_model_service_is_small() -> None:
    tree = ast.parse((PACKAGE / "serving" / "service.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ModelService")
    assert cls.end_lineno is not None
    assert cls.end_lineno - cls.lineno + 1 <= 150


def test_the_hub_imports_no_service_class() -> None:
    hub = PACKAGE / "serving" / "hub.py"
    imported = _imports(hub, typing=True)
    assert not {m for m in imported if m.startswith(("driftloop.serving.service",
                                                     "driftloop.serving.compose"))}
    assert "ModelService" not in hub.read_text()
