"""Settings for the model-risk governance system, driven by environment variables.

Defaults give the embedded set-up (SQLite under var/, Celery eager, files under var/);
``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to PostgreSQL and Redis/RabbitMQ.
See README.md ("Configuration") for every variable.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from governance.env import env_bool, env_decimal, env_int, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("GOVERNANCE_VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    # A key written by a DEBUG run (the demo) under var/ is reused, so that management
    # commands on the same checkout work without DEBUG. Production sets DJANGO_SECRET_KEY.
    key_file = VAR_DIR / "secret-key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip()
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set when DJANGO_DEBUG is off. "
            "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key, encoding="utf-8")
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    # Hashed, expiring API tokens, and the login lock-out (their own tables). Before governance,
    # whose admin replaces theirs.
    "knox",
    "axes",
    "governance",
    "audit",
    "models_registry",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "audit.middleware.RequestContextMiddleware",
    # Last, as django-axes requires: turns a locked-out admin login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "governance.urls"
WSGI_APPLICATION = "governance.wsgi.application"
ASGI_APPLICATION = "governance.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL names another (postgres://...).
_default_sqlite = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
_database_url = env_str("DATABASE_URL") or _default_sqlite
try:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Wait for the write lock instead of failing at once: SQLite serialises writers.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username and address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2id for new passwords; the others stay so that existing hashes still verify and are
# upgraded to Argon2 at the user's next login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env_path("DJANGO_STATIC_ROOT", VAR_DIR / "static")
# Serve app static files (admin, API docs) straight from the packages, so the demo and a
# fresh deployment need no collectstatic step.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = env_path("GOVERNANCE_MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "media/"
REPORTS_DIR = env_path("GOVERNANCE_REPORTS_DIR", VAR_DIR / "reports")

# Reports (docs/reports.md). PAdES signing with pyHanko when both a PEM key and certificate
# are set (paths); the key's passphrase, if any, from GOVERNANCE_REPORT_SIGNING_PASSPHRASE(_FILE).
GOVERNANCE_REPORT_SIGNING_KEY = os.environ.get("GOVERNANCE_REPORT_SIGNING_KEY", "")
GOVERNANCE_REPORT_SIGNING_CERT = os.environ.get("GOVERNANCE_REPORT_SIGNING_CERT", "")
GOVERNANCE_REPORT_SIGNING_PASSPHRASE = env_str("GOVERNANCE_REPORT_SIGNING_PASSPHRASE")
if bool(GOVERNANCE_REPORT_SIGNING_KEY) != bool(GOVERNANCE_REPORT_SIGNING_CERT):
    raise ImproperlyConfigured(
        "GOVERNANCE_REPORT_SIGNING_KEY and GOVERNANCE_REPORT_SIGNING_CERT are set together or not at all"
    )


def _retention_classes(name: str, default: str) -> dict[str, str]:
    """``default=7y,mifid=5y`` -> {"default": "7y", "mifid": "5y"}: whole years or days (``180d``)."""
    raw = os.environ.get(name, default)
    classes: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        key, _, period = item.partition("=")
        key, period = key.strip(), period.strip()
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", key) or not re.fullmatch(r"[1-9][0-9]{0,3}[yd]", period):
            raise ImproperlyConfigured(f"{name}: {item!r} is not <class>=<years>y or <class>=<days>d (e.g. mifid=5y)")
        classes[key] = period
    if not classes:
        raise ImproperlyConfigured(f"{name} names no retention class")
    return classes


# Record retention: issued reports (and the audit log, GOVERNANCE_AUDIT_RETENTION_CLASS) are
# kept at least this long; a legal hold keeps them beyond it.
GOVERNANCE_RETENTION_CLASSES = _retention_classes(
    "GOVERNANCE_RETENTION_CLASSES", "default=7y,mifid=5y,rts6-art28=5y,sec-17a-4=6y,finra-4511=6y"
)
GOVERNANCE_DEFAULT_RETENTION_CLASS = env_str("GOVERNANCE_DEFAULT_RETENTION_CLASS", "default")
GOVERNANCE_AUDIT_RETENTION_CLASS = env_str("GOVERNANCE_AUDIT_RETENTION_CLASS", GOVERNANCE_DEFAULT_RETENTION_CLASS)
for _name in ("GOVERNANCE_DEFAULT_RETENTION_CLASS", "GOVERNANCE_AUDIT_RETENTION_CLASS"):
    if globals()[_name] not in GOVERNANCE_RETENTION_CLASSES:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]!r} is not one of GOVERNANCE_RETENTION_CLASSES")


def _proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """``X-Forwarded-Proto`` -> ``("HTTP_X_FORWARDED_PROTO", "https")``; empty -> None."""
    raw = env_str(name).strip()
    if not raw:
        return None
    if not re.fullmatch(r"[A-Za-z0-9-]+", raw):
        raise ImproperlyConfigured(f"{name}={raw!r} is not an HTTP header name (e.g. X-Forwarded-Proto)")
    return ("HTTP_" + raw.upper().replace("-", "_"), "https")


if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# Trusted only when set: a client could otherwise claim HTTPS over plain HTTP. Set it to the
# header a TLS-terminating proxy sets (and strips from clients), e.g. X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header("DJANGO_SECURE_PROXY_SSL_HEADER")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# A working day; the cookie also ends with the browser session.
SESSION_COOKIE_AGE = env_int("DJANGO_SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# No script reads the CSRF cookie: the admin, the browsable API and Swagger UI put the token
# into the page itself.
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Uploads: the limits the services enforce (413 from the API beyond them).
GOVERNANCE_MAX_ARTIFACT_BYTES = env_int("GOVERNANCE_MAX_ARTIFACT_BYTES", 200 * 1024 * 1024, minimum=1)
GOVERNANCE_MAX_DATASET_BYTES = env_int("GOVERNANCE_MAX_DATASET_BYTES", 500 * 1024 * 1024, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Types a skops artifact may contain beyond skops' own defaults (scikit-learn estimators,
# NumPy and builtins). Anything else is refused by name.
GOVERNANCE_TRUSTED_ARTIFACT_TYPES = env_list(
    "GOVERNANCE_TRUSTED_ARTIFACT_TYPES",
    [
        "sklearn.tree._tree.Tree",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfSquaredError",
    ],
)

# Audit log: Ed25519 key for signed checkpoints (PEM, or a file), and the file outside the
# database that every checkpoint is also appended to.
# Not env_str: its NAME_FILE convention would read the key file at start-up, and here the
# file is read when signing, so that `audit_keygen` can create it after deployment.
GOVERNANCE_AUDIT_SIGNING_KEY = os.environ.get("GOVERNANCE_AUDIT_SIGNING_KEY", "")
GOVERNANCE_AUDIT_SIGNING_KEY_FILE = env_path("GOVERNANCE_AUDIT_SIGNING_KEY_FILE", VAR_DIR / "audit" / "signing-key.pem")
GOVERNANCE_AUDIT_CHECKPOINT_FILE = env_path("GOVERNANCE_AUDIT_CHECKPOINT_FILE", VAR_DIR / "audit" / "checkpoints.jsonl")

# Risk tiering: materiality (capital at risk, in GOVERNANCE_BASE_CURRENCY) bands.
GOVERNANCE_BASE_CURRENCY = env_str("GOVERNANCE_BASE_CURRENCY", "USD")
GOVERNANCE_MATERIALITY_HIGH = env_decimal("GOVERNANCE_MATERIALITY_HIGH", "50000000")
GOVERNANCE_MATERIALITY_MEDIUM = env_decimal("GOVERNANCE_MATERIALITY_MEDIUM", "5000000")
if GOVERNANCE_MATERIALITY_MEDIUM >= GOVERNANCE_MATERIALITY_HIGH:
    raise ImproperlyConfigured("GOVERNANCE_MATERIALITY_MEDIUM must be below GOVERNANCE_MATERIALITY_HIGH")

# Policies as code (docs/policies.md): the shipped set in governance/policies/ (unless turned
# off, for a firm that ships a complete set of its own) and extra directories of YAML files.
# Files are read when a set is activated (manage.py policy_activate); evaluations use the
# activated set stored in the database, so editing files changes nothing until then.
GOVERNANCE_POLICY_DEFAULT_SET = env_bool("GOVERNANCE_POLICY_DEFAULT_SET", True)
GOVERNANCE_POLICY_DIRS = [Path(d).expanduser().resolve() for d in env_list("GOVERNANCE_POLICY_DIRS", [])]

# Celery: eager (in-process) unless a broker is configured.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 15 * 60, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 20 * 60, minimum=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis (and SQS) only: a job taken by a worker that dies without acknowledging it (SIGKILL,
# lost machine) is delivered again this many seconds after it was taken. Keep it above
# CELERY_TASK_TIME_LIMIT, or a job still running is delivered to a second worker (which restarts
# it: risk assessments still finish once, but the work is done twice). RabbitMQ redelivers as
# soon as the worker's connection drops and ignores this.
CELERY_BROKER_VISIBILITY_TIMEOUT = env_int("CELERY_BROKER_VISIBILITY_TIMEOUT", 3600, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}
# `celery -A governance beat` runs these; each report cites a checkpoint, so the log is
# signed at least this often (and never when idle: the task skips an unchanged log).
GOVERNANCE_AUDIT_CHECKPOINT_INTERVAL = env_int("GOVERNANCE_AUDIT_CHECKPOINT_INTERVAL", 3600, minimum=60)
# Sign-off requests: overdue (flagged to compliance, approvers reminded) when undecided after
# GOVERNANCE_SIGNOFF_DUE_DAYS; closed as expired after GOVERNANCE_SIGNOFF_EXPIRY_DAYS.
GOVERNANCE_SIGNOFF_EXPIRY_DAYS = env_int("GOVERNANCE_SIGNOFF_EXPIRY_DAYS", 30, minimum=1)
GOVERNANCE_SIGNOFF_DUE_DAYS = env_int("GOVERNANCE_SIGNOFF_DUE_DAYS", 10, minimum=1)
if GOVERNANCE_SIGNOFF_DUE_DAYS > GOVERNANCE_SIGNOFF_EXPIRY_DAYS:
    raise ImproperlyConfigured(
        f"GOVERNANCE_SIGNOFF_DUE_DAYS ({GOVERNANCE_SIGNOFF_DUE_DAYS}) must not exceed "
        f"GOVERNANCE_SIGNOFF_EXPIRY_DAYS ({GOVERNANCE_SIGNOFF_EXPIRY_DAYS})"
    )
GOVERNANCE_SIGNOFF_EXPIRY_INTERVAL = env_int("GOVERNANCE_SIGNOFF_EXPIRY_INTERVAL", 3600, minimum=60)
# Periodic revalidation (models_registry/revalidation.py): an approved, deployed or suspended
# version is assessed again (full assessment) once its latest succeeded full assessment is
# older than its model's tier allows, in days; the job also ends runs left "running" past any
# worker's reach (code "stale"). It runs every GOVERNANCE_REVALIDATION_INTERVAL seconds.
GOVERNANCE_REVALIDATION_DAYS_TIER_1 = env_int("GOVERNANCE_REVALIDATION_DAYS_TIER_1", 90, minimum=1)
GOVERNANCE_REVALIDATION_DAYS_TIER_2 = env_int("GOVERNANCE_REVALIDATION_DAYS_TIER_2", 180, minimum=1)
GOVERNANCE_REVALIDATION_DAYS_TIER_3 = env_int("GOVERNANCE_REVALIDATION_DAYS_TIER_3", 365, minimum=1)
GOVERNANCE_REVALIDATION_INTERVAL = env_int("GOVERNANCE_REVALIDATION_INTERVAL", 24 * 3600, minimum=60)
# Anomaly rules on live monitoring data (governance/anomaly_services.py): evaluated after each
# ingested batch and, by beat, over every live deployment every GOVERNANCE_MONITORING_INTERVAL seconds.
GOVERNANCE_MONITORING_INTERVAL = env_int("GOVERNANCE_MONITORING_INTERVAL", 300, minimum=10)
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoint": {"task": "audit.make_checkpoint", "schedule": float(GOVERNANCE_AUDIT_CHECKPOINT_INTERVAL)},
    "signoff-expiry": {"task": "governance.expire_signoffs", "schedule": float(GOVERNANCE_SIGNOFF_EXPIRY_INTERVAL)},
    "risk-revalidation": {
        "task": "models_registry.revalidate_due",
        "schedule": float(GOVERNANCE_REVALIDATION_INTERVAL),
    },
    "monitoring-anomaly-rules": {
        "task": "governance.evaluate_monitoring",
        "schedule": float(GOVERNANCE_MONITORING_INTERVAL),
    },
}

# Deployment phases, in order (docs/deployments.md): a first deployment starts in the first;
# each promotion to the next goes through a sign-off request and the policies.
GOVERNANCE_DEPLOYMENT_PHASES = env_list("GOVERNANCE_DEPLOYMENT_PHASES", ["shadow", "pilot", "limited", "full"])
if (
    not GOVERNANCE_DEPLOYMENT_PHASES
    or any(not re.fullmatch(r"[a-z0-9][a-z0-9_]{0,49}", phase) for phase in GOVERNANCE_DEPLOYMENT_PHASES)
    or len(set(GOVERNANCE_DEPLOYMENT_PHASES)) != len(GOVERNANCE_DEPLOYMENT_PHASES)
):
    raise ImproperlyConfigured(
        f"GOVERNANCE_DEPLOYMENT_PHASES={os.environ.get('GOVERNANCE_DEPLOYMENT_PHASES')!r}: distinct phase names of "
        "lowercase letters, digits and _, comma-separated, in order"
    )
# Monitoring ingest (docs/monitoring.md): the most samples in one batch, and how far in the
# future a sample's timestamp may be (the senders' clocks are not ours).
GOVERNANCE_MONITORING_MAX_BATCH = env_int("GOVERNANCE_MONITORING_MAX_BATCH", 5000, minimum=1)
GOVERNANCE_MONITORING_CLOCK_SKEW = env_int("GOVERNANCE_MONITORING_CLOCK_SKEW", 5, minimum=0)
_cache_url = env_str("CACHE_URL")
# The trading permission (GET /api/deployments/<model>/permission) is cached and forgotten on
# every change (docs/deployments.md). With CACHE_URL (Redis) every process sees a change at
# once, so the TTL is only a safety net (default 60 s: a shorter one sends a share of an order
# path's reads to the full path every few seconds); with the default in-process cache, other
# processes see a change within GOVERNANCE_TRADING_PERMISSION_TTL seconds (default 2).
GOVERNANCE_TRADING_PERMISSION_TTL = env_int("GOVERNANCE_TRADING_PERMISSION_TTL", 60 if _cache_url else 2, minimum=0)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "governance"}
}

# Notifications to approvers and requesters (Django email). The console backend prints them;
# set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST etc. for SMTP.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "model-governance@localhost")
# Where links in notifications point (the admin's address as users reach it).
GOVERNANCE_BASE_URL = env_str("GOVERNANCE_BASE_URL", "http://127.0.0.1:8000").rstrip("/")


def _lockout_parameters(name: str, default: str) -> list[str | list[str]]:
    """``username+ip_address`` (a combination) or ``username,ip_address`` (either), for django-axes."""
    allowed = {"username", "ip_address", "user_agent"}
    parameters: list[str | list[str]] = []
    for item in env_list(name, [default]):
        parts = [part.strip() for part in item.split("+")]
        unknown = sorted(set(parts) - allowed)
        if unknown or not all(parts):
            raise ImproperlyConfigured(
                f"{name}={os.environ.get(name)!r}: {', '.join(unknown) or 'empty part'} is not one of "
                f"{', '.join(sorted(allowed))} (combine with '+', list alternatives with ',')"
            )
        parameters.append(parts[0] if len(parts) == 1 else parts)
    return parameters


# Login lock-out (django-axes), for the admin login and the API token endpoint alike: after
# GOVERNANCE_LOGIN_FAILURE_LIMIT failures for the same username from the same address,
# further attempts are refused for GOVERNANCE_LOGIN_COOLOFF_SECONDS (0: until an administrator
# clears the lock-out). Attempts are kept in the database, so every web process sees them.
AXES_FAILURE_LIMIT = env_int("GOVERNANCE_LOGIN_FAILURE_LIMIT", 5, minimum=1)
_cool_off_seconds = env_int("GOVERNANCE_LOGIN_COOLOFF_SECONDS", 15 * 60, minimum=0)
AXES_COOLOFF_TIME = timedelta(seconds=_cool_off_seconds) if _cool_off_seconds else None
AXES_LOCKOUT_PARAMETERS = _lockout_parameters("GOVERNANCE_LOGIN_LOCKOUT_PARAMETERS", "username+ip_address")
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# Attempts refused during a lock-out do not extend it: it ends one cool-off after it began.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
# The audit log is the record of logins; axes keeps only what the lock-out needs.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
# The same client address as the audit log's (REMOTE_ADDR), whatever else is installed.
AXES_CLIENT_IP_CALLABLE = "governance.authentication.client_address"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

# API tokens (django-rest-knox): random, stored as a SHA-512 digest, expiring, never refreshed.
GOVERNANCE_API_TOKEN_TTL = timedelta(seconds=env_int("GOVERNANCE_API_TOKEN_TTL", 10 * 3600, minimum=60))
REST_KNOX = {
    "TOKEN_TTL": GOVERNANCE_API_TOKEN_TTL,
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",
    "SECURE_HASH_ALGORITHM": "hashlib.sha512",
}

REST_FRAMEWORK = {
    # Token first: its scheme is what a 401's WWW-Authenticate names. Sessions serve the
    # browsable API and Swagger UI for users logged into the admin. No HTTP Basic: a password
    # sent with every request is what the tokens are for avoiding.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.authentication.TokenAuthentication",  # knox's, one query less per request
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "governance.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "governance.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Model-risk governance API",
    "DESCRIPTION": "Model inventory, lifecycle, datasets and (later) audit, policies and reports.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RiskTierEnum": "models_registry.choices.RiskTier",
        "LifecycleStatusEnum": "models_registry.choices.LifecycleStatus",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django-axes narrates every login at INFO; failures and lock-outs (WARNING) are enough,
    # and the audit log has them all.
    "loggers": {"axes": {"level": "WARNING"}},
}
