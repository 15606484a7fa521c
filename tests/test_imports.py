"""The entrypoint package's modules import each other in one direction only: no cycles."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "entrypoint" / "valkey_bundle"


def package_imports():
    """{module: set of package modules it imports}, counting imports inside functions too."""
    graph = {}
    for path in sorted(PACKAGE.glob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    imported.add(node.module.split(".")[0])
                elif node.level == 1:
                    imported |= {alias.name for alias in node.names}
                elif node.level == 0 and (node.module or "").startswith("valkey_bundle."):
                    imported.add(node.module.split(".")[1])
        graph[path.stem] = imported - {path.stem}
    return graph


def cycle_through(graph, start):
    """A path start -> ... -> start, or None."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        module, path = stack.pop()
        for imported in sorted(graph.get(module, ())):
            if imported == start:
                return [*path, start]
            if imported not in seen:
                seen.add(imported)
                stack.append((imported, [*path, imported]))
    return None


def test_the_scan_sees_the_imports():
    graph = package_imports()
    assert "cluster_settings" in graph["settings"] and "env_values" in graph["cluster_settings"]
    assert "bootstrap" in graph["apply"]  # imported inside a function


def test_no_two_modules_import_each_other():
    graph = package_imports()
    cycles = [cycle for module in sorted(graph) if (cycle := cycle_through(graph, module))]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_environment_readers_form_a_line():
    graph = package_imports()
    assert "settings" not in graph["cluster_settings"]
    assert "settings" not in graph["env_values"] and "cluster_settings" not in graph["env_values"]
