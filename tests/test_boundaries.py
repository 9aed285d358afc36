"""Import direction: engine <- routers <- sweeps <- cluster; no ray or s3fs below cluster."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path


class TestImportBoundaries:
    def test_core_imports_without_ray_and_s3fs(self) -> None:
        """With ray and s3fs blocked, every engine/routers/sweeps module imports."""
        code = """
import sys, pkgutil, importlib
sys.modules['ray'] = None
sys.modules['s3fs'] = None
import routerbench.engine, routerbench.routers, routerbench.sweeps
for pkg in (routerbench.engine, routerbench.routers, routerbench.sweeps):
    for m in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(pkg.__name__ + '.' + m.name)
print('ok')
"""
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "ok"


LAYERS = ("engine", "routers", "sweeps", "cluster")  # each may import only those before it
ROOT = Path(__file__).resolve().parent.parent


def imported_layers(source: str) -> set[str]:
    """The routerbench layers a module's source imports, at top level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.add("relative")  # not allowed: every import names its layer
        elif isinstance(node, ast.ImportFrom) and node.module == "routerbench":
            names = [f"routerbench.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "routerbench" and len(parts) > 1:
                found.add(parts[1])
    return found


class TestLayering:
    def test_no_layer_imports_a_later_one(self) -> None:
        """engine <- routers <- sweeps <- cluster: no module imports from a layer after its own,
        not even inside a function, and no import is relative (each names its layer)."""
        wrong = []
        for i, layer in enumerate(LAYERS):
            files = sorted((ROOT / layer).rglob("*.py"))
            assert files, f"no modules under {layer}/"
            for f in files:
                later = imported_layers(f.read_text()) & {*LAYERS[i + 1 :], "relative"}
                wrong += [f"{f.relative_to(ROOT)} imports routerbench.{x}" for x in sorted(later)]
        assert wrong == []

    def test_finds_function_level_imports(self) -> None:
        """The check sees imports inside functions, ``from routerbench import x`` and relative
        imports."""
        src = "import os\n\ndef f():\n    from routerbench.cluster.cli import main\n"
        assert imported_layers(src) == {"cluster"}
        assert imported_layers("import routerbench.sweeps.spec as s\n") == {"sweeps"}
        assert imported_layers("from routerbench import cluster\n") == {"cluster"}
        assert imported_layers("from . import x\n") == {"relative"}
