"""OpenAPI description of the API's token authentication (drf-spectacular extension)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent


class TokenScheme(OpenApiAuthenticationExtension):
    """Replaces drf-spectacular's own knox extension (``knoxApiToken``) with a name and text
    that say how to get a token rather than which library issues it."""

    target_class = "knox.auth.TokenAuthentication"
    match_subclasses = True  # also governance.authentication.TokenAuthentication
    name = "tokenAuth"
    priority = 1

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "Send `Authorization: Token <token>`. Get a token with `POST /api/auth/token/` "
                '(`{"username": ..., "password": ...}`); it expires (see `expires`) and is never '
                "refreshed. `DELETE /api/auth/token/` revokes it."
            ),
        }


class NamedChoiceFieldExtension(OpenApiSerializerFieldExtension):
    """Writes a ``NamedChoiceField``'s values as the enum component it names, once."""

    target_class = "governance.api.signoff_serializers.NamedChoiceField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        field = self.target
        component = ResolvedComponent(
            name=field.enum_name,
            type=ResolvedComponent.SCHEMA,
            object=field.enum_name,
            schema={"type": "string", "enum": [str(value) for value in field.choices]},
        )
        auto_schema.registry.register_on_missing(component)
        return component.ref
