"""Filters that format report data for a reader; the data itself (report-data.json) keeps the exact values.

Load with ``{% load report_format %}`` in templates/reports/. Each filter returns its input unchanged
when it is not the kind of value it formats, so a template never fails on an unexpected value.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

register = template.Library()

# A number with 7 or more decimals (float noise: 0.00030000000000000003, 1.0000000000000002e-06), not
# part of a timestamp (21:09:21.427871) or a longer token.
_LONG_DECIMAL = re.compile(r"(?<![\w:.])(-?\d+\.\d{7,}(?:e[-+]?\d+)?)(?!\w|\.\w)")


def _parse_timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value
    if not isinstance(value, str) or len(value) < 19 or value[10] != "T":
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed


@register.filter
def utc(value: Any) -> Any:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM:SS`` in UTC (to the second: the audit seq orders events
    closer than that, and the data keeps the microseconds)."""
    parsed = _parse_timestamp(value)
    return value if parsed is None else parsed.strftime("%Y-%m-%d %H:%M:%S")


@register.filter
def utc_day(value: Any) -> Any:
    """Like ``utc``, but a timestamp at midnight exactly (the extent of daily data) as its date alone."""
    parsed = _parse_timestamp(value)
    if parsed is None:
        return value
    if (parsed.hour, parsed.minute, parsed.second, parsed.microsecond) == (0, 0, 0, 0):
        return parsed.strftime("%Y-%m-%d")
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def _short_number(number: float) -> str:
    # Four decimals above 1 in magnitude, four significant digits below (0.01384, not 0.0138).
    return f"{number:.4f}" if abs(number) >= 1 else f"{number:.4g}"


@register.filter
def figures(value: Any) -> Any:
    """Text (a rule's message) with every number of 7 or more decimals shortened to 4 digits."""
    if isinstance(value, float):
        return _short_number(value)
    if not isinstance(value, str):
        return value
    return _LONG_DECIMAL.sub(lambda match: _short_number(float(match.group(1))), value)


@register.filter
def amount(value: Any) -> Any:
    """A money amount (decimal string or number) with thousands separators and two decimals."""
    if value is None or value == "" or isinstance(value, bool):
        return value
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return value
    if not number.is_finite():
        return value
    return f"{number:,.2f}"


def _readable(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return figures(value) if len(repr(value).split(".")[-1]) >= 7 else repr(value)
    if isinstance(value, dict):
        return "; ".join(f"{key} {_readable(item)}" for key, item in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(_readable(item) for item in value) or "none"
    return str(value)


@register.filter
def parameter(value: Any) -> Any:
    """A policy parameter stored as JSON text (``null``, ``"cusum"``, ``{"pilot": 0.05}``) in words:
    ``not set``, ``cusum``, ``pilot 0.05; shadow 0.1``."""
    if not isinstance(value, str):
        return _readable(value)
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return _readable(decoded)


@register.filter
def words(value: Any) -> Any:
    """A stored choice value (``rolled_back``, ``require_approval``) as words: ``rolled back``."""
    return value.replace("_", " ") if isinstance(value, str) else value
