"""The audited-change scope: the one way governed rows may be written.

Services run inside ``audited_change()`` (a transaction). While it is open, every governed
row written is noted, and so is every object an audit event is recorded for; when the
outermost scope ends, a written row without an event of its own makes the whole change
roll back. So a service that forgets its event fails loudly instead of leaving a silent
gap in the log. Writes to governed rows outside any scope are handled by
``audit.governed``: refused, or recorded there and then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import transaction


class UnauditedWriteError(Exception):
    """A governed row was, or would have been, written without an audit event."""


ObjectKey = tuple[str, str]


@dataclass
class _ChangeState:
    written: set[ObjectKey] = field(default_factory=set)
    audited: set[ObjectKey] = field(default_factory=set)

    def raise_if_unaudited(self) -> None:
        missing = sorted(self.written - self.audited)
        if missing:
            listed = ", ".join(f"{label}:{pk}" for label, pk in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise UnauditedWriteError(
                f"rows written without an audit event: {listed}{more}; the change was rolled back"
            )


_state: ContextVar[_ChangeState | None] = ContextVar("audit_change_state", default=None)


def in_audited_change() -> bool:
    return _state.get() is not None


@contextlib.contextmanager
def audited_change() -> Iterator[None]:
    """A transaction in which governed rows may be written, each with its audit event.

    Usable as a decorator on services. Nested scopes join the outermost one, which makes
    the check when it ends.
    """
    if _state.get() is not None:
        with transaction.atomic():
            yield
        return
    state = _ChangeState()
    token = _state.set(state)
    try:
        with transaction.atomic():
            yield
            state.raise_if_unaudited()
    finally:
        _state.reset(token)


def note_written(label: str, pk: object) -> None:
    state = _state.get()
    if state is not None:
        state.written.add((label, str(pk)))


def note_audited(label: str, pk: object) -> None:
    state = _state.get()
    if state is not None and label:
        state.audited.add((label, str(pk)))
