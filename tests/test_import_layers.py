"""The import graph of every module under packages/*/src, read from the AST (every import:
top level, inside functions, under ``TYPE_CHECKING``): no circle, and every import points
to the importer's own layer or one below it (docs/architecture.md draws the layers)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module belongs to the layer of its longest matching name prefix.
LAYERS = [
    ("base", ["cm", "cm.errors", "cm.textfile", "cm.cachedir", "cm.progress", "cm.terminal",
              "cm.lineage", "cm.hookspecs", "cm.distributed", "cm.environment",
              "cm.signals", "cm.secrets", "cm.limits"]),
    ("data", ["cm.data"]),
    ("evaluate", ["cm.evaluate"]),
    ("config", ["cm.config"]),
    ("registry", ["cm.plugins", "cm.plugin_intent", "cm.contracts", "cm.factories", "cm.registry",
                  "cm.optimization"]),
    ("model", ["cm.model"]),
    ("train", ["cm.train", "cm.predict", "cm.posts_file", "cm.preflight"]),
    ("apps", ["cm.bench", "cm.testing", "cm.export", "cm.pytest_plugin", "cm.scaffold"]),
    ("cli", ["cm.cli"]),
    ("plugins", ["cm.builtin", "cm_heads", "cm_optimizations", "cm_tracking"]),
]
PLUGIN_PACKAGES = LAYERS[-1][1]


def source_modules() -> dict[str, Path]:
    modules = {}
    for src in ROOT.glob("packages/*/src"):
        for path in src.rglob("*.py"):
            parts = list(path.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path):
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def owner(name: str, modules) -> str | None:
    """The source module ``name`` is (or lives in), None for a third-party name."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the source modules it imports, plus the packages (``__init__``) Python runs
    on the way to a module outside the importer's own package."""
    modules = source_modules()
    graph = {}
    for module, path in modules.items():
        edges = set()
        for name in imported_names(module, path):
            target = owner(name, modules)
            while target and target != module and not module.startswith(f"{target}."):
                edges.add(target)
                target = owner(target.rpartition(".")[0], modules)
        graph[module] = edges
    return graph


def layer_of(module: str) -> int:
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS)
               for prefix in prefixes if module == prefix or module.startswith(f"{prefix}.")]
    assert matches, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return max(matches)[1]


def top_package(module: str) -> str:
    return next((p for p in PLUGIN_PACKAGES if module == p or module.startswith(f"{p}.")),
                module.partition(".")[0])


def cycle(graph) -> list[str]:
    """One circle of imports, or [] when there is none (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "cm.evaluate.validation" in graph["cm.config.schema"]  # imported inside a function
    assert "cm.config" in graph["cm.registry"]  # the package a submodule import runs


def test_no_module_imports_itself_in_a_circle():
    assert cycle(import_graph()) == []


def test_cycle_finds_a_circle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) == []


def test_every_import_points_to_its_own_layer_or_below():
    upward = [f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
              f"({LAYERS[layer_of(target)][0]})"
              for module, targets in import_graph().items() for target in sorted(targets)
              if layer_of(target) > layer_of(module)]
    assert upward == []


def test_no_plugin_package_imports_another():
    crossing = [f"{module} imports {target}" for module, targets in import_graph().items()
                for target in sorted(targets)
                if layer_of(module) == layer_of(target) == len(LAYERS) - 1
                and top_package(module) != top_package(target)]
    assert crossing == []


def test_plugin_packages_use_cm_config_through_its_public_names():
    """cm-tracking and the others import ``from cm.config import ...``, never a module of
    it: the package's ``__init__`` is the face it keeps stable."""
    import cm.config

    inside = []
    for module, path in source_modules().items():
        if layer_of(module) < len(LAYERS) - 1 or top_package(module) == "cm.builtin":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                     [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            inside += [f"{module} imports {name}" for name in names
                       if name.startswith("cm.config.")]
    assert inside == []
    assert set(cm.config.__all__) <= set(dir(cm.config))
