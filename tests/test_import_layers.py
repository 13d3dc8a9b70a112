"""No import circle inside xlm_fairseq and xlm_preprocess: every `import` statement (at module level or inside a
function: a lazy import is still a dependency) between their modules is an edge, and the graph has no cycle.
errors.py, the error types, is the bottom layer and imports nothing of the package."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = {"xlm_fairseq": "xlm_fairseq", "xlm_preprocess": "preprocess"}  # import name -> folder


def modules():
    """{dotted name: path} of every module of the packages (a package is its __init__.py)."""
    found = {}
    for package, folder in PACKAGES.items():
        for parent, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(parent, name)
                    parts = [package] + os.path.relpath(path, os.path.join(ROOT, folder))[:-3].split(os.sep)
                    if parts[-1] == "__init__":
                        parts = parts[:-1]
                    found[".".join(parts)] = path
    return found


def imports(name, path, known):
    """The modules of `known` that the file imports, with the line of each import."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = {}
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            # `from . import x` imports the module x when there is one, else a name of the package
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.setdefault(target, node.lineno)
    return found


def find_cycle(graph):
    """One cycle of the graph as a list of nodes (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_circle():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert "xlm_fairseq.checkpoints" in graph["xlm_fairseq.hub_interface"]  # the walk sees imports at all
    assert "xlm_fairseq.errors" in graph["xlm_fairseq.checkpoints"]
    cycle = find_cycle(graph)
    assert cycle is None, (
        "import circle: "
        + " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:]))
        + f" -> {cycle[-1]}"
    )


def test_error_types_are_the_bottom_layer():
    known = modules()
    path = known["xlm_fairseq.errors"]
    assert imports("xlm_fairseq.errors", path, known) == {}
