"""Authentication hardening: password hashing and validation, API tokens, login lock-out, cookies."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

import governance.settings as production_settings
from audit.models import Event
from audit.services import SystemActor
from audit.verify import verify_log
from governance import services
from governance.errors import NotPermitted
from governance.roles import Role
from tests.factories import UserFactory

User = get_user_model()
pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's
TOKEN_URL = "/api/auth/token/"
TOKENS_URL = "/api/auth/tokens/"
LIMIT = production_settings.AXES_FAILURE_LIMIT


def _obtain(client: APIClient, username: str, password: str, **extra: str):
    return client.post(TOKEN_URL, {"username": username, "password": password}, format="json", **extra)


def _token_for(username: str, password: str = PASSWORD) -> str:
    response = _obtain(APIClient(), username, password)
    assert response.status_code == 200, response.content
    return response.json()["token"]


def _with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _admin_login(client, username: str, password: str, **extra: str):
    return client.post(reverse("admin:login"), {"username": username, "password": password}, **extra)


def _events(action: str) -> list[Event]:
    return list(Event.objects.filter(action=action).order_by("seq"))


# --- passwords ---------------------------------------------------------------------------------


@pytest.fixture
def production_hashers(settings):
    """The test settings use a fast hasher; these tests need the real list."""
    settings.PASSWORD_HASHERS = production_settings.PASSWORD_HASHERS


def test_argon2_is_first_and_the_other_hashers_are_kept_for_existing_hashes():
    hashers = production_settings.PASSWORD_HASHERS
    assert hashers[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert "django.contrib.auth.hashers.PBKDF2PasswordHasher" in hashers[1:]


def test_new_passwords_are_hashed_with_argon2id(production_hashers):
    user = services.user_create(actor=SystemActor("tests"), username="nadia", password="a-long-and-unusual-phrase")
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password("a-long-and-unusual-phrase")


def test_an_existing_pbkdf2_hash_is_upgraded_to_argon2_at_login(production_hashers, client):
    user = UserFactory(username="olga")
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])
    assert _admin_login(client, "olga", PASSWORD).status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$")


def test_password_validators_are_configured_with_a_minimum_of_twelve_characters():
    validators = {v["NAME"].rsplit(".", 1)[-1]: v for v in production_settings.AUTH_PASSWORD_VALIDATORS}
    assert set(validators) >= {
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    }
    assert validators["MinimumLengthValidator"]["OPTIONS"]["min_length"] >= 12


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-1", "too short"),
        ("password1234", "too common"),
        ("735028461937", "entirely numeric"),
        ("weak.username", "too similar"),
    ],
)
def test_user_create_refuses_a_weak_password_and_writes_nothing(password, message):
    events_before = Event.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        services.user_create(actor=SystemActor("tests"), username="weak.username", password=password)
    errors = excinfo.value.message_dict
    assert list(errors) == ["password"]
    assert any(message in text for text in errors["password"]), errors
    assert not User.objects.filter(username="weak.username").exists()
    assert Event.objects.count() == events_before


def test_user_set_password_refuses_a_weak_password_and_keeps_the_old_one():
    user = UserFactory(username="pavel")
    with pytest.raises(ValidationError) as excinfo:
        services.user_set_password(actor=SystemActor("tests"), user=user, password="1234")
    assert "password" in excinfo.value.message_dict
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not Event.objects.filter(action="user.password_set").exists()
    services.user_set_password(actor=SystemActor("tests"), user=user, password="a-much-better-passphrase")
    user.refresh_from_db()
    assert user.check_password("a-much-better-passphrase")


def test_the_demo_refuses_a_weak_demo_password_before_writing_anything(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "demo")
    events_before = Event.objects.count()
    with pytest.raises(CommandError, match=r"DEMO_PASSWORD is refused: .*too short"):
        call_command("demo", "--no-serve")
    assert Event.objects.count() == events_before


# --- API tokens ----------------------------------------------------------------------------------


def test_a_token_is_issued_for_a_username_and_password_and_authenticates_requests():
    user = UserFactory(username="quinn", roles=[Role.MODEL_OWNER])
    before = timezone.now()
    response = _obtain(APIClient(), "quinn", PASSWORD, REMOTE_ADDR="10.0.0.7")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires"}
    assert body["expires"].endswith("Z")  # ISO 8601, UTC
    expires = dt.datetime.fromisoformat(body["expires"])
    assert expires.tzinfo is not None
    ttl = production_settings.GOVERNANCE_API_TOKEN_TTL
    assert before + ttl <= expires <= timezone.now() + ttl

    assert _with_token(body["token"]).get("/api/models/").status_code == 200

    login, issued = _events("auth.login_succeeded"), _events("auth.token_issued")
    assert len(login) == 1 and len(issued) == 1  # one login, recorded once
    assert login[0].seq < issued[0].seq
    assert (issued[0].actor_id, issued[0].object_type, issued[0].client_address) == (
        user.pk,
        "knox.authtoken",
        "10.0.0.7",
    )
    assert issued[0].object_id == issued[0].after["token_prefix"] == body["token"][:15]
    assert dt.datetime.fromisoformat(issued[0].after["expiry"]) == expires
    user.refresh_from_db()
    assert user.last_login is not None
    assert verify_log().ok


def test_token_lifetime_comes_from_settings(settings):
    settings.GOVERNANCE_API_TOKEN_TTL = dt.timedelta(minutes=5)
    UserFactory(username="rosa")
    response = _obtain(APIClient(), "rosa", PASSWORD)
    expires = dt.datetime.fromisoformat(response.json()["expires"])
    assert dt.timedelta(minutes=4) < expires - timezone.now() <= dt.timedelta(minutes=5)


def test_missing_fields_are_named_and_nothing_is_written():
    events_before = Event.objects.count()
    response = APIClient().post(TOKEN_URL, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}
    response = APIClient().post(TOKEN_URL, {"username": "someone"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"password"}
    assert Event.objects.count() == events_before
    assert not AuthToken.objects.exists()


def test_the_token_endpoint_takes_json_only():
    UserFactory(username="sven")
    response = APIClient().post(TOKEN_URL, {"username": "sven", "password": PASSWORD})  # multipart form
    assert response.status_code == 415
    assert not AuthToken.objects.exists()


@pytest.mark.parametrize("username", ["tara", "nobody-by-that-name"])
def test_wrong_credentials_are_401_the_same_way_for_known_and_unknown_users(username):
    UserFactory(username="tara")
    response = _obtain(APIClient(), username, "not-the-password")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"error": "invalid_credentials", "detail": "wrong username or password"}
    [failed] = _events("auth.login_failed")
    assert failed.after == {"username": username, "account_exists": username == "tara", "locked_out": False}
    assert not AuthToken.objects.exists()
    assert not _events("auth.token_issued")


def test_an_inactive_user_gets_no_token():
    UserFactory(username="uma", is_active=False)
    assert _obtain(APIClient(), "uma", PASSWORD).status_code == 401
    assert not AuthToken.objects.exists()


def test_a_stale_token_sent_along_does_not_stop_a_login():
    UserFactory(username="vic")
    response = _obtain(APIClient(), "vic", PASSWORD, HTTP_AUTHORIZATION="Token not-a-real-token")
    assert response.status_code == 200


def test_an_expired_token_is_refused_and_deleted():
    UserFactory(username="wren")
    token = _token_for("wren")
    client = _with_token(token)
    assert client.get("/api/models/").status_code == 200
    ttl = production_settings.GOVERNANCE_API_TOKEN_TTL
    with time_machine.travel(timezone.now() + ttl - dt.timedelta(seconds=30), tick=False):
        assert client.get("/api/models/").status_code == 200  # not refreshed by use
    with time_machine.travel(timezone.now() + ttl + dt.timedelta(seconds=1), tick=False):
        response = client.get("/api/models/")
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
    assert not AuthToken.objects.exists()


def test_the_token_in_use_can_be_revoked_and_then_fails():
    user = UserFactory(username="xena")
    first, second = _token_for("xena"), _token_for("xena")
    response = _with_token(first).delete(TOKEN_URL)
    assert response.status_code == 204
    assert _with_token(first).get("/api/models/").status_code == 401
    assert _with_token(first).delete(TOKEN_URL).status_code == 401
    assert _with_token(second).get("/api/models/").status_code == 200  # only the one in use
    [revoked] = _events("auth.token_revoked")
    assert (revoked.actor_id, revoked.object_id) == (user.pk, first[:15])
    assert revoked.before["token_prefix"] == first[:15]
    assert revoked.reason == "revoked by its holder"


def test_revoking_the_token_in_use_needs_a_token_not_a_session(client):
    user = UserFactory(username="yara")
    _token_for("yara")
    client.force_login(user)
    response = client.delete(TOKEN_URL)
    assert response.status_code == 401
    assert AuthToken.objects.count() == 1


def test_a_user_can_revoke_all_their_tokens_with_a_token_or_a_session(client):
    user = UserFactory(username="zack")
    other = UserFactory(username="zoe")
    mine = [_token_for("zack"), _token_for("zack")]
    theirs = _token_for("zoe")
    response = _with_token(mine[0]).delete(TOKENS_URL)
    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    assert all(_with_token(t).get("/api/models/").status_code == 401 for t in mine)
    assert _with_token(theirs).get("/api/models/").status_code == 200
    assert {e.object_id for e in _events("auth.token_revoked")} == {t[:15] for t in mine}

    # A lost token: revoked from an admin session.
    lost = _token_for("zack")
    client.force_login(user)
    assert client.delete(TOKENS_URL).json() == {"revoked": 1}
    assert _with_token(lost).get("/api/models/").status_code == 401
    assert AuthToken.objects.filter(user=other).count() == 1


def test_anonymous_revocation_is_401():
    assert APIClient().delete(TOKENS_URL).status_code == 401
    assert APIClient().delete(TOKEN_URL).status_code == 401


def test_tokens_are_stored_hashed_and_never_written_to_the_audit_log():
    UserFactory(username="abel")
    token = _token_for("abel")
    row = AuthToken.objects.get()
    stored = [str(getattr(row, f.attname)) for f in AuthToken._meta.concrete_fields]
    assert not any(token in value for value in stored)
    assert row.digest == hashlib.sha512(token.encode()).hexdigest()
    assert row.token_key == token[:15]
    _with_token(token).delete(TOKEN_URL)
    logged = json.dumps([list(e.values()) for e in Event.objects.values()], default=str)
    assert token not in logged
    assert row.digest not in logged
    assert token[:15] in logged  # the prefix identifies the token in the log


def test_an_administrator_revokes_a_users_tokens_in_the_admin(client):
    admin = UserFactory(username="root", is_superuser=True)
    UserFactory(username="bea")
    tokens = [_token_for("bea"), _token_for("bea")]
    client.force_login(admin)
    changelist = reverse("admin:knox_authtoken_changelist")
    page = client.get(changelist)
    assert page.status_code == 200
    assert tokens[0][:15].encode() in page.content
    response = client.post(
        changelist,
        {"action": "revoke_tokens", "_selected_action": list(AuthToken.objects.values_list("pk", flat=True))},
    )
    assert response.status_code == 302
    assert not AuthToken.objects.exists()
    revoked = _events("auth.token_revoked")
    assert len(revoked) == 2 and all(e.actor_id == admin.pk for e in revoked)
    assert all(_with_token(t).get("/api/models/").status_code == 401 for t in tokens)
    # Tokens are not created or deleted in the admin except through the audited action.
    assert client.get(reverse("admin:knox_authtoken_add")).status_code == 403


def test_the_token_admin_is_for_administrators_only(client):
    UserFactory(username="cleo")
    _token_for("cleo")
    client.force_login(UserFactory(username="dev", roles=[Role.MODEL_DEVELOPER]))
    assert client.get(reverse("admin:knox_authtoken_changelist")).status_code == 403
    client.force_login(UserFactory(username="adm", roles=[Role.ADMINISTRATOR]))
    assert client.get(reverse("admin:knox_authtoken_changelist")).status_code == 200


def test_only_the_holder_or_an_administrator_may_revoke_tokens():
    holder = UserFactory(username="dora")
    _token_for("dora")
    outsider = UserFactory(username="eve")
    with pytest.raises(NotPermitted):
        services.token_revoke_all(actor=outsider, user=holder)
    with pytest.raises(NotPermitted):
        services.token_issue(actor=outsider, user=holder)
    assert AuthToken.objects.filter(user=holder).count() == 1
    administrator = UserFactory(username="ada", roles=[Role.ADMINISTRATOR])
    assert services.token_revoke_all(actor=administrator, user=holder, reason="leaver") == 1


# --- anonymous requests ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/models/", "/api/versions/", "/api/datasets/", "/api/audit/events/"])
def test_anonymous_api_requests_are_401_with_a_token_challenge(url):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# --- lock-out ------------------------------------------------------------------------------------


def test_the_token_endpoint_locks_out_after_the_failure_limit_and_audits_it():
    UserFactory(username="fay")
    client = APIClient()
    start = timezone.now()
    cool_off = production_settings.AXES_COOLOFF_TIME
    with time_machine.travel(start, tick=False):
        for _ in range(LIMIT - 1):
            assert _obtain(client, "fay", "wrong-guess", REMOTE_ADDR="198.51.100.9").status_code == 401
        response = _obtain(client, "fay", "wrong-guess", REMOTE_ADDR="198.51.100.9")
    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "locked_out"
    assert body["retry_after"] == int(cool_off.total_seconds())
    assert response["Retry-After"] == str(int(cool_off.total_seconds()))

    [locked] = _events("auth.locked_out")
    assert locked.after["username"] == "fay"
    assert locked.after["client_address"] == locked.client_address == "198.51.100.9"
    assert locked.after["failures"] == LIMIT
    assert locked.after["cool_off_seconds"] == int(cool_off.total_seconds())
    assert dt.datetime.fromisoformat(locked.after["locked_until"]) == start + cool_off
    assert locked.actor_label == "anonymous"
    failed = _events("auth.login_failed")
    assert len(failed) == LIMIT and failed[-1].seq < locked.seq  # the failure first, then its lock-out

    # The right password changes nothing while locked out; the refusal is audited, not a new
    # lock-out, and does not extend the cool-off.
    with time_machine.travel(start + cool_off - dt.timedelta(seconds=5), tick=False):
        response = _obtain(client, "fay", PASSWORD, REMOTE_ADDR="198.51.100.9")
    assert response.status_code == 429
    assert not AuthToken.objects.exists()
    refused = _events("auth.login_failed")[-1]
    assert refused.after["locked_out"] is True
    assert len(_events("auth.locked_out")) == 1
    assert PASSWORD not in json.dumps([list(e.values()) for e in Event.objects.values()], default=str)

    with time_machine.travel(start + cool_off + dt.timedelta(seconds=1), tick=False):
        assert _obtain(client, "fay", PASSWORD, REMOTE_ADDR="198.51.100.9").status_code == 200
    assert verify_log().ok


def test_the_admin_login_locks_out_after_the_failure_limit_and_audits_it(client):
    UserFactory(username="gus")
    for _ in range(LIMIT - 1):
        assert _admin_login(client, "gus", "wrong-guess").status_code == 200  # the form again, with an error
    assert _admin_login(client, "gus", "wrong-guess").status_code == 429
    assert _admin_login(client, "gus", PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session
    [locked] = _events("auth.locked_out")
    assert (locked.after["username"], locked.after["client_address"]) == ("gus", "127.0.0.1")
    assert not _events("auth.login_succeeded")
    # One event per attempt: the failures, then the refusal during the lock-out.
    assert [e.after["locked_out"] for e in _events("auth.login_failed")] == [False] * LIMIT + [True]


def test_failures_count_across_the_admin_login_and_the_token_endpoint(client):
    UserFactory(username="hal")
    for _ in range(LIMIT - 1):
        _admin_login(client, "hal", "wrong-guess")
    assert _obtain(APIClient(), "hal", "wrong-guess").status_code == 429
    assert _admin_login(client, "hal", PASSWORD).status_code == 429
    assert len(_events("auth.locked_out")) == 1


def test_the_lock_out_is_per_username_and_address():
    UserFactory(username="ivy")
    UserFactory(username="jon")
    for _ in range(LIMIT):
        _obtain(APIClient(), "ivy", "wrong-guess", REMOTE_ADDR="203.0.113.5")
    assert _obtain(APIClient(), "ivy", PASSWORD, REMOTE_ADDR="203.0.113.5").status_code == 429
    # The same account from elsewhere, and another account from the same address, are not locked.
    assert _obtain(APIClient(), "ivy", PASSWORD, REMOTE_ADDR="203.0.113.6").status_code == 200
    assert _obtain(APIClient(), "jon", PASSWORD, REMOTE_ADDR="203.0.113.5").status_code == 200


def test_a_successful_login_forgets_earlier_failures():
    UserFactory(username="kim")
    for _ in range(LIMIT - 1):
        _obtain(APIClient(), "kim", "wrong-guess")
    assert _obtain(APIClient(), "kim", PASSWORD).status_code == 200
    for _ in range(LIMIT - 1):
        assert _obtain(APIClient(), "kim", "wrong-guess").status_code == 401
    assert not _events("auth.locked_out")


def test_failure_limit_and_cool_off_follow_the_settings(settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=1)
    UserFactory(username="lea")
    assert _obtain(APIClient(), "lea", "wrong-guess").status_code == 401
    response = _obtain(APIClient(), "lea", "wrong-guess")
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=61)):
        assert _obtain(APIClient(), "lea", PASSWORD).status_code == 200


def test_without_a_cool_off_only_an_administrator_lifts_the_lock_out(settings, client):
    settings.AXES_COOLOFF_TIME = None
    UserFactory(username="max")
    for _ in range(LIMIT):
        _obtain(APIClient(), "max", "wrong-guess")
    response = _obtain(APIClient(), "max", PASSWORD)
    assert response.status_code == 429
    assert "administrator" in response.json()["detail"]
    assert "Retry-After" not in response
    with time_machine.travel(timezone.now() + dt.timedelta(days=30)):
        assert _obtain(APIClient(), "max", PASSWORD).status_code == 429

    admin = UserFactory(username="root", is_superuser=True)
    client.force_login(admin)
    changelist = reverse("admin:axes_accessattempt_changelist")
    assert b"max" in client.get(changelist).content
    response = client.post(
        changelist,
        {"action": "clear_lockouts", "_selected_action": list(AccessAttempt.objects.values_list("pk", flat=True))},
    )
    assert response.status_code == 302
    [cleared] = _events("auth.lockout_cleared")
    assert cleared.actor_id == admin.pk
    assert (cleared.before["username"], cleared.before["failures"]) == ("max", LIMIT)
    assert _obtain(APIClient(), "max", PASSWORD).status_code == 200


def test_only_administrators_clear_lock_outs():
    UserFactory(username="ned")
    for _ in range(LIMIT):
        _obtain(APIClient(), "ned", "wrong-guess")
    with pytest.raises(NotPermitted):
        services.login_lockout_clear(actor=UserFactory(username="nosy"), attempts=AccessAttempt.objects.all())
    assert AccessAttempt.objects.exists()
    assert not _events("auth.lockout_cleared")


# --- settings in a real environment -------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
_SETTINGS_PREFIXES = ("DJANGO_", "GOVERNANCE_", "CELERY_", "DATABASE_URL", "DB_CONN_MAX_AGE", "LOG_LEVEL")
_PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client
response = Client().get("/admin/login/", secure=True, HTTP_HOST="localhost")
cookie = response.cookies["csrftoken"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
    "SESSION_COOKIE_HTTPONLY": settings.SESSION_COOKIE_HTTPONLY,
    "SESSION_COOKIE_SAMESITE": settings.SESSION_COOKIE_SAMESITE,
    "SESSION_COOKIE_AGE": settings.SESSION_COOKIE_AGE,
    "CSRF_COOKIE_SECURE": settings.CSRF_COOKIE_SECURE,
    "CSRF_COOKIE_HTTPONLY": settings.CSRF_COOKIE_HTTPONLY,
    "CSRF_COOKIE_SAMESITE": settings.CSRF_COOKIE_SAMESITE,
    "SECURE_PROXY_SSL_HEADER": settings.SECURE_PROXY_SSL_HEADER,
    "AXES_FAILURE_LIMIT": settings.AXES_FAILURE_LIMIT,
    "AXES_COOLOFF_SECONDS": settings.AXES_COOLOFF_TIME.total_seconds() if settings.AXES_COOLOFF_TIME else None,
    "AXES_LOCKOUT_PARAMETERS": settings.AXES_LOCKOUT_PARAMETERS,
    "TOKEN_TTL_SECONDS": settings.GOVERNANCE_API_TOKEN_TTL.total_seconds(),
    "csrf_cookie": {"secure": cookie["secure"], "httponly": cookie["httponly"], "samesite": cookie["samesite"]},
}))
"""


