"""The house rules of the package layout (docs/architecture.md): imports flow one way between its parts, there are
no import cycles, and no module imports another module's private (underscore) names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "explorer"

# Lower layers never import higher ones (nor any other part of their own layer); `explorer` itself (the package
# root: version and timm registration) is outside the layering.
LAYERS: dict[str, int] = {
    "explorer.blocks": 0,
    "explorer.arch": 0,
    "explorer.data": 0,
    "explorer.pareto": 0,
    "explorer.logs": 0,
    "explorer.metrics": 0,
    "explorer.models": 1,
    "explorer.cost": 2,
    "explorer.train": 2,
    "explorer.space": 3,
    "explorer.analysis": 3,
    "explorer.costaware": 4,
    "explorer.report": 4,
    "explorer.search": 5,
    "explorer.cli": 6,
    "explorer._searcher": 6,  # the searcher's old module path, so run folders pickled before the move still resume
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part(module: str) -> str:
    """The layer a module belongs to: its first two name components (``explorer.cost.timing`` → ``explorer.cost``)."""
    return ".".join(module.split(".")[:2])


def imports(path: Path, module_level_only: bool = False) -> list[tuple[str, list[str], int]]:
    """``(imported module, imported names, line)`` of every explorer import in ``path``."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found = []
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative import
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{target}" if target else base
            if target.startswith("explorer"):
                names = [a.name for a in node.names]
                # ``from explorer.blocks import focal`` imports the module explorer.blocks.focal
                submodules = [n for n in names if _is_module(f"{target}.{n}")]
                found += [(f"{target}.{n}", [], node.lineno) for n in submodules]
                if len(submodules) < len(names):
                    found.append((target, [n for n in names if n not in submodules], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("explorer")]
    return found


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_of_the_package_has_a_layer():
    parts = {part(module_name(p)) for p in MODULES} - {"explorer"}
    assert parts <= LAYERS.keys(), f"place {sorted(parts - LAYERS.keys())} in LAYERS (and docs/architecture.md)"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_flow_downward(path):
    source = part(module_name(path))
    if source == "explorer":
        return
    upward = [
        f"line {line}: {target}"
        for target, _, line in imports(path)
        if part(target) not in (source, "explorer") and LAYERS[part(target)] >= LAYERS[source]
    ]
    assert upward == [], f"{module_name(path)} (layer {LAYERS[source]}) imports sideways or upward"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_private_names_from_other_modules(path):
    me = module_name(path)
    private = [
        f"line {line}: {name} from {target}"
        for target, names, line in imports(path)
        for name in names
        if name.startswith("_") and not name.startswith("__") and target != me
    ]
    assert private == []


def test_no_import_cycles_at_module_level():
    graph = {module_name(p): {t for t, _, _ in imports(p, module_level_only=True)} for p in MODULES}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_layer_check_catches_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "explorer" / "models.py"
    fake.parent.mkdir()
    fake.write_text("def f():\n    from explorer.search import run_search\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path / "explorer")
    with pytest.raises(AssertionError, match="upward"):
        test_imports_flow_downward(fake)


MAX_MODULE_LINES = 600


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_modules_stay_under_the_line_bound(path):
    """A module past ~600 lines is split at its seams (docs/architecture.md), not left to grow."""
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module_name(path)} has {lines} lines: split it at a seam"
