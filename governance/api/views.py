"""Authentication endpoints: thin adapters over ``governance.authentication`` and the token services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import services
from governance.api import schema as _schema  # noqa: F401  (registers the tokenAuth security scheme)
from governance.api import serializers as s
from governance.authentication import TokenAuthentication, login_with_password

_NOT_AUTHENTICATED = OpenApiResponse(s.ErrorSerializer, description="Not authenticated, or the token is invalid.")


class TokenView(APIView):
    """``POST``: exchange a username and password for an API token. ``DELETE``: revoke the token in use."""

    # JSON only: a browser cannot send it cross-site without a CORS preflight, so another
    # site cannot log a visitor's browser in (form posts are "simple" requests).
    parser_classes = [JSONParser]

    def get_authenticators(self) -> list[Any]:
        # POST reads credentials from the body only, so a stale token sent along cannot turn
        # a login into a 401; DELETE revokes the token that authenticated it, so only a token will do.
        if self.request is not None and self.request.method == "DELETE":
            return [TokenAuthentication()]
        return []

    def get_permissions(self) -> list[BasePermission]:
        if self.request is not None and self.request.method == "DELETE":
            return [IsAuthenticated()]
        return [AllowAny()]

    @extend_schema(
        operation_id="auth_token_obtain",
        summary="Get an API token",
        description=(
            "Checks the username and password like the admin login: a failure is audited "
            "(`auth.login_failed`) and counts towards the lock-out, which the admin login shares. "
            "The failure that reaches `GOVERNANCE_LOGIN_FAILURE_LIMIT` and every attempt during "
            "the cool-off answer 429. A success is audited (`auth.login_succeeded`, "
            "`auth.token_issued` with the token's prefix and expiry, never the token)."
        ),
        request=s.TokenObtainSerializer,
        responses={
            200: s.TokenOutputSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="A field is missing or invalid (named)."),
            401: OpenApiResponse(s.ErrorSerializer, description="Wrong username or password."),
            429: OpenApiResponse(s.LockedOutSerializer, description="Locked out after too many failed logins."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = s.TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = login_with_password(request=request, **serializer.validated_data)
        instance, token = services.token_issue(actor=user, user=user)
        return Response(s.TokenOutputSerializer({"token": token, "expires": instance.expiry}).data)

    @extend_schema(
        operation_id="auth_token_revoke",
        summary="Revoke the token in use",
        description="Revokes the token that authenticates this request (`Authorization: Token <token>`).",
        request=None,
        responses={204: OpenApiResponse(description="Revoked."), 401: _NOT_AUTHENTICATED},
    )
    def delete(self, request: Request) -> Response:
        services.token_revoke(actor=request.user, tokens=[request.auth], reason="revoked by its holder")
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokensView(APIView):
    """``DELETE``: revoke every API token of the caller (for a lost or leaked token)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_tokens_revoke_all",
        summary="Revoke all my tokens",
        description="Works with a token or an admin session (with its CSRF token), so a lost token can be revoked.",
        request=None,
        responses={200: s.TokensRevokedSerializer, 401: _NOT_AUTHENTICATED},
    )
    def delete(self, request: Request) -> Response:
        revoked = services.token_revoke_all(actor=request.user, user=request.user, reason="all revoked by their holder")
        return Response(s.TokensRevokedSerializer({"revoked": revoked}).data)
