"""The shape of the code: the pipeline's stages import one way, modules stay small.

Read from the source with ``ast`` (every import, the lazy ones inside functions included;
``if TYPE_CHECKING:`` blocks excluded), so a cycle cannot hide behind a function-level import.
docs/architecture.md draws the stages and says which module owns which decision.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: source folder -> the package it is installed as
PACKAGES = {"tinylstm": "tinylstm", "codegen": "tinylstm.codegen", "export": "tinylstm.export"}
#: Python modules and C files may hold at most about this many lines (one job each)
MAX_LINES = 450
#: the stages in dependency order: a module may import its own stage and the stages before it
STAGES = (
    ("tinylstm._version", "tinylstm.errors", "tinylstm.digest", "tinylstm.fixedpoint"),
    ("tinylstm.ir",),
    ("tinylstm.onnx_import", "tinylstm.data"),
    ("tinylstm.quantize.luts", "tinylstm.quantize.calibration"),
    ("tinylstm.qmodel",),
    ("tinylstm.lowering",),
    ("tinylstm.quantize",),
    ("tinylstm.simulate", "tinylstm.codegen"),
    ("tinylstm.cbuild",),
    ("tinylstm.validate",),
    ("tinylstm.export",),
    ("tinylstm.finetune",),
    ("tinylstm.quantize.report", "tinylstm.pipeline", "tinylstm.demo"),
    ("tinylstm.cli", "tinylstm.__main__"),
    ("tinylstm",),
)


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in PACKAGES.items():
        for p in (ROOT / folder).rglob("*.py"):
            parts = list(p.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = p
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path) -> set[str]:
    """Project modules ``name`` imports anywhere (functions included, TYPE_CHECKING excluded)."""
    is_pkg = path.name == "__init__.py"
    package = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for n in node.orelse:
                visit(n)
            return
        if isinstance(node, ast.Import):
            for a in node.names:
                found.add(a.name)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            for a in node.names:  # "from . import x": x may be a module, else a name of mod
                found.add(f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _owner(parent: str, child: str) -> bool:
    return child == parent or child.startswith(parent + ".")


def test_no_import_cycle() -> None:
    """No cycle between the project's modules, lazy imports included (importing a package runs its
    ``__init__``, which imports the modules it exposes: that counts)."""
    edges = GRAPH
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                dfs(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            dfs(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _stage(module: str) -> int:
    best = None
    for k, prefixes in enumerate(STAGES):
        for p in prefixes:
            if _owner(p, module) and (best is None or len(p) > len(best[1])):
                best = (k, p)
    assert best is not None, f"{module} belongs to no stage of STAGES"
    return best[0]


def test_dependencies_point_one_way() -> None:
    """Each module imports only modules of its own stage or of earlier stages; no internal module
    imports the package facade (``tinylstm/__init__``)."""
    bad = []
    for m, targets in GRAPH.items():
        for t in targets:
            if t == "tinylstm" and m != "tinylstm":
                bad.append(f"{m} imports the facade tinylstm")
            elif _stage(t) > _stage(m):
                bad.append(f"{m} (stage {_stage(m)}) imports {t} (stage {_stage(t)})")
    assert not bad, "\n".join(sorted(bad))


@pytest.mark.parametrize("folder", ["tinylstm", "codegen", "export"])
def test_python_modules_are_small(folder: str) -> None:
    big = {str(p.relative_to(ROOT)): n for p in (ROOT / folder).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_c_files_are_small() -> None:
    files = [p for p in (ROOT / "codegen").rglob("*") if p.suffix in (".c", ".h")]
    assert files
    big = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"C files over {MAX_LINES} lines: {big}"


def test_every_package_is_installed() -> None:
    """pyproject.toml lists every package of the tree (a non-editable install gets them all)."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    tree = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert listed == tree, f"missing: {sorted(tree - listed)}, extra: {sorted(listed - tree)}"
