from __future__ import annotations

import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.Field):
    """A JSON object given either as an object (JSON bodies) or as a string (multipart forms)."""

    default_error_messages = {"invalid": "must be a JSON object", "parse": "is not valid JSON: {error}"}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as exc:
                self.fail("parse", error=str(exc))
        if not isinstance(data, dict):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value
