"""JSON-safe conversion: results are stored in a JSONField and read by the policies."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def safe_float(value: Any) -> float | None:
    """A Python float, or None when the value is NaN or infinite (the caller records why)."""
    if value is None:
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def jsonable(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers to plain JSON types; NaN and infinities become None."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return safe_float(value)
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | pd.Series | pd.Index):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


def with_reasons(values: dict[str, Any], reasons: dict[str, str]) -> dict[str, Any]:
    """``values`` made JSON-safe, plus ``undefined``: metric -> why it is None.

    A metric that came out NaN or infinite without an explicit reason gets a generic one, so
    no None that replaced a number is unexplained.
    """
    out = jsonable(values)
    undefined = dict(reasons)
    for key, value in values.items():
        if isinstance(value, float | np.floating) and not math.isfinite(value) and key not in undefined:
            undefined[key] = "not a finite number"
    out["undefined"] = undefined
    return out