@pytest.fixture
def clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_PREFIXES)}
    env.update(
        {
            "GOVERNANCE_VAR_DIR": str(tmp_path / "var"),
            "DJANGO_SETTINGS_MODULE": "governance.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        }
    )
    return env


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def _probe(env: dict[str, str]) -> dict[str, object]:
    result = _run(env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cookies_are_secure_http_only_and_same_site_when_debug_is_off(clean_env):
    probe = _probe(clean_env)
    assert probe["DEBUG"] is False
    assert probe["SESSION_COOKIE_SECURE"] is True and probe["CSRF_COOKIE_SECURE"] is True
    assert probe["SESSION_COOKIE_HTTPONLY"] is True and probe["CSRF_COOKIE_HTTPONLY"] is True
    assert probe["SESSION_COOKIE_SAMESITE"] == probe["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert probe["SESSION_COOKIE_AGE"] == 8 * 3600
    assert probe["csrf_cookie"] == {"secure": True, "httponly": True, "samesite": "Lax"}
    # The proxy's HTTPS header is trusted only when named.
    assert probe["SECURE_PROXY_SSL_HEADER"] is None
    assert probe["AXES_FAILURE_LIMIT"] == 5
    assert probe["AXES_COOLOFF_SECONDS"] == 900
    assert probe["AXES_LOCKOUT_PARAMETERS"] == [["username", "ip_address"]]
    assert probe["TOKEN_TTL_SECONDS"] == 10 * 3600


def test_cookies_are_not_secure_in_debug_so_that_the_demo_works_over_http(clean_env):
    probe = _probe({**clean_env, "DJANGO_DEBUG": "true"})
    assert probe["SESSION_COOKIE_SECURE"] is False and probe["CSRF_COOKIE_SECURE"] is False
    assert probe["SESSION_COOKIE_HTTPONLY"] is True and probe["CSRF_COOKIE_HTTPONLY"] is True


def test_authentication_settings_come_from_the_environment(clean_env):
    probe = _probe(
        {
            **clean_env,
            "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
            "DJANGO_SESSION_COOKIE_AGE": "3600",
            "GOVERNANCE_LOGIN_FAILURE_LIMIT": "3",
            "GOVERNANCE_LOGIN_COOLOFF_SECONDS": "0",
            "GOVERNANCE_LOGIN_LOCKOUT_PARAMETERS": "username, ip_address",
            "GOVERNANCE_API_TOKEN_TTL": "600",
        }
    )
    assert probe["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert probe["SESSION_COOKIE_AGE"] == 3600
    assert probe["AXES_FAILURE_LIMIT"] == 3
    assert probe["AXES_COOLOFF_SECONDS"] is None  # 0: until an administrator clears it
    assert probe["AXES_LOCKOUT_PARAMETERS"] == ["username", "ip_address"]
    assert probe["TOKEN_TTL_SECONDS"] == 600


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("GOVERNANCE_LOGIN_FAILURE_LIMIT", "0", "GOVERNANCE_LOGIN_FAILURE_LIMIT=0 must be at least 1"),
        ("GOVERNANCE_LOGIN_COOLOFF_SECONDS", "soon", "GOVERNANCE_LOGIN_COOLOFF_SECONDS='soon' is not an integer"),
        ("GOVERNANCE_API_TOKEN_TTL", "10", "GOVERNANCE_API_TOKEN_TTL=10 must be at least 60"),
        ("GOVERNANCE_LOGIN_LOCKOUT_PARAMETERS", "username+password", "password is not one of"),
        ("DJANGO_SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https", "is not an HTTP header name"),
    ],
)
def test_bad_authentication_settings_fail_naming_the_variable(clean_env, variable, value, message):
    result = _run({**clean_env, variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
    assert variable in result.stderr


def test_authenticating_checks_the_presented_tokens_expiry_only(django_assert_num_queries):
    """One query per token request (knox also read all the user's tokens to delete the expired
    ones); an expired token is still refused and deleted when presented."""
    from governance.authentication import TokenAuthentication

    UserFactory(username="yves")
    old, current = _token_for("yves"), _token_for("yves")
    ttl = production_settings.GOVERNANCE_API_TOKEN_TTL
    AuthToken.objects.filter(token_key=old[:15]).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    with django_assert_num_queries(1):
        user, _ = TokenAuthentication().authenticate_credentials(current.encode())
    assert user.get_username() == "yves"
    assert AuthToken.objects.count() == 2  # the other, expired token is left until presented
    assert _with_token(old).get("/api/models/").status_code == 401
    assert list(AuthToken.objects.values_list("token_key", flat=True)) == [current[:15]]
    with time_machine.travel(timezone.now() + ttl + dt.timedelta(seconds=1), tick=False):
        assert _with_token(current).get("/api/models/").status_code == 401
    assert not AuthToken.objects.exists()
