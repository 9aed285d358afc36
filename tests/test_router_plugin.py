"""A router defined outside the package: registering it is all it takes to appear in
``routerbench routers``, pass the contract suite, be validated in specs and run in a sweep."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
from numpy.typing import ArrayLike
from router_contract import RouterContract

from routerbench.cluster.cli import main
from routerbench.engine import synth
from routerbench.engine.data import RoutingData
from routerbench.engine.errors import RouterError, SpecError
from routerbench.engine.rng import keyed_uniforms
from routerbench.engine.stepsums import knob_problem
from routerbench.routers.base import REGISTRY, Fitted, Router, load_all, register
from routerbench.routers.params import SEED, Constraint, Interval, Model
from routerbench.sweeps.execute import plan, run_grid
from routerbench.sweeps.spec import parse


@dataclass(frozen=True)
class FittedToy(Fitted):
    """A prompt goes to ``strong`` when its seeded draw is below the share, else to ``cheap``."""

    strong: int
    cheap: int
    seed: int
    shares: int
    knob_name: str = "share"

    def score(self, data: RoutingData) -> np.ndarray:
        return keyed_uniforms(self.seed, data.keys())

    def decide(self, scores: np.ndarray, knobs: np.ndarray) -> np.ndarray:
        if problem := knob_problem(knobs, self.knob_name) or Toy.check_knobs(knobs):
            raise RouterError(problem)
        strong = scores[None, :] < np.asarray(knobs, dtype=np.float64)[:, None]
        return np.where(strong, self.strong, self.cheap).astype(np.int64)

    def default_knobs(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, self.shares)


@dataclass(frozen=True, kw_only=True)
class Toy(Router):
    """A router as a new file in routers/ would hold it, registered by the module fixture (not
    at import: other test modules list every registered router)."""

    strong: str = "gpt-4-1106-preview"
    shares: int = 5
    seed: int = 0
    knob = "share"
    constraints: ClassVar[dict[str, Constraint]] = {
        "strong": Model(),
        "shares": Interval(int, 2),
        "seed": SEED,
    }
    example: ClassVar[dict[str, Any]] = {"shares": 3}

    @classmethod
    def check_knobs(cls, knobs: ArrayLike) -> str | None:
        bad = [float(x) for x in np.atleast_1d(knobs) if not 0 <= x <= 1]
        return f"shares must be in [0, 1] (got {bad[0]})" if bad else None

    def fit(self, train: RoutingData) -> FittedToy:
        cheap = int(np.argmin(np.nanmean(train.cost, axis=0)))
        return FittedToy(train.model_index(self.strong), cheap, self.seed, self.shares)


@pytest.fixture(scope="module", autouse=True)
def toy() -> Iterator[type[Router]]:
    """``toy`` is registered (with ``register``, as a decorator would) for this module only."""
    yield register("toy")(Toy)
    del REGISTRY["toy"]


class TestRoutersListing:
    def test_toy_listed_with_knob_and_ranges(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``routerbench routers`` lists toy with its knob, types, defaults and ranges."""
        assert main(["routers"]) == 0
        lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("toy ")]
        assert lines == [
            "toy  knob share  strong: str = 'gpt-4-1106-preview' (a model of the data); "
            "shares: int = 5 (an integer >= 2); seed: int = 0 (an integer in [0, 2**32))"
        ]


def _router_class(name: str, **attrs: Any) -> type:
    """A dataclass subclassing Router with a fit and the given class attributes."""
    return dataclass(type(name, (Router,), {"fit": lambda self, train: None, **attrs}))


class TestRegister:
    @pytest.mark.parametrize(
        ("cls", "needle"),
        [
            (type("Plain", (), {"knob": ""}), r"must subclass routerbench\.routers\.base\.Router"),
            (_router_class("NoKnob"), "must be a dataclass with a class attribute knob"),
            (_router_class("Stray", knob="", constraints={"nope": SEED}), r"\['nope'\], not"),
        ],
    )
    def test_refuses_what_is_no_router(self, cls: type, needle: str) -> None:
        """A class that is no Router, has no knob or constrains no field of its own is refused
        in one line, and not registered."""
        with pytest.raises(TypeError, match=needle):
            register("test-bad")(cls)
        assert "test-bad" not in REGISTRY


