"""The JSON column of audit snapshots: stored as its text (docs/decisions/0015)."""

from __future__ import annotations

import functools
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.fields.json import KeyTransform


class _JsonbKeyTransform(KeyTransform):
    """``field__key`` on a PostgreSQL ``json`` column, compared as ``jsonb``.

    ``json`` has no equality or containment operators; a cast of the column makes the
    lookups that JSONField offers on ``jsonb`` work unchanged.
    """

    def preprocess_lhs(self, compiler: Any, connection: BaseDatabaseWrapper) -> tuple[str, Any, list[str]]:
        lhs, params, key_transforms = super().preprocess_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            lhs = f"({lhs})::jsonb"
        return lhs, params, key_transforms


class _JsonbKeyTransformFactory:
    def __init__(self, key_name: str) -> None:
        self.key_name = key_name

    def __call__(self, *args: Any, **kwargs: Any) -> _JsonbKeyTransform:
        return _JsonbKeyTransform(self.key_name, *args, **kwargs)


@functools.cache
def _jsonb_lookup(lookup: type) -> type:
    """``lookup`` with its left-hand side cast to ``jsonb`` on PostgreSQL."""

    def process_lhs(self: Any, compiler: Any, connection: BaseDatabaseWrapper, lhs: Any = None) -> tuple[str, Any]:
        sql, params = lookup.process_lhs(self, compiler, connection, lhs)
        if connection.vendor == "postgresql":
            sql = f"({sql})::jsonb"
        return sql, params

    return type(f"Jsonb{lookup.__name__}", (lookup,), {"process_lhs": process_lhs})


class CanonicalJSONField(models.JSONField):
    """A JSONField whose stored text is kept exactly as written.

    On PostgreSQL the column is ``json`` (the text as written, validated) instead of
    ``jsonb`` (a parsed binary form whose text output is not RFC 8785): the audit writer
    stores each snapshot's RFC 8785 text, so the verifier can let the server compare the
    columns with the event's canonical text as text, without parsing any JSON (decision
    0015). Other databases store JSON as text already. Values read back as JSONField's;
    key lookups (``after__rule="..."``) and the field's own lookups cast to ``jsonb``.
    """

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        # psycopg decodes a ``json`` column itself (with json.loads, as JSONField would).
        if value is not None and not isinstance(value, str):
            return value
        return super().from_db_value(value, expression, connection)

    def get_db_prep_save(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        """A saved value is stored as its RFC 8785 text, whichever code saves it."""
        if value is None or hasattr(value, "as_sql"):
            return super().get_db_prep_save(value, connection)
        from audit import canonical

        try:
            text = canonical.dumps(value).decode("utf-8")
        except (TypeError, ValueError):
            return super().get_db_prep_save(value, connection)  # JSONField's own error or form
        if connection.vendor == "postgresql":
            from psycopg.types.json import Json

            # Json, not JSONField's Jsonb: the column is ``json``, and takes the text as is.
            return Json(value, dumps=lambda _: text)
        return text

    def get_transform(self, name: str) -> Any:
        transform = models.Field.get_transform(self, name)
        if transform:
            return transform
        return _JsonbKeyTransformFactory(name)

    def get_lookup(self, lookup_name: str) -> Any:
        lookup = super().get_lookup(lookup_name)
        if lookup is None or lookup_name == "isnull":
            return lookup
        return _jsonb_lookup(lookup)
