"""Per-request (or per-job) context that audit events carry: request id and client address.

A contextvar rather than thread-locals so that it is correct under ASGI and in Celery
workers alike; set by ``RequestContextMiddleware`` and by ``audit_context`` in jobs.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    client_address: str | None = None
    # Read lazily: the API authenticates inside the view, after the middleware has run.
    user_getter: Callable[[], Any] | None = None


_EMPTY = RequestContext()
_current: ContextVar[RequestContext | None] = ContextVar("audit_request_context", default=None)


def current() -> RequestContext:
    return _current.get() or _EMPTY


def current_user() -> Any:
    """The request's user, if there is a request; for events that Django itself triggers."""
    getter = current().user_getter
    return getter() if getter is not None else None


@contextlib.contextmanager
def audit_context(
    *,
    request_id: str | None = None,
    client_address: str | None = None,
    user_getter: Callable[[], Any] | None = None,
) -> Iterator[RequestContext]:
    ctx = RequestContext(
        request_id=request_id or uuid.uuid4().hex, client_address=client_address, user_getter=user_getter
    )
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
