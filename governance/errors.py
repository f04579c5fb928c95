"""Domain errors raised by services and translated to HTTP by one handler.

Services raise these (or Django's ``ValidationError`` for per-field problems); views,
admin and commands never decide status codes or messages themselves.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the domain refuses. ``status`` is the HTTP status the API answers with."""

    status = 400
    code = "invalid"

    def __init__(
        self, message: str, *, detail: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}
        # HTTP headers the answer needs (a 401's challenge, a 429's Retry-After).
        self.headers = headers or {}

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.message, **self.detail}


class InvalidTransition(DomainError):
    status = 409
    code = "invalid_transition"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


class UnsafeArtifact(DomainError):
    status = 400
    code = "unsafe_artifact"


class InvalidArtifact(DomainError):
    status = 400
    code = "invalid_artifact"


class InvalidDataset(DomainError):
    status = 400
    code = "invalid_dataset"


class NotPermitted(DomainError):
    status = 403
    code = "permission_denied"


class InvalidCredentials(DomainError):
    """Wrong username or password (said the same way for both, so accounts cannot be probed)."""

    status = 401
    code = "invalid_credentials"

    def __init__(self, message: str = "wrong username or password", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Token"})
        super().__init__(message, **kwargs)


class LockedOut(DomainError):
    """Too many failed logins: further attempts are refused until the cool-off ends."""

    status = 429
    code = "locked_out"


class PolicyDenied(DomainError):
    """The policies in force deny the step; ``detail`` carries the decision id and the rules'
    messages and references."""

    status = 409
    code = "policy_denied"


class SignOffRequired(DomainError):
    """The policies in force want approvals for this transition: it happens only through a
    sign-off request (``detail`` names the approvals needed)."""

    status = 409
    code = "signoff_required"


class ServiceUnavailable(DomainError):
    """A dependency the request needs (the job queue's broker) cannot be reached; nothing
    half-done was kept. The client may try again later."""

    status = 503
    code = "service_unavailable"
