"""Errors of the risk checks: each names its cause, so a job can store the message as is.

Every check validates its inputs before computing anything and raises one of these; no
check returns a partial result. They are ``ValueError`` subclasses so callers that only
know "bad input" can catch that, and carry a JSON-safe ``detail`` for the job's record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class CheckError(ValueError):
    """Bad input to a check. ``code`` is stable (for storage and policies); ``detail`` is JSON-safe."""

    code = "invalid_input"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.detail}


def _names(values: Sequence[Any], limit: int = 20) -> str:
    shown = ", ".join(map(str, list(values)[:limit]))
    return shown + (f" (and {len(values) - limit} more)" if len(values) > limit else "")


class FeatureMismatch(CheckError):
    """The model's expected features are not the dataset's columns."""

    code = "feature_mismatch"

    def __init__(self, *, missing: Sequence[str], extra: Sequence[str]) -> None:
        parts = []
        if missing:
            parts.append(f"missing from the dataset: {_names(missing)}")
        if extra:
            parts.append(f"not expected by the model: {_names(extra)}")
        super().__init__(
            "the model's features do not match the dataset (" + "; ".join(parts) + ")",
            missing=list(map(str, missing)),
            extra=list(map(str, extra)),
        )


class TestSetTooSmall(CheckError):
    """Fewer rows (or classes, or periods) than the check needs."""

    __test__ = False  # not a pytest test class despite the name
    code = "test_set_too_small"

    def __init__(self, *, what: str, rows: int, minimum: int) -> None:
        super().__init__(
            f"{what} has {rows} rows; at least {minimum} are needed", what=what, rows=rows, minimum=minimum
        )


class NaNAboveTolerance(CheckError):
    """Missing values beyond the declared tolerance, per column."""

    code = "nan_above_tolerance"

    def __init__(self, *, fractions: dict[str, float], tolerance: float, what: str = "the dataset") -> None:
        listed = ", ".join(f"{c} ({f:.2%})" for c, f in fractions.items())
        super().__init__(
            f"{what} has missing values above the tolerance of {tolerance:.2%} in: {listed}",
            what=what,
            columns={str(c): float(f) for c, f in fractions.items()},
            tolerance=float(tolerance),
        )


class NonMonotonicTimestamps(CheckError):
    """Timestamps that are not strictly increasing; names the first offending position and value."""

    code = "non_monotonic_timestamps"

    def __init__(self, *, position: int, value: Any, previous: Any, what: str = "the timestamps") -> None:
        super().__init__(
            f"{what} are not strictly increasing: position {position} ({value}) is not after position "
            f"{position - 1} ({previous})",
            what=what,
            position=int(position),
            value=str(value),
            previous=str(previous),
        )


class InvalidParameter(CheckError):
    """A parameter outside its domain (a negative cost, an odd number of partitions...)."""

    code = "invalid_parameter"


class InvalidValues(CheckError):
    """Values outside their domain (a signal above 1, a non-positive price, infinities...)."""

    code = "invalid_values"
