"""The package's modules import each other in one direction: no cycle, type-only imports included."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "openrlhf_cfpo"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, name: str, known: set) -> set:
    """The package modules that ``path`` imports when it is loaded (statements at module level, under ``if`` too:
    ``if TYPE_CHECKING:`` counts, since a type checker follows it; imports inside functions are lazy on purpose)."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found, todo = set(), list(ast.parse(path.read_text()).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If):
            todo += node.body + node.orelse
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            origin = ".".join(base[: len(base) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (origin, node.module or "") if p)
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}  # `from . import registry`
    return {m for m in found if m in known and m != name}


def _import_graph() -> dict:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _top_level_imports(path, name, set(paths)) for name, path in paths.items()}


def _cycle(graph: dict) -> list:
    """One import cycle of ``graph`` as [a, b, ..., a], or [] when there is none."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt, stack + [nxt])):
                return found
        state[node] = "done"
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return []


def test_no_module_of_the_package_imports_itself_back_through_others():
    cycle = _cycle(_import_graph())
    assert not cycle, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_type_only_import_back():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []
