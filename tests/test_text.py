"""The one rule for writing numbers, missing values and intervals (sweeps/text.py)."""

from __future__ import annotations

import doctest
import math

import pandas as pd
import pytest

from routerbench.sweeps import text
from routerbench.sweeps.text import bounds, interval, missing, num

MISSING = [None, pd.NA, float("nan"), math.nan]


class TestMissing:
    @pytest.mark.parametrize("v", MISSING)
    def test_missing_values(self, v: object) -> None:
        """None, pd.NA and NaN are missing."""
        assert missing(v)

    @pytest.mark.parametrize("v", [0, 0.0, -1.5, float("inf"), "label", True])
    def test_present_values(self, v: object) -> None:
        """Numbers (zero and infinity included) and strings are present."""
        assert not missing(v)


class TestInterval:
    @pytest.mark.parametrize("v", MISSING)
    def test_missing_estimate_is_blank(self, v: object) -> None:
        """A missing estimate gives the blank, whatever the bounds."""
        assert interval(v, 0.1, 0.2) == "-"
        assert interval(v, 0.1, 0.2, blank="") == ""

    @pytest.mark.parametrize("v", MISSING)
    def test_either_missing_bound_gives_the_estimate_alone(self, v: object) -> None:
        """One missing bound, low or high, drops the bracket (never a half interval)."""
        assert interval(0.5, v, 0.6) == interval(0.5, 0.4, v) == num(0.5) == "0.5000"

    def test_digits_apply_to_every_number(self) -> None:
        """The estimate and both bounds are written with the same decimals."""
        assert interval(1 / 3, 0.25, 0.5, 2) == "0.33 [0.25, 0.50]"
        assert bounds(0.25, 0.5, 3) == "[0.250, 0.500]"
        assert bounds(0.25, None) == ""

    def test_examples_hold(self) -> None:
        """The docstrings' examples run."""
        assert doctest.testmod(text).failed == 0
