"""One translation of domain errors into HTTP responses for the whole API."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from governance.errors import DomainError


def _validation_detail(exc: DjangoValidationError) -> Any:
    if hasattr(exc, "error_dict"):
        return {field: [str(m) for e in errors for m in e.messages] for field, errors in exc.error_dict.items()}
    return {"non_field_errors": exc.messages}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status, headers=exc.headers or None)
    if isinstance(exc, DjangoValidationError):
        return Response(_validation_detail(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response = drf_exception_handler(exc, context)
        if response is not None:
            response.status_code = status.HTTP_401_UNAUTHORIZED
            # RFC 9110: a 401 names a scheme. The API's is Token (views whose first authenticator
            # has no scheme of its own, e.g. session-only, get it too).
            response["WWW-Authenticate"] = response.get("WWW-Authenticate", "Token")
        return response
    return drf_exception_handler(exc, context)
