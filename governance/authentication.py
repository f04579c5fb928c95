"""Password logins for the API token endpoint, and what django-axes decided about a request.

The admin login and the token endpoint both go through ``django.contrib.auth.authenticate``
with the request, so django-axes counts their failures together and refuses a locked-out
username and address in both places (``axes.backends.AxesStandaloneBackend`` comes first in
``AUTHENTICATION_BACKENDS``). Logins, failures and lock-outs are audited by the receivers in
``governance.receivers``.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in
from django.http import HttpRequest
from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.signals import token_expired

from governance.errors import InvalidCredentials, LockedOut


def client_address(request: HttpRequest) -> str | None:
    """The client address django-axes keys attempts by: the same one the audit log records.

    Set as ``AXES_CLIENT_IP_CALLABLE`` so that installing django-ipware (which axes would
    otherwise pick up by itself) cannot silently make the two disagree. Behind a proxy,
    have the proxy or the WSGI server set ``REMOTE_ADDR`` to the real client.
    """
    return request.META.get("REMOTE_ADDR")


def cool_off(request: Any = None) -> timedelta | None:
    """How long a lock-out lasts; None: until an administrator clears it."""
    from axes.helpers import get_cool_off

    return get_cool_off(request)


def refused_by_lockout(request: Any) -> bool:
    """True if django-axes refused this attempt because a lock-out was already in force.

    The backend marks such a request before any password is checked, and axes then counts
    nothing (``AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False``); the attempt that
    *starts* a lock-out is marked too, but only after its failure has been counted.
    """
    return (
        bool(getattr(request, "axes_locked_out", False)) and getattr(request, "axes_failures_since_start", None) is None
    )


def lockout_error() -> LockedOut:
    period = cool_off()
    if period is None:
        return LockedOut("too many failed logins: login is locked until an administrator clears the lock-out")
    seconds = math.ceil(period.total_seconds())
    minutes = math.ceil(seconds / 60)
    return LockedOut(
        f"too many failed logins: login is locked for up to {minutes} minute{'s' if minutes != 1 else ''}",
        detail={"retry_after": seconds},
        headers={"Retry-After": str(seconds)},
    )


def login_with_password(*, request: Any, username: str, password: str) -> AbstractBaseUser:
    """Check a username and password for an API client, as the admin login does.

    ``request`` is the DRF request: django-axes notes its verdict on it. A failure is
    recorded (``auth.login_failed``) and counted towards the lock-out; the failure that
    reaches the limit and every attempt during the lock-out raise ``LockedOut``; a success
    sends ``user_logged_in`` (``auth.login_succeeded``, ``last_login``, and axes forgets the
    failures), exactly like a session login.
    """
    user = authenticate(request=request, username=username, password=password)
    if user is None:
        if getattr(request, "axes_locked_out", False):
            raise lockout_error()
        raise InvalidCredentials()
    user_logged_in.send(sender=type(user), request=request, user=user)
    return user


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's API token authentication, checking the expiry of the presented token only.

    knox also reads every other token of the user on each request, to delete the expired
    ones: one more query per request, growing with the user's tokens, which a trading
    gateway polling the trading permission paid on every call (docs/benchmarks.md). Here the
    presented token, once expired, is refused and deleted exactly as knox does; the user's
    other expired tokens, which can no longer authenticate anyway, are deleted when they are
    presented.
    """

    def _cleanup_token(self, auth_token: Any) -> bool:
        if auth_token.expiry is None or auth_token.expiry >= timezone.now():
            return False
        username = auth_token.user.get_username()
        auth_token.delete()
        token_expired.send(sender=self.__class__, username=username, source="auth_token")
        return True
