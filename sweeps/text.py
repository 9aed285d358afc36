"""How numbers are written in every table routerbench prints or publishes: one rule for missing
values and intervals, shared by the report, the plots and the leaderboard."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def missing(v: Any) -> bool:
    """True for a value that is not there: ``None``, ``pd.NA`` or NaN."""
    if v is None or v is pd.NA:
        return True
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def num(v: Any, digits: int = 4, blank: str = "-", *, sign: bool = False) -> str:
    """``v`` with ``digits`` decimals (``sign``: always with its sign, as differences are
    written), or ``blank`` when it is missing.

    >>> num(0.123456), num(float("nan")), num(None, blank=""), num(0.5, 2, sign=True)
    ('0.1235', '-', '', '+0.50')
    """
    return blank if missing(v) else f"{float(v):{'+' if sign else ''}.{digits}f}"


def interval(
    x: Any, lo: Any, hi: Any, digits: int = 4, blank: str = "-", *, sign: bool = False
) -> str:
    """``x [lo, hi]``; ``x`` alone when either bound is missing; ``blank`` when ``x`` is.

    >>> interval(0.5, 0.4, 0.6), interval(0.5, float("nan"), 0.6), interval(None, 0, 1)
    ('0.5000 [0.4000, 0.6000]', '0.5000', '-')
    >>> interval(-0.01, -0.02, 0.005, 3, sign=True)
    '-0.010 [-0.020, +0.005]'
    """
    if missing(x):
        return blank
    if missing(lo) or missing(hi):
        return num(x, digits, sign=sign)
    return (
        f"{num(x, digits, sign=sign)} [{num(lo, digits, sign=sign)}, {num(hi, digits, sign=sign)}]"
    )


def bounds(lo: Any, hi: Any, digits: int = 4, blank: str = "") -> str:
    """``[lo, hi]``, or ``blank`` when either bound is missing.

    >>> bounds(0.1, 0.2), bounds(0.1, None)
    ('[0.1000, 0.2000]', '')
    """
    if missing(lo) or missing(hi):
        return blank
    return f"[{num(lo, digits)}, {num(hi, digits)}]"
