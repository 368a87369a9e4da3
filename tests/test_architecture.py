"""The folders are the architecture: imports run one way, down the layers, and never in a circle.

Every import is read from the source (function-level ones too, which break no import-time cycle
but still tie one layer to another), so the test needs nothing installed and fails by name.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "keras_cut"

# Bottom to top. A module may import from its own subpackage and from any layer below its own;
# subpackages that share a layer are independent of each other.
LAYERS: list[tuple[str, ...]] = [
    ("core",),               # errors, JSON values, shown text, atomic writes, package names
    ("backend",),            # everything that imports Keras, TensorFlow or a runtime
    ("layers",),             # one entry per Keras layer class: shapes, arrays, costs, hazards
    ("file",),               # reading .keras zips and .h5 files without TensorFlow
    ("model",),              # the layer graph, layer names, opening a model, safety findings
    ("verify",),             # proving a submodel against its parent
    ("cut",),                # planning a cut and writing it (optionally verified)
    ("inspect", "diff", "draw", "export"),  # the other operations
    ("present",),            # Rich tables, JSON, pictures, the HTML page
    ("cli",),                # the Typer commands
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}
# What the library (everything below `present`) must never import.
CLI_ONLY = ("typer", "rich", "click")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, resolved to absolute names."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from keras_cut.x import y` where y is itself a module imports y, not x's names
            modules = [f"{module}.{alias.name}" for alias in node.names
                       if _is_module(f"{module}.{alias.name}")]
            if len(modules) < len(node.names):
                modules.append(module)
            found += [(m, node.lineno) for m in modules]
    return found


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in RANK) else None


def upward_imports(modules: dict[str, Path]) -> list[str]:
    wrong = []
    for name, path in modules.items():
        mine = _subpackage(name)
        if mine is None:
            continue
        for target, line in _imports(path):
            theirs = _subpackage(target) if target.startswith("keras_cut.") else None
            if theirs is None or theirs == mine:
                continue
            if RANK[theirs] >= RANK[mine]:
                why = "a layer above" if RANK[theirs] > RANK[mine] else "a sibling"
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target} "
                             f"({why}: {theirs} is not below {mine})")
    return wrong


def cycles(modules: dict[str, Path]) -> list[list[str]]:
    """Circles of module imports (function-level imports count)."""
    edges = {name: sorted({t for t, _ in _imports(path) if t in modules and t != name})
             for name, path in modules.items()}
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in edges:
        if node not in state:
            visit(node)
    return found


def test_every_subpackage_has_a_layer():
    subpackages = {p.name for p in PACKAGE.iterdir()
                   if p.is_dir() and (p / "__init__.py").exists()}
    assert subpackages == set(RANK), "add the new subpackage to LAYERS (and docs/architecture.md)"
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py"], f"modules outside a layer: {loose}"


def test_imports_run_down_the_layers():
    assert upward_imports(_modules()) == []


def test_no_import_cycles():
    assert cycles(_modules()) == []


def test_the_library_never_imports_the_cli_toolkit():
    library = {n: p for n, p in _modules().items()
               if _subpackage(n) not in (None, "present", "cli")}
    wrong = [f"{p.relative_to(PACKAGE.parent)}:{line} imports {t}"
             for n, p in library.items() for t, line in _imports(p)
             if t.split(".")[0] in CLI_ONLY]
    assert wrong == []


FRAMEWORKS = ("tensorflow", "keras", "tf_keras", "keras_hub", "ai_edge_litert", "onnxruntime",
              "openvino", "tf2onnx", "onnx")


def framework_imports(modules: dict[str, Path]) -> list[str]:
    return [f"{p.relative_to(PACKAGE.parent)}:{line} imports {t}"
            for n, p in modules.items() if _subpackage(n) != "backend"
            for t, line in _imports(p) if t.split(".")[0] in FRAMEWORKS]


def test_only_the_backend_imports_frameworks():
    assert framework_imports(_modules()) == []


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """A copy of the package with one bad import written into it."""
    copy = tmp_path / "keras_cut"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("assets", "__pycache__"))
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", copy)
    return copy


def _plant(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n\ndef _planted():\n    {line}\n")


def test_an_upward_import_is_named(planted):
    _plant(planted / "file" / "modelfile.py", "from keras_cut.cut.plan import plan_cut")
    wrong = upward_imports(_modules())
    assert len(wrong) == 1
    assert "file/modelfile.py" in wrong[0] and "keras_cut.cut.plan" in wrong[0]
    assert "cut is not below file" in wrong[0]


def test_a_sibling_import_is_named(planted):
    _plant(planted / "diff" / "diffing.py", "from keras_cut.draw import drawing")
    wrong = upward_imports(_modules())
    assert len(wrong) == 1 and "a sibling" in wrong[0] and "keras_cut.draw.drawing" in wrong[0]


def test_a_cycle_is_named(planted):
    _plant(planted / "core" / "errors.py", "from keras_cut.core import writing")
    found = cycles(_modules())
    assert found and {"keras_cut.core.errors", "keras_cut.core.writing"} <= set(found[0])


def test_a_framework_import_outside_the_backend_is_named(planted):
    _plant(planted / "model" / "graph.py", "import tensorflow as tf")
    wrong = framework_imports(_modules())
    assert len(wrong) == 1 and wrong[0].startswith("keras_cut/model/graph.py:")
