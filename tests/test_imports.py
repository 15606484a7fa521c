"""The entrypoint package's modules import each other in one direction only: no cycles, the
cluster half entered by one way only, and nothing in it importing what comes in."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "entrypoint" / "valkey_bundle"
CLUSTER = "cluster"


def module_name(path):
    """``cluster.plan`` for cluster/plan.py, ``cluster`` for cluster/__init__.py, ``apply`` for apply.py."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def way_in():
    """The cluster package's WAY_IN: {name: module of the package}."""
    tree = ast.parse((PACKAGE / CLUSTER / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["WAY_IN"]:
            return ast.literal_eval(node.value)
    raise AssertionError("cluster/__init__.py has no WAY_IN")


def package_imports():
    """{module: set of package modules it imports}, counting imports inside functions too, and the
    modules the cluster package loads by name (WAY_IN)."""
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level == 0:
                if not (node.module or "").startswith("valkey_bundle."):
                    continue
                base = node.module.split(".", 1)[1]
            else:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            if node.module:
                imported.add(base)
            else:
                imported |= {f"{base}.{alias.name}" if base else alias.name for alias in node.names}
        graph[name] = imported - {name}
    graph[CLUSTER] |= {f"{CLUSTER}.{module}" for module in way_in().values()}
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


def reaches(graph, start, target):
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        for imported in graph.get(module, ()):
            if imported == target:
                return True
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return False


def in_cluster(module):
    return module == CLUSTER or module.startswith(CLUSTER + ".")


def test_the_scan_sees_the_imports():
    graph = package_imports()
    assert "cluster" in graph["settings"] and "env_values" in graph["cluster.settings"]
    assert "cluster" in graph["apply"]  # imported inside a function
    assert {"cluster.decisions", "cluster.form", "cluster.join", "cluster.link", "errors"} <= (
        graph["cluster.bootstrap"] | graph["cluster.link"]
    )
    assert "cluster.bootstrap" in graph["cluster"]  # loaded by name


def test_no_two_modules_import_each_other():
    graph = package_imports()
    cycles = [cycle for module in sorted(graph) if (cycle := cycle_through(graph, module))]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cluster_half_has_one_way_in():
    graph = package_imports()
    through_a_side_door = {
        module: sorted(i for i in imported if in_cluster(i) and i != CLUSTER)
        for module, imported in graph.items()
        if not in_cluster(module)
    }
    assert not {m: i for m, i in through_a_side_door.items() if i}, "import the cluster package, not its modules"


def test_nothing_in_the_cluster_half_imports_what_comes_in():
    graph = package_imports()
    above = {m for m in graph if not in_cluster(m) and reaches(graph, m, CLUSTER)}
    assert {"settings", "plan", "apply", "health", "main"} <= above
    upward = {m: sorted(graph[m] & above) for m in graph if in_cluster(m) and graph[m] & above}
    assert not upward, f"cluster modules importing the modules that use them: {upward}"


def test_every_name_of_the_way_in_is_where_it_says():
    for name, module in way_in().items():
        tree = ast.parse((PACKAGE / CLUSTER / f"{module}.py").read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert name in defined, f"WAY_IN: {name} is not defined in cluster/{module}.py"


def test_the_environment_readers_form_a_line():
    graph = package_imports()
    assert "settings" not in graph["cluster.settings"]
    assert "settings" not in graph["env_values"] and "cluster" not in graph["env_values"]
