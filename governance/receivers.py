"""Logins, successful and failed, and login lock-outs are audit events.

Django's own ``update_last_login`` receiver is replaced by ``services.login_succeeded``,
which stamps ``last_login`` and records the login in one transaction. The admin login and
the API token endpoint both send these signals, so each login or failure is recorded once,
wherever it happened.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in, user_login_failed


def _on_login(sender: Any, request: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
    from governance.services import login_succeeded

    login_succeeded(user=user)


def _on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    from governance.authentication import refused_by_lockout
    from governance.services import login_failed

    username = credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username") or ""
    login_failed(username=str(username), locked_out=request is not None and refused_by_lockout(request))


def _on_locked_out(sender: Any, request: Any, username: str | None, ip_address: str | None, **kwargs: Any) -> None:
    from governance.authentication import cool_off, refused_by_lockout
    from governance.services import login_locked_out

    # django-axes sends this signal for the failure that starts a lock-out and again for each
    # attempt refused during it; those are auth.login_failed events with locked_out already.
    if request is not None and refused_by_lockout(request):
        return
    login_locked_out(
        username=str(username or ""),
        client_address=ip_address,
        failures=getattr(request, "axes_failures_since_start", None),
        cool_off=cool_off(request),
    )


def connect() -> None:
    from axes import signals as axes_signals

    user_logged_in.disconnect(dispatch_uid="update_last_login")
    user_logged_in.connect(_on_login, dispatch_uid="governance.login_succeeded")
    # django-axes' receiver (connected when the admin autodiscovery imported axes) is moved
    # after ours, so that a failure's event precedes the lock-out event it may trigger.
    user_login_failed.disconnect(axes_signals.handle_user_login_failed)
    user_login_failed.connect(_on_login_failed, dispatch_uid="governance.login_failed")
    user_login_failed.connect(axes_signals.handle_user_login_failed)
    axes_signals.user_locked_out.connect(_on_locked_out, dispatch_uid="governance.locked_out")