class TestLoadAll:
    def test_new_module_in_the_package_is_found(self, tmp_path, monkeypatch) -> None:
        """A new file among the router modules (here a folder added to the package's path) is
        imported by load_all, so its router is registered, listed by nothing else."""
        import sys

        import routerbench.routers

        (tmp_path / "newfamily.py").write_text(
            "from dataclasses import dataclass\n"
            "from routerbench.routers.base import register\n"
            "from routerbench.routers.reference import SingleModel\n"
            "@register('newfamily')\n"
            "@dataclass(frozen=True, kw_only=True)\n"
            "class NewFamily(SingleModel):\n"
            "    knob = 'none yet'\n"
        )
        monkeypatch.setattr(
            routerbench.routers, "__path__", [*routerbench.routers.__path__, str(tmp_path)]
        )
        try:
            load_all()
            assert "newfamily" in REGISTRY and REGISTRY["newfamily"].knob == "none yet"
        finally:
            REGISTRY.pop("newfamily", None)
            sys.modules.pop("routerbench.routers.newfamily", None)


class TestToyContract(RouterContract):
    """The toy router passes the contract every built-in router passes."""

    @pytest.fixture
    def name(self) -> str:
        return "toy"


SPEC = {
    "data": {"synthetic_n": 1500, "families": ["mmlu", "hellaswag"]},
    "metrics": {"bootstrap": 0},
    "routers": [{"name": "toy", "grid": {"shares": [2, 3]}, "knobs": [0.0, 1.0]}],
}


class TestSpec:
    def test_accepted(self) -> None:
        """A spec naming toy parses, with its grid and knobs."""
        spec = parse(SPEC)
        assert spec.routers[0].name == "toy" and spec.routers[0].knobs == (0.0, 1.0)
        assert spec.routers[0].cells() == [{"shares": 2}, {"shares": 3}]

    def test_bad_knob_refused_by_check_knobs(self) -> None:
        """A knob value the toy refuses (its check_knobs) is a one-line SpecError."""
        doc = {"routers": [{"name": "toy", "knobs": [0.5, 1.5]}]}
        with pytest.raises(SpecError, match=r"routers\[0\]\.knobs': shares must be in \[0, 1\]"):
            parse(doc, source="s.toml")

    @pytest.mark.parametrize(
        ("params", "needle"),
        [
            ({"shares": 1}, "shares must be an integer >= 2 (got 1)"),
            ({"seed": -1}, "seed must be an integer in [0, 2**32) (got -1)"),
            ({"shares": 2.5}, "shares must be an integer (64-bit) (got 2.5)"),
        ],
    )
    def test_bad_param_refused_by_constraints(self, params: dict[str, Any], needle: str) -> None:
        """A hyperparameter outside its constraint (or type) is a one-line SpecError."""
        with pytest.raises(SpecError) as info:
            parse({"routers": [{"name": "toy", "params": params}]}, source="s.toml")
        msg = str(info.value)
        assert msg == f"s.toml: routers[0]: router 'toy': {needle}"

    def test_unknown_model_refused_with_the_data(self) -> None:
        """A strong model the data lacks is refused when the plan meets the data."""
        spec = parse({**SPEC, "routers": [{"name": "toy", "params": {"strong": "gpt-5"}}]})
        with pytest.raises(SpecError, match="strong 'gpt-5' is not a model of the data"):
            plan(spec, synth.generate(1500, 0))


class TestRun:
    def test_grid_gives_curves(self) -> None:
        """plan + run_grid give toy a curve per cell and family; at share 0 every test prompt
        goes to the cheapest model on train, at share 1 to the strong model."""
        spec = parse(SPEC)
        data = synth.generate(1500, 0)
        p = plan(spec, data)
        res = run_grid(spec, p, fail_fast=True)
        toy = res.points[res.points["router"] == "toy"]
        assert (toy["status"] == "ok").all() and len(toy) == 2 * 2 * 2  # shares, families, knobs
        curves = res.curves[res.curves["router"] == "toy"]
        assert len(curves) == 4 and set(curves["family"]) == {"mmlu", "hellaswag"}
        split = p.splits[0]
        strong = data.models.index("gpt-4-1106-preview")
        for fam in ("mmlu", "hellaswag"):
            train, test = split.train[fam], split.test[fam]
            cheap = int(np.argmin(np.nanmean(data.cost[train], axis=0)))
            rows = toy[toy["family"] == fam].sort_values("knob")
            want = [data.cost[test, cheap].mean()] * 2 + [data.cost[test, strong].mean()] * 2
            np.testing.assert_allclose(rows["cost_mean"], want, rtol=1e-12)
