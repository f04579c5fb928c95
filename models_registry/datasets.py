"""Dataset profiling and declarative cleansing/validation rules.

Rules are data (JSON), parsed strictly: an unknown key or a wrong type is refused with the
path of the offending entry. Validation never changes the stored file; cleansing is applied
to the frame that jobs read, and the validation result reports what it changed.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from django.core.exceptions import ValidationError

from governance.errors import InvalidDataset

_RULE_KEYS = {
    "required_columns",
    "not_null",
    "unique",
    "ranges",
    "monotonic_timestamps",
    "max_gap_days",
    "cleansing",
}
_CLEANSING_KEYS = {"drop_duplicate_rows", "drop_rows_with_null", "forward_fill", "sort_by_time"}
_EXAMPLES = 5


@dataclass(frozen=True)
class Range:
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Cleansing:
    drop_duplicate_rows: bool = False
    drop_rows_with_null: tuple[str, ...] = ()
    forward_fill: tuple[str, ...] = ()
    sort_by_time: bool = False


@dataclass(frozen=True)
class DatasetRules:
    required_columns: tuple[str, ...] = ()
    not_null: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    ranges: dict[str, Range] = field(default_factory=dict)
    monotonic_timestamps: bool = False
    max_gap_days: float | None = None
    cleansing: Cleansing = field(default_factory=Cleansing)


def _columns(value: Any, path: str, errors: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        errors.append(f"{path}: must be a list of column names")
        return ()
    return tuple(value)


def _bool(value: Any, path: str, errors: list[str]) -> bool:
    if not isinstance(value, bool):
        errors.append(f"{path}: must be true or false")
        return False
    return value


def _number(value: Any, path: str, errors: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.append(f"{path}: must be a finite number or null")
        return None
    return float(value)


def parse_rules(raw: Any) -> DatasetRules:
    """Parse a rules document, or raise ``ValidationError`` on ``rules`` listing every problem."""
    if raw is None or raw == {}:
        return DatasetRules()
    errors: list[str] = []
    if not isinstance(raw, dict):
        raise ValidationError({"rules": ["must be a JSON object"]})
    for key in sorted(set(raw) - _RULE_KEYS):
        errors.append(f"{key}: unknown rule (known: {', '.join(sorted(_RULE_KEYS))})")
    ranges: dict[str, Range] = {}
    raw_ranges = raw.get("ranges", {})
    if not isinstance(raw_ranges, dict):
        errors.append("ranges: must be an object of column -> {min, max}")
    else:
        for column, bounds in raw_ranges.items():
            if not isinstance(bounds, dict) or set(bounds) - {"min", "max"} or not bounds:
                errors.append(f"ranges.{column}: must be an object with min and/or max")
                continue
            low = _number(bounds.get("min"), f"ranges.{column}.min", errors)
            high = _number(bounds.get("max"), f"ranges.{column}.max", errors)
            if low is not None and high is not None and low > high:
                errors.append(f"ranges.{column}: min {low} is above max {high}")
            ranges[column] = Range(low, high)
    max_gap = _number(raw.get("max_gap_days"), "max_gap_days", errors)
    if max_gap is not None and max_gap <= 0:
        errors.append("max_gap_days: must be positive")
    cleansing = Cleansing()
    raw_cleansing = raw.get("cleansing", {})
    if not isinstance(raw_cleansing, dict):
        errors.append("cleansing: must be an object")
    else:
        for key in sorted(set(raw_cleansing) - _CLEANSING_KEYS):
            errors.append(f"cleansing.{key}: unknown step (known: {', '.join(sorted(_CLEANSING_KEYS))})")
        cleansing = Cleansing(
            drop_duplicate_rows=_bool(
                raw_cleansing.get("drop_duplicate_rows", False), "cleansing.drop_duplicate_rows", errors
            ),
            drop_rows_with_null=_columns(
                raw_cleansing.get("drop_rows_with_null", []), "cleansing.drop_rows_with_null", errors
            ),
            forward_fill=_columns(raw_cleansing.get("forward_fill", []), "cleansing.forward_fill", errors),
            sort_by_time=_bool(raw_cleansing.get("sort_by_time", False), "cleansing.sort_by_time", errors),
        )
    rules = DatasetRules(
        required_columns=_columns(raw.get("required_columns", []), "required_columns", errors),
        not_null=_columns(raw.get("not_null", []), "not_null", errors),
        unique=_columns(raw.get("unique", []), "unique", errors),
        ranges=ranges,
        monotonic_timestamps=_bool(raw.get("monotonic_timestamps", False), "monotonic_timestamps", errors),
        max_gap_days=max_gap,
        cleansing=cleansing,
    )
    if errors:
        raise ValidationError({"rules": errors})
    return rules


def read_csv(data: bytes) -> pd.DataFrame:
    """Parse CSV bytes, or raise ``InvalidDataset`` saying why."""
    if not data.strip():
        raise InvalidDataset("the dataset file is empty")
    if b"\x00" in data:  # Valid UTF-8 that pandas would read as a column of control characters.
        raise InvalidDataset("the dataset is a binary file (it contains NUL bytes), not CSV text")
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidDataset(f"the dataset is not readable CSV: {exc}") from exc
    if frame.columns.empty:
        raise InvalidDataset("the dataset has no columns")
    duplicated = [str(c) for c in frame.columns if str(c).endswith(".1") and str(c)[:-2] in frame.columns]
    if duplicated:
        raise InvalidDataset(f"the dataset repeats column names: {', '.join(duplicated)}")
    return frame


def parse_times(frame: pd.DataFrame, time_column: str) -> pd.Series:
    """The time column as UTC timestamps (NaT where a value does not parse)."""
    return pd.to_datetime(frame[time_column], utc=True, errors="coerce", format="mixed")


@dataclass(frozen=True)
class DatasetProfile:
    schema: list[dict[str, str]]
    row_count: int
    time_start: pd.Timestamp | None
    time_end: pd.Timestamp | None


def profile(frame: pd.DataFrame, time_column: str) -> DatasetProfile:
    """Columns with their types, the row count and the time range."""
    if time_column and time_column not in frame.columns:
        raise ValidationError(
            {
                "time_column": [
                    f"column {time_column!r} is not in the dataset (columns: {', '.join(map(str, frame.columns))})"
                ]
            }
        )
    schema = [{"name": str(c), "dtype": str(frame[c].dtype)} for c in frame.columns]
    start = end = None
    if time_column:
        times = parse_times(frame, time_column).dropna()
        if not times.empty:
            start, end = times.min(), times.max()
    return DatasetProfile(schema=schema, row_count=len(frame), time_start=start, time_end=end)


def apply_cleansing(frame: pd.DataFrame, rules: DatasetRules, time_column: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The frame after the declared cleansing steps, and how many rows or cells each step changed."""
    steps = rules.cleansing
    changes: dict[str, int] = {}
    result = frame
    if steps.drop_duplicate_rows:
        before = len(result)
        result = result.drop_duplicates()
        changes["duplicate_rows_dropped"] = before - len(result)
    if steps.sort_by_time and time_column in result.columns:
        # Unparseable times sort last (argsort's NaT handling differs between pandas 2 and 3).
        times = parse_times(result, time_column).reset_index(drop=True)
        order = times.sort_values(kind="stable", na_position="last").index.to_numpy()
        moved = int((order != range(len(order))).sum())
        result = result.iloc[order]
        changes["rows_reordered"] = moved
    present_ffill = [c for c in steps.forward_fill if c in result.columns]
    if present_ffill:
        missing = int(result[present_ffill].isna().sum().sum())
        result = result.copy()
        result[present_ffill] = result[present_ffill].ffill()
        changes["cells_forward_filled"] = missing - int(result[present_ffill].isna().sum().sum())
    present_drop = [c for c in steps.drop_rows_with_null if c in result.columns]
    if present_drop:
        before = len(result)
        result = result.dropna(subset=present_drop)
        changes["rows_with_null_dropped"] = before - len(result)
    return result.reset_index(drop=True), changes


