"""The outcome of the last full verification of the audit log, kept where a page view can read it.

Verifying recomputes every event, which is far too slow to do per admin page view on a
large log, so the admin shows the last recorded run instead. ``run_verification`` (called
by the admin's "Verify now" button, and meant for ``audit_verify`` and scheduled jobs)
runs ``audit.verify.verify_log`` and records its result in two places:

- the Django cache, which is shared between processes and hosts when a shared cache
  (Redis, Memcached, database) is configured;
- a small JSON file beside the checkpoint file, because the default cache is per-process
  local memory, where a run from a command would never reach the web processes.

``last_verification`` returns the newer of the two.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from audit.verify import Verification, verify_log

logger = logging.getLogger(__name__)

CACHE_KEY = "audit:last-verification"
FILE_NAME = "last-verification.json"
# How many problems to keep: the first bad seq is what matters, and the record stays small.
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class VerificationStatus:
    ok: bool
    size: int
    root: str
    first_bad_seq: int | None
    checked_at: dt.datetime
    duration_seconds: float
    checkpoints_checked: int = 0
    problems: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["checked_at"] = self.checked_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VerificationStatus:
        return cls(**{**data, "checked_at": dt.datetime.fromisoformat(data["checked_at"])})

    def summary(self) -> str:
        """One line for people: what was verified and when, or where it first failed."""
        at = timezone.localtime(self.checked_at).strftime("%Y-%m-%d %H:%M:%S %Z")
        if self.error:
            return f"FAILED: verification could not finish at {at}: {self.error}"
        if self.first_bad_seq is not None:
            return f"FAILED: first bad seq {self.first_bad_seq} (verified at {at})"
        if self.problems or self.unverifiable:
            # The chain and tree held, but something could not be checked (e.g. no key for
            # the checkpoint signatures), so this is not a pass.
            return f"INCOMPLETE: {self.size} events, root {self.root}, at {at}; " + "; ".join(
                self.problems + self.unverifiable
            )
        return f"Verified: {self.size} events, root {self.root}, at {at}"


def _file_path() -> Path:
    return Path(settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE).with_name(FILE_NAME)


def _write_file(path: Path, text: str) -> None:
    # Write then rename, so a reader never sees half a record.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".last-verification-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record(
    result: Verification, *, checked_at: dt.datetime, duration_seconds: float, error: str = ""
) -> VerificationStatus:
    """Store the outcome of a verification run as the latest one."""
    status = VerificationStatus(
        ok=result.ok and not error,
        size=result.size,
        root=result.root,
        first_bad_seq=result.first_bad_seq,
        checked_at=checked_at,
        duration_seconds=round(duration_seconds, 3),
        checkpoints_checked=result.checkpoints_checked,
        problems=list(result.problems[:MAX_PROBLEMS]),
        unverifiable=list(result.unverifiable[:MAX_PROBLEMS]),
        error=error,
    )
    data = status.as_json()
    cache.set(CACHE_KEY, data, timeout=None)
    try:
        _write_file(_file_path(), json.dumps(data))
    except OSError:
        # The cache copy is still there; a read-only var/ must not make verification fail.
        logger.exception("could not write the audit verification status file")
    return status


def run_verification() -> VerificationStatus:
    """Verify the whole log now and record the outcome.

    A verifier that crashes is recorded as a failure rather than leaving the previous
    (perhaps green) status on show.
    """
    checked_at = timezone.now()
    start = time.monotonic()
    error = ""
    try:
        result = verify_log()
    except Exception as exc:
        logger.exception("audit log verification could not finish")
        result, error = Verification(), repr(exc)
    return record(result, checked_at=checked_at, duration_seconds=time.monotonic() - start, error=error)


def _from_file() -> VerificationStatus | None:
    try:
        return VerificationStatus.from_json(json.loads(_file_path().read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError):
        logger.warning("unreadable audit verification status file %s", _file_path())
        return None


def _from_cache() -> VerificationStatus | None:
    data = cache.get(CACHE_KEY)
    if data is None:
        return None
    try:
        return VerificationStatus.from_json(data)
    except (ValueError, TypeError, KeyError):
        return None


def last_verification() -> VerificationStatus | None:
    """The most recent recorded verification, or ``None`` if none was recorded."""
    found = [s for s in (_from_cache(), _from_file()) if s is not None]
    return max(found, key=lambda s: s.checked_at) if found else None
