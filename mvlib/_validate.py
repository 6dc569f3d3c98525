"""Parameter checks that name the parameter and its allowed range."""

from __future__ import annotations

import math


def check_range(name: str, value, low=None, high=None, *, integer: bool = False, why: str = ""):
    """Raise ValueError unless ``low <= value <= high`` (None: unbounded) and finite."""
    ok_type = (
        isinstance(value, int) and not isinstance(value, bool)
        if integer
        else (isinstance(value, (int, float)) and not isinstance(value, bool))
    )
    bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
    kind = "an integer" if integer else "a number"
    if (
        not ok_type
        or not math.isfinite(value)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        msg = f"{name} must be {kind} in {bounds}, got {value!r}"
        raise ValueError(msg + (f" ({why})" if why else ""))
