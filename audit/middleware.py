from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit.context import audit_context

# Accept a caller's request id only if it looks like one, so that it cannot inject text
# into the log.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestContextMiddleware:
    """Gives each request an id (or keeps a well-formed X-Request-ID) for its audit events."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else None
        with audit_context(
            request_id=request_id,
            client_address=request.META.get("REMOTE_ADDR"),
            user_getter=lambda: getattr(request, "user", None),
        ) as ctx:
            request.request_id = ctx.request_id  # type: ignore[attr-defined]
            response = self.get_response(request)
            response["X-Request-ID"] = ctx.request_id
            return response
