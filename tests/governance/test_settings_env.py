"""Environment-driven settings: the typed parsers, and what settings.py does with a real environment.

Settings are evaluated once per process, so behaviour that depends on the environment at
import time is checked in subprocesses with a clean environment.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from governance.env import env_bool, env_decimal, env_int, env_list, env_path, env_str

REPO_ROOT = Path(__file__).resolve().parents[2]
VAR = "GOVERNANCE_TEST_VARIABLE"

# Variables settings.py reads; none may leak from the test process into the subprocesses.
_SETTINGS_PREFIXES = ("DJANGO_", "GOVERNANCE_", "CELERY_", "DATABASE_URL", "DB_CONN_MAX_AGE", "LOG_LEVEL")


# --- parsers ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "True", "TRUE", "yes", "on", " On "])
def test_env_bool_true_variants(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    assert env_bool(VAR, False) is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "off", "OFF", ""])
def test_env_bool_false_variants(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    assert env_bool(VAR, True) is False


def test_env_bool_unset_gives_default(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    assert env_bool(VAR, True) is True
    assert env_bool(VAR, False) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "yess", "t"])
def test_env_bool_refuses_other_values_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_bool(VAR, False)
    assert VAR in str(excinfo.value)
    assert repr(raw) in str(excinfo.value)


def test_env_int(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    assert env_int(VAR, 7) == 7
    monkeypatch.setenv(VAR, "")
    assert env_int(VAR, 7) == 7
    monkeypatch.setenv(VAR, "42")
    assert env_int(VAR, 7) == 42
    monkeypatch.setenv(VAR, "-3")
    assert env_int(VAR, 7) == -3


def test_env_int_minimum(monkeypatch):
    monkeypatch.setenv(VAR, "1")
    assert env_int(VAR, 5, minimum=1) == 1
    monkeypatch.setenv(VAR, "0")
    with pytest.raises(ImproperlyConfigured, match=rf"{VAR}=0 must be at least 1"):
        env_int(VAR, 5, minimum=1)


@pytest.mark.parametrize("raw", ["ten", "1.5", "1e3"])
def test_env_int_refuses_non_integers(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    with pytest.raises(ImproperlyConfigured, match=f"{VAR}=.*is not an integer"):
        env_int(VAR, 5)


def test_env_decimal(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    assert env_decimal(VAR, "5000000") == Decimal("5000000")
    monkeypatch.setenv(VAR, "1234.50")
    value = env_decimal(VAR, "0")
    assert isinstance(value, Decimal)
    assert value == Decimal("1234.50")


@pytest.mark.parametrize(("raw", "message"), [("lots", "is not a decimal"), ("NaN", "finite"), ("Infinity", "finite")])
def test_env_decimal_refuses_bad_values(monkeypatch, raw, message):
    monkeypatch.setenv(VAR, raw)
    with pytest.raises(ImproperlyConfigured, match=message) as excinfo:
        env_decimal(VAR, "0")
    assert VAR in str(excinfo.value)


def test_env_str_reads_secret_from_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("  from-the-file\n", encoding="utf-8")
    monkeypatch.setenv(VAR, "from-the-variable")
    assert env_str(VAR) == "from-the-variable"
    monkeypatch.setenv(f"{VAR}_FILE", str(secret_file))
    assert env_str(VAR) == "from-the-file"


def test_env_str_unreadable_file_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(f"{VAR}_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match=f"{VAR}_FILE=.*cannot be read"):
        env_str(VAR)


def test_env_str_default(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.delenv(f"{VAR}_FILE", raising=False)
    assert env_str(VAR, "fallback") == "fallback"


def test_env_list_and_path(monkeypatch, tmp_path):
    monkeypatch.setenv(VAR, " a, b ,,c ")
    assert env_list(VAR) == ["a", "b", "c"]
    monkeypatch.delenv(VAR)
    assert env_list(VAR, ["x"]) == ["x"]
    monkeypatch.setenv(VAR, str(tmp_path / "sub" / ".." / "here"))
    assert env_path(VAR, Path("/nowhere")) == (tmp_path / "here").resolve()
    monkeypatch.delenv(VAR)
    assert env_path(VAR, Path("/nowhere")) == Path("/nowhere")


# --- settings.py in a clean environment -------------------------------------------------------


@pytest.fixture
def clean_env(tmp_path):
    """The test process's environment without any settings variable, with a fresh var dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_PREFIXES)}
    var_dir = tmp_path / "var"
    env.update({"GOVERNANCE_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "governance.settings"})
    return env


def _run(args, env):
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def _manage(env, *args):
    return _run(["manage.py", *args], env)


_PROBE = """
import json
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "ENGINE": db["ENGINE"], "NAME": str(db["NAME"]), "HOST": db.get("HOST"), "PORT": db.get("PORT"),
    "USER": db.get("USER"), "OPTIONS": db.get("OPTIONS", {}),
    "DEBUG": settings.DEBUG, "SECRET_KEY": settings.SECRET_KEY,
    "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CELERY_TASK_ALWAYS_EAGER": settings.CELERY_TASK_ALWAYS_EAGER,
    "TIME_ZONE": settings.TIME_ZONE, "USE_TZ": settings.USE_TZ,
    "SECURE_SSL_REDIRECT": getattr(settings, "SECURE_SSL_REDIRECT", None),
}))
"""


def _probe(env):
    result = _run(["-c", _PROBE], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _with_key(env, **extra):
    return {**env, "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), **extra}


def test_check_without_secret_key_and_debug_off_fails(clean_env):
    result = _manage(clean_env, "check")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "DJANGO_SECRET_KEY" in output
    assert "ImproperlyConfigured" in output
    assert not (Path(clean_env["GOVERNANCE_VAR_DIR"]) / "secret-key").exists()


def test_check_with_secret_key_passes(clean_env):
    result = _manage(_with_key(clean_env), "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_check_passes_with_warnings_as_failures(clean_env):
    # Production-like: a real key, HSTS preload opted into (it is off by default because
    # preloading is hard to undo and must be a deliberate choice of the operator).
    env = _with_key(clean_env, DJANGO_SECURE_HSTS_PRELOAD="true")
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_check_without_preload_warns_only_about_preload(clean_env):
    result = _manage(_with_key(clean_env), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 1
    assert "security.W021" in result.stderr + result.stdout
    assert "W001" not in result.stderr + result.stdout


def test_empty_database_url_falls_back_to_sqlite(clean_env):
    assert _probe({**_with_key(clean_env), "DATABASE_URL": ""})["ENGINE"].endswith("sqlite3")


def test_secret_key_from_file(clean_env, tmp_path):
    key = secrets.token_urlsafe(50)
    key_file = tmp_path / "django-secret"
    key_file.write_text(key + "\n", encoding="utf-8")
    assert _probe({**clean_env, "DJANGO_SECRET_KEY_FILE": str(key_file)})["SECRET_KEY"] == key


def test_debug_run_writes_a_private_secret_key_that_later_runs_reuse(clean_env):
    first = _probe({**clean_env, "DJANGO_DEBUG": "true"})
    assert first["DEBUG"] is True
    key_file = Path(clean_env["GOVERNANCE_VAR_DIR"]) / "secret-key"
    assert key_file.read_text(encoding="utf-8").strip() == first["SECRET_KEY"]
    assert len(first["SECRET_KEY"]) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Later runs without DEBUG reuse it instead of failing.
    second = _probe(clean_env)
    assert second["DEBUG"] is False
    assert second["SECRET_KEY"] == first["SECRET_KEY"]


def test_bad_debug_value_fails_naming_the_variable(clean_env):
    result = _run(["-c", _PROBE], _with_key(clean_env, DJANGO_DEBUG="maybe"))
    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


def test_default_database_is_sqlite_under_var_dir(clean_env):
    probe = _probe(_with_key(clean_env))
    assert probe["ENGINE"] == "django.db.backends.sqlite3"
    assert probe["NAME"] == str(Path(clean_env["GOVERNANCE_VAR_DIR"]).resolve() / "db.sqlite3")
    assert probe["OPTIONS"]["timeout"] == 20


def test_database_url_switches_to_postgresql(clean_env):
    probe = _probe(_with_key(clean_env, DATABASE_URL="postgres://u@127.0.0.1:5432/x"))
    assert probe["ENGINE"] == "django.db.backends.postgresql"
    assert probe["NAME"] == "x"
    assert probe["USER"] == "u"
    assert probe["HOST"] == "127.0.0.1"
    assert int(probe["PORT"]) == 5432
    assert "timeout" not in probe["OPTIONS"]


def test_invalid_database_url_is_a_clear_error(clean_env):
    result = _run(["-c", _PROBE], _with_key(clean_env, DATABASE_URL="nosuchdb://u@host/x"))
    assert result.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL is not a valid database URL" in result.stderr
    assert "nosuchdb" in result.stderr


def test_celery_runs_eagerly_without_a_broker(clean_env):
    probe = _probe(_with_key(clean_env))
    assert probe["CELERY_BROKER_URL"] == ""
    assert probe["CELERY_TASK_ALWAYS_EAGER"] is True


def test_celery_broker_url_switches_eager_off(clean_env):
    probe = _probe(_with_key(clean_env, CELERY_BROKER_URL="redis://127.0.0.1:6379/0"))
    assert probe["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/0"
    assert probe["CELERY_TASK_ALWAYS_EAGER"] is False


def test_time_zone_is_utc(clean_env):
    probe = _probe(_with_key(clean_env))
    assert probe["TIME_ZONE"] == "UTC"
    assert probe["USE_TZ"] is True
    assert django_settings.TIME_ZONE == "UTC"
    assert django_settings.USE_TZ is True


def test_https_settings_apply_when_debug_is_off(clean_env):
    assert _probe(_with_key(clean_env))["SECURE_SSL_REDIRECT"] is True
    assert _probe(_with_key(clean_env, DJANGO_SECURE_SSL_REDIRECT="false"))["SECURE_SSL_REDIRECT"] is False


def test_materiality_bands_must_be_ordered(clean_env):
    env = _with_key(clean_env, GOVERNANCE_MATERIALITY_MEDIUM="100", GOVERNANCE_MATERIALITY_HIGH="50")
    result = _run(["-c", _PROBE], env)
    assert result.returncode != 0
    assert "GOVERNANCE_MATERIALITY_MEDIUM must be below GOVERNANCE_MATERIALITY_HIGH" in result.stderr


def test_a_signing_key_file_that_does_not_exist_yet_does_not_stop_start_up(tmp_path):
    """audit_keygen creates the file after deployment; settings must not read it at import."""
    env = {**os.environ, "DJANGO_DEBUG": "true", "GOVERNANCE_VAR_DIR": str(tmp_path)}
    env["GOVERNANCE_AUDIT_SIGNING_KEY_FILE"] = str(tmp_path / "later" / "key.pem")
    env.pop("GOVERNANCE_AUDIT_SIGNING_KEY", None)
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.GOVERNANCE_AUDIT_SIGNING_KEY_FILE)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DJANGO_SETTINGS_MODULE": "governance.settings"},
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("later/key.pem")
