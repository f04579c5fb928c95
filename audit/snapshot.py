"""JSON-safe snapshots of model instances for the before/after of audit events."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models.fields.files import FieldFile

# Numbers beyond this magnitude are kept as strings: RFC 8785 (the audit log's canonical
# form) refuses integers it cannot represent exactly, and PostgreSQL's jsonb would give
# large floats back as integers, changing the canonical bytes.
_EXACT_LIMIT = 2**53


# PostgreSQL's jsonb cannot hold U+0000; it is recorded as the visible text "\\u0000" on
# every backend, so that the canonical bytes are the same everywhere.
_NUL = "\x00"


def _text(value: str) -> str:
    return value.replace(_NUL, "\\u0000") if _NUL in value else value


def json_safe(value: Any) -> Any:
    """Convert a field value to JSON without losing precision (Decimals become strings)."""
    kind = type(value)
    # The common types first, by exact type: every event converts two snapshots.
    if kind is str:
        return value.replace(_NUL, "\\u0000") if _NUL in value else value
    if value is None or kind is bool:
        return value
    if kind is dict:
        return {(k if type(k) is str and _NUL not in k else _text(str(k))): json_safe(v) for k, v in value.items()}
    if kind is int:
        return value if -_EXACT_LIMIT < value < _EXACT_LIMIT else str(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return value if abs(value) < _EXACT_LIMIT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) and abs(value) < _EXACT_LIMIT else repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, FieldFile):
        return value.name or None
    if isinstance(value, dict):
        return {_text(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return str(value)


def snapshot(instance: models.Model) -> dict[str, Any]:
    """Concrete field values of ``instance``; foreign keys by primary key."""
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        data[field.attname] = json_safe(getattr(instance, field.attname))
    return data


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    """Fields whose value changed, as ``{field: [old, new]}``."""
    before = before or {}
    after = after or {}
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }
