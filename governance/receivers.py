"""Logins, successful and failed, are audit events.

Django's own ``update_last_login`` receiver is replaced by ``services.login_succeeded``,
which stamps ``last_login`` and records the login in one transaction.
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
    from governance.services import login_failed

    username = credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username") or ""
    login_failed(username=str(username))


def connect() -> None:
    user_logged_in.disconnect(dispatch_uid="update_last_login")
    user_logged_in.connect(_on_login, dispatch_uid="governance.login_succeeded")
    user_login_failed.connect(_on_login_failed, dispatch_uid="governance.login_failed")
