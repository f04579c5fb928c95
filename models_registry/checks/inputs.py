"""Input guards shared by the checks: each raises a ``CheckError`` naming the cause.

They run before any computation, so a check either returns a complete result or raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from models_registry.checks.errors import (
    FeatureMismatch,
    InvalidParameter,
    NaNAboveTolerance,
    NonMonotonicTimestamps,
    TestSetTooSmall,
)


def expected_features(model: Any) -> list[str] | None:
    """The feature names a fitted estimator (or the last step of a pipeline) was trained on, if it recorded them."""
    names = getattr(model, "feature_names_in_", None)
    if names is None and hasattr(model, "steps"):
        names = getattr(model.steps[0][1], "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def check_features(columns: Iterable[Any], expected: Sequence[str] | None) -> None:
    """Raise ``FeatureMismatch`` unless ``columns`` are exactly ``expected`` (order is not checked; callers reorder)."""
    if expected is None:
        return
    present = [str(c) for c in columns]
    missing = [c for c in expected if c not in set(present)]
    extra = [c for c in present if c not in set(expected)]
    if missing or extra:
        raise FeatureMismatch(missing=missing, extra=extra)


def select_features(frame: pd.DataFrame, expected: Sequence[str] | None) -> pd.DataFrame:
    """The frame's columns in the model's order, after ``check_features``."""
    if not isinstance(frame, pd.DataFrame):
        if expected is not None and np.ndim(frame) == 2 and np.shape(frame)[1] != len(expected):
            raise FeatureMismatch(missing=[f"{len(expected)} columns expected"], extra=[f"{np.shape(frame)[1]} given"])
        return frame
    check_features(frame.columns, expected)
    return frame if expected is None else frame[list(expected)]


def check_min_rows(rows: int, minimum: int, what: str = "the test set") -> None:
    if rows < minimum:
        raise TestSetTooSmall(what=what, rows=int(rows), minimum=int(minimum))


def check_nan_fraction(frame: pd.DataFrame | pd.Series, tolerance: float = 0.0, what: str = "the dataset") -> None:
    """Raise ``NaNAboveTolerance`` naming every column whose fraction of missing values exceeds ``tolerance``."""
    if not 0.0 <= tolerance <= 1.0:
        raise InvalidParameter(f"the NaN tolerance must be between 0 and 1, not {tolerance}")
    data = frame.to_frame() if isinstance(frame, pd.Series) else frame
    if len(data) == 0:
        return
    fractions = data.isna().mean()
    above = fractions[fractions > tolerance]
    if not above.empty:
        raise NaNAboveTolerance(fractions={str(c): float(f) for c, f in above.items()}, tolerance=tolerance, what=what)


def check_monotonic(times: pd.Index | pd.Series | Sequence[Any], what: str = "the timestamps") -> None:
    """Raise ``NonMonotonicTimestamps`` at the first position not strictly after its predecessor."""
    values = pd.Index(times)
    if len(values) < 2 or (values.is_monotonic_increasing and values.is_unique):
        return
    arr = values.to_numpy()
    try:
        bad = np.flatnonzero(~(arr[1:] > arr[:-1]))
    except TypeError:  # mixed types: compare pairwise
        bad = np.array([i for i in range(len(arr) - 1) if not arr[i + 1] > arr[i]])
    position = int(bad[0]) + 1
    raise NonMonotonicTimestamps(position=position, value=values[position], previous=values[position - 1], what=what)
