"""Every docstring example in the package runs and gives what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("engine", "routers", "sweeps", "cluster")


def modules() -> list[str]:
    """Every module of the four packages, sub-packages included."""
    names = []
    for pkg in PACKAGES:
        root = importlib.import_module(f"routerbench.{pkg}")
        names.append(root.__name__)
        walk = pkgutil.walk_packages(root.__path__, f"{root.__name__}.")
        names += [m.name for m in walk if not m.name.endswith(".__main__")]  # it runs the CLI
    return sorted(names)


class TestDocstringExamples:
    def test_every_package_has_modules(self) -> None:
        """The walk finds the modules (an empty list would make the next test vacuous)."""
        found = modules()
        assert "routerbench.engine.errors" in found
        assert "routerbench.cluster.cli.options" in found
        assert len(found) > 50

    @pytest.mark.parametrize("name", modules())
    def test_examples_hold(self, name: str) -> None:
        """The module's doctests pass."""
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert result.failed == 0
