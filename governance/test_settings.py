"""Test overrides: as few as possible (fast hasher, locmem files under a temp dir)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use-000000")
os.environ.setdefault("GOVERNANCE_VAR_DIR", tempfile.mkdtemp(prefix="governance-test-var-"))

from governance.settings import *  # noqa: F403
from governance.settings import VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
# Integration tests switch eagerness off for their own duration (tests/conftest.py).
CELERY_TASK_ALWAYS_EAGER = True
MEDIA_ROOT = Path(VAR_DIR) / "media"
