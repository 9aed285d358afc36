"""The router contract (tests/router_contract.py) over every built-in router."""

from __future__ import annotations

import pytest
from router_contract import RouterContract

from routerbench.routers.base import REGISTRY, load_all

load_all()
# Built-in routers only: a router a test module registers has its own contract class.
BUILT_IN = sorted(n for n, c in REGISTRY.items() if c.__module__.startswith("routerbench.routers."))


@pytest.fixture(params=BUILT_IN)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestRouterContract(RouterContract):
    """Every built-in router passes the contract."""
