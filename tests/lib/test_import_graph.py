"""No import cycles in the integration, counting every import: at module level, in functions, for the type checker.

A cycle held apart by an import inside a function (or under ``TYPE_CHECKING``)
still ties two modules together; the modules are layered instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2] / "custom_components" / "submeter"
PACKAGE = "custom_components.submeter"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The integration's modules ``path`` imports, wherever the import sits."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            source = f"{base}.{node.module}" if node.level and node.module else base if node.level else node.module
            assert source is not None
            targets = [source] + [f"{source}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            if target in modules and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    modules = {_module(p) for p in paths}
    return {_module(p): _imports(p, modules) for p in paths}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle, if there is one (a package's ``__init__`` importing its own modules is no cycle)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if node.startswith(nxt + "."):  # a module importing its own package's __init__ is how packages load
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if state.get(nxt) is None and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None and (found := visit(node)) is not None:
            return found
    return None


def test_the_graph_sees_imports_everywhere() -> None:
    """The checker reads imports inside functions and type-checking blocks too."""
    graph = _graph()
    assert f"{PACKAGE}.bus_kinds.registry" in graph[f"{PACKAGE}.flows.bus"]
    assert f"{PACKAGE}.pysubmeter.bacnet.meter" in graph[f"{PACKAGE}.pysubmeter.bacnet.network"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("layer", ["pysubmeter", ""])
def test_no_import_cycles(layer: str) -> None:
    graph = _graph()
    prefix = f"{PACKAGE}.{layer}" if layer else PACKAGE
    scoped = {m: {t for t in ts if t.startswith(prefix)} for m, ts in graph.items() if m.startswith(prefix)}
    assert _cycle(scoped) is None


PROTOCOL_MODULES = ("modbus", "bacnet", "mstp", "dlms")


@pytest.mark.parametrize("module", ["flows.reauth", "flows.bus", "flows.options", "flows.progress"])
def test_generic_flows_know_no_protocol(module: str) -> None:
    """The one seam: a generic flow asks the entry's bus kind (its steps, its secrets), never a protocol's module."""
    graph = _graph()
    known = {target.removeprefix(f"{PACKAGE}.") for target in graph[f"{PACKAGE}.{module}"]}
    assert f"{PACKAGE}.{module}" in graph
    assert not {t for t in known if any(part in PROTOCOL_MODULES for part in t.split("."))}, known
    text = (ROOT / Path(*module.split("."))).with_suffix(".py").read_text(encoding="utf-8").lower()
    assert not [word for word in PROTOCOL_MODULES if f"{word}_" in text or f"{word}." in text], module
