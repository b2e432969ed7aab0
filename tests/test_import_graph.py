"""The package's import graph: every dependency between subpackages points one way, and the core
never imports the bundled mini prior (it looks models up by name in `tv3dg.priors.registry`).

Imports are read from the source with `ast`, including those inside functions, so a lazy import
cannot hide a cycle.
"""

import ast
from pathlib import Path

import tv3dg

PACKAGE = Path(tv3dg.__file__).parent
MINI = "tv3dg.priors.mini"
# Front ends of the mini package itself may import it; nothing else may.
MINI_FRONT_ENDS = {"tv3dg.commands.mini"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every `tv3dg...` module a file imports, at any depth (the package uses absolute imports only)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; write it as an absolute tv3dg.* import"
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {m for m in found if m == "tv3dg" or m.startswith("tv3dg.")}


def all_imports() -> dict[str, set[str]]:
    """module -> the package modules it imports (names imported from a module count as that module)."""
    paths = list(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imports_of(path) & modules for path in paths}


def unit(module: str) -> str:
    """The node of the subpackage graph: `tv3dg.X` for a subpackage X or a top-level module X."""
    return ".".join(module.split(".")[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def subpackage_graph(imports: dict[str, set[str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, targets in imports.items():
        if module == "tv3dg":
            continue
        source = unit(module)
        graph.setdefault(source, set()).update(unit(t) for t in targets if t != "tv3dg" and unit(t) != source)
    return graph


def test_subpackages_import_each_other_one_way_only():
    assert cycles(subpackage_graph(all_imports())) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = subpackage_graph({"tv3dg.a.x": {"tv3dg.b.y"}, "tv3dg.b.y": {"tv3dg.c"}, "tv3dg.c": {"tv3dg.a.z"}})
    assert cycles(graph) == [["tv3dg.a", "tv3dg.b", "tv3dg.c"]]


def _in_mini(module: str) -> bool:
    return module == MINI or module.startswith(MINI + ".")


def test_the_core_never_imports_the_mini_prior():
    offenders = {
        module: sorted(t for t in targets if _in_mini(t))
        for module, targets in all_imports().items()
        if not _in_mini(module) and module not in MINI_FRONT_ENDS
    }
    assert {m: t for m, t in offenders.items() if t} == {}
