"""Per-request (or per-job) context that audit events carry: request id and client address.

A contextvar rather than thread-locals so that it is correct under ASGI and in Celery
workers alike; set by ``RequestContextMiddleware`` and by ``audit_context`` in jobs.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    client_address: str | None = None


_EMPTY = RequestContext()
_current: ContextVar[RequestContext | None] = ContextVar("audit_request_context", default=None)


def current() -> RequestContext:
    return _current.get() or _EMPTY


@contextlib.contextmanager
def audit_context(*, request_id: str | None = None, client_address: str | None = None) -> Iterator[RequestContext]:
    ctx = RequestContext(request_id=request_id or uuid.uuid4().hex, client_address=client_address)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
