"""Import direction: engine, routers and sweeps never need ray or s3fs."""

from __future__ import annotations

import subprocess
import sys


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