def _check(
    name: str, column: str | None, failing: pd.Series | None, message: str, frame: pd.DataFrame
) -> dict[str, Any]:
    count = int(failing.sum()) if failing is not None else 0
    examples = [int(i) for i in frame.index[failing.to_numpy()][:_EXAMPLES]] if failing is not None and count else []
    return {
        "rule": name,
        "column": column,
        "passed": count == 0,
        "failing_rows": count,
        "example_rows": examples,
        "message": message if count else "ok",
    }


def evaluate(frame: pd.DataFrame, rules: DatasetRules, time_column: str) -> dict[str, Any]:
    """Run every declared rule on the cleansed frame; returns a JSON-safe report."""
    cleansed, changes = apply_cleansing(frame, rules, time_column)
    checks: list[dict[str, Any]] = []
    columns = set(map(str, cleansed.columns))
    for column in rules.required_columns:
        present = column in columns
        checks.append(
            {
                "rule": "required_columns",
                "column": column,
                "passed": present,
                "failing_rows": 0,
                "example_rows": [],
                "message": "ok" if present else f"required column {column!r} is missing",
            }
        )

    def missing_column(rule: str, column: str) -> dict[str, Any]:
        return {
            "rule": rule,
            "column": column,
            "passed": False,
            "failing_rows": 0,
            "example_rows": [],
            "message": f"column {column!r} named by the rule is not in the dataset",
        }

    for column in rules.not_null:
        if column not in columns:
            checks.append(missing_column("not_null", column))
            continue
        nulls = cleansed[column].isna()
        checks.append(_check("not_null", column, nulls, f"{int(nulls.sum())} missing values in {column!r}", cleansed))
    for column in rules.unique:
        if column not in columns:
            checks.append(missing_column("unique", column))
            continue
        dup = cleansed[column].duplicated(keep="first")
        checks.append(_check("unique", column, dup, f"{int(dup.sum())} duplicate values in {column!r}", cleansed))
    for column, bounds in rules.ranges.items():
        if column not in columns:
            checks.append(missing_column("ranges", column))
            continue
        values = pd.to_numeric(cleansed[column], errors="coerce")
        bad = values.isna() & cleansed[column].notna()
        if bounds.minimum is not None:
            bad |= values < bounds.minimum
        if bounds.maximum is not None:
            bad |= values > bounds.maximum
        low = "-inf" if bounds.minimum is None else bounds.minimum
        high = "inf" if bounds.maximum is None else bounds.maximum
        label = f"[{low}, {high}]"
        checks.append(_check("ranges", column, bad, f"{int(bad.sum())} values of {column!r} outside {label}", cleansed))
    if (rules.monotonic_timestamps or rules.max_gap_days is not None) and time_column:
        if time_column not in columns:
            checks.append(missing_column("timestamps", time_column))
        else:
            times = parse_times(cleansed, time_column)
            unparsed = times.isna() & cleansed[time_column].notna()
            checks.append(
                _check(
                    "timestamps_parse", time_column, unparsed, f"{int(unparsed.sum())} unparseable timestamps", cleansed
                )
            )
            if rules.monotonic_timestamps:
                not_increasing = times.diff() <= pd.Timedelta(0)
                checks.append(
                    _check(
                        "monotonic_timestamps",
                        time_column,
                        not_increasing.fillna(False),
                        f"{int(not_increasing.sum())} timestamps not strictly after the previous one",
                        cleansed,
                    )
                )
            if rules.max_gap_days is not None:
                gaps = times.diff()
                too_long = (gaps > pd.Timedelta(days=rules.max_gap_days)).fillna(False)
                widest = gaps.max()
                widest_days = widest / pd.Timedelta(days=1) if pd.notna(widest) else 0.0
                checks.append(
                    _check(
                        "max_gap_days",
                        time_column,
                        too_long,
                        f"{int(too_long.sum())} gaps longer than {rules.max_gap_days:g} days "
                        f"(widest {widest_days:g} days)",
                        cleansed,
                    )
                )
    return {
        "passed": all(c["passed"] for c in checks),
        "rows_checked": len(cleansed),
        "cleansing": changes,
        "checks": checks,
    }
