"""The package's shape, as a reviewer checks it: imports that run one way, shared
names that are public, files and functions that fit on a few screens.

The layers themselves are import-linter's contract (pyproject.toml, run by
.ci/run); these checks read the source with `ast`, imports inside functions
included, and need nothing installed.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "forecaster"
MAX_TOP_LEVEL_MODULES = 12
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
MAX_LAZY_IMPORTS = 24  # each keeps `import forecaster` free of TF, Ray, plotly, arch


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}


def imported(name: str, node: ast.Import | ast.ImportFrom) -> list[tuple[str, str]]:
    """(module, imported name or '') for each of forecaster's modules `node` names."""
    if isinstance(node, ast.Import):
        return [(alias.name, "") for alias in node.names if alias.name in MODULES]
    base = node.module or ""
    if node.level:
        package = (
            name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
        )
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if node.module else package
    found = []
    for alias in node.names:
        if f"{base}.{alias.name}" in MODULES:
            found.append((f"{base}.{alias.name}", ""))
        elif base in MODULES:
            found.append((base, alias.name))
    return found


def imports(name: str):
    """(target module, imported name, inside a function?) for every import."""

    def walk(node, inside):
        for child in ast.iter_child_nodes(node):
            nested = inside or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target, what in imported(name, child):
                    yield target, what, inside
            yield from walk(child, nested)

    yield from walk(TREES[name], False)


def graph() -> dict[str, set[str]]:
    return {
        name: {target for target, _, _ in imports(name) if target != name}
        for name in MODULES
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
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

    for v in edges:
        if v not in index:
            visit(v)
    return groups


def test_imports_have_no_cycles_counting_those_inside_functions():
    assert cycles(graph()) == []


def test_no_underscore_name_is_imported_from_another_module():
    private = [
        f"{name} imports {what} from {target}"
        for name in MODULES
        for target, what, _ in imports(name)
        if what.startswith("_") and not what.startswith("__") and target != name
    ]
    assert private == []


def test_the_library_imports_its_own_modules_at_the_top():
    lazy = [
        f"{name} -> {target}"
        for name in MODULES
        for target, _, inside in imports(name)
        if inside
    ]
    assert len(lazy) <= MAX_LAZY_IMPORTS, "\n".join(lazy)


def test_the_top_level_holds_at_most_twelve_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


@pytest.mark.parametrize("name", sorted(MODULES))
def test_files_and_functions_fit_on_a_few_screens(name):
    path = MODULES[name]
    assert len(path.read_text().splitlines()) <= MAX_FILE_LINES
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(TREES[name])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_every_module_opens_with_a_docstring():
    missing = [name for name, tree in TREES.items() if not ast.get_docstring(tree)]
    assert missing == []


@pytest.mark.parametrize("name", sorted(set(MODULES) - {"forecaster.__main__"}))
def test_every_module_imports(name):
    importlib.import_module(name)
