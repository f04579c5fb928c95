"""Reports (docs/reports.md): request, generate (the Celery job's steps), legal hold, removal.

Every change is one audited transaction with its event: ``report.requested``,
``report.started``, ``report.progressed`` (one per step), ``report.issued`` (with the PDF's
SHA-256, in the same transaction as the row that points to the stored file),
``report.failed``, ``report.legal_hold_set`` / ``_released``, ``report.removed``.
Issued reports are immutable (``Report.save`` refuses, and so do these services); audit
events are never removable at all (the log is append-only), whatever the retention class.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from audit.scope import audited_change
from audit.selectors import sees_all_events
from audit.services import Actor, SystemActor, checkpoint_create, record_event
from governance.errors import Conflict, DomainError, NotPermitted, ServiceUnavailable
from governance.models import Report, ReportStatus
from governance.reports import envelope, registry
from governance.reports.context import BuildContext
from governance.reports.pdf import data_json, require_pdf_libraries, sign_pdf, signing_configured, write_pdfa

logger = logging.getLogger(__name__)

JOB = SystemActor("reports")


class ReportNotFound(DomainError):
    """The subject (or report) does not exist or is outside what the actor may see: the same answer for both."""

    status = 404
    code = "not_found"


# --- Helpers ----------------------------------------------------------------------------------


def _snapshot(report: Report) -> dict[str, Any]:
    return {
        "report_type": report.report_type,
        "model_id": report.model_id,
        "version_id": report.version_id,
        "period_from": envelope.iso(report.period_from),
        "period_to": envelope.iso(report.period_to),
        "status": report.status,
        "progress": report.progress,
        "step": report.step,
        "retention_class": report.retention_class,
        "retain_until": envelope.iso(report.retain_until),
        "legal_hold": report.legal_hold,
    }


def _parse_date(value: Any, field: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        raise ValidationError({field: ["give a date (YYYY-MM-DD), not a date and time"]})
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError({field: [f"{value!r} is not a date (YYYY-MM-DD)"]})


def retention_until(start: dt.datetime, retention_class: str) -> dt.datetime:
    """``start`` plus the class's period (``7y``: the same day seven years on, 28 Feb for 29 Feb)."""
    period = settings.GOVERNANCE_RETENTION_CLASSES[retention_class]
    amount, unit = int(period[:-1]), period[-1]
    if unit == "d":
        return start + dt.timedelta(days=amount)
    try:
        return start.replace(year=start.year + amount)
    except ValueError:
        return start.replace(year=start.year + amount, day=28)


def _require_user(actor: Actor, what: str) -> AbstractBaseUser:
    if not isinstance(actor, AbstractBaseUser) or not actor.is_authenticated:
        raise NotPermitted(f"{what} needs a person, not {actor!r}")
    return actor


# --- Request ----------------------------------------------------------------------------------


def _resolve_subject(
    actor: AbstractBaseUser, report_type: registry.ReportType, model_id: Any, version_id: Any, period: tuple
) -> tuple[Any, Any]:
    from models_registry import selectors as registry_selectors

    kind = report_type.subject
    has_period = period[0] is not None
    if kind in ("none", "period") and model_id not in (None, ""):
        raise ValidationError({"model": [f"report type {report_type.key!r} is not about one model: give no model"]})
    if kind != "version" and version_id not in (None, ""):
        raise ValidationError({"version": [f"report type {report_type.key!r} is not about one version"]})
    if kind == "version" and version_id in (None, ""):
        raise ValidationError({"version": [f"report type {report_type.key!r} needs a version (its id)"]})
    if kind == "model" and model_id in (None, ""):
        raise ValidationError({"model": [f"report type {report_type.key!r} needs a model (its id)"]})
    if kind == "period" and not has_period:
        raise ValidationError({"period_from": [f"report type {report_type.key!r} needs a period (from and to)"]})
    if kind == "model-or-period" and model_id in (None, "") and not has_period:
        raise ValidationError(
            {"model": [f"report type {report_type.key!r} needs a model, a period (from and to), or both"]}
        )

    def _id(value: Any, field: str) -> int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
            raise ValidationError({field: [f"{value!r} is not an id"]})
        number = int(value)
        if not 1 <= number < 2**63:
            raise ValidationError({field: [f"{value!r} is not an id"]})
        return number

    model = version = None
    if version_id not in (None, ""):
        number = _id(version_id, "version")
        version = registry_selectors.model_version_list(user=actor).filter(pk=number).first()
        if version is None:
            raise ReportNotFound(f"no version {number} that you can see", detail={"field": "version"})
        model = version.model
    elif model_id not in (None, ""):
        number = _id(model_id, "model")
        model = registry_selectors.model_list(user=actor).filter(pk=number).first()
        if model is None:
            raise ReportNotFound(f"no model {number} that you can see", detail={"field": "model"})
    return model, version


@audited_change()
def _create(*, actor: AbstractBaseUser, **fields: Any) -> Report:
    report = Report(status=ReportStatus.QUEUED, requested_by=actor, requested_at=timezone.now(), **fields)
    report.full_clean(exclude=["file"])
    report.save()
    record_event(actor=actor, action="report.requested", target=report, after=_snapshot(report))
    return report


def report_request(
    *,
    actor: Actor,
    report_type: str,
    model_id: int | str | None = None,
    version_id: int | str | None = None,
    period_from: dt.date | str | None = None,
    period_to: dt.date | str | None = None,
    retention_class: str | None = None,
) -> Report:
    """Ask for a report; it is stored queued (``report.requested``) and its job is sent once
    that has committed (in eager mode it has run by the time this returns).

    A type with a default period (``default_period_days``: the self-assessment's 365) requested
    with neither end of a period gets the last that many UTC days ending today, inclusive.

    Refused, with nothing stored: an unknown type, a subject the type does not take or lacks,
    a bad or reversed period, an unknown retention class (``ValidationError`` naming the
    field); a subject the actor cannot see (404); a missing ``governance.request_report``, or
    for types over the whole log (the audit trail) a missing ``audit.view_event`` (403).
    """
    user = _require_user(actor, "requesting a report")
    if not user.has_perm("governance.request_report"):
        raise NotPermitted(f"{user.get_username()} may not request reports (needs governance.request_report)")
    chosen = registry.get(report_type) if isinstance(report_type, str) else None
    if chosen is None:
        known = ", ".join(sorted(registry.report_types()))
        raise ValidationError({"report_type": [f"unknown report type {report_type!r} (known: {known})"]})
    start, end = _parse_date(period_from, "period_from"), _parse_date(period_to, "period_to")
    today = timezone.now().astimezone(dt.UTC).date()
    if start is None and end is None and chosen.default_period_days:
        # A type with a default period (the annual self-assessment): the last N UTC days ending today.
        start, end = today - dt.timedelta(days=chosen.default_period_days - 1), today
    if (start is None) != (end is None):
        missing = "period_to" if end is None else "period_from"
        raise ValidationError({missing: ["a period needs both period_from and period_to"]})
    if start is not None and start > end:
        raise ValidationError({"period_from": [f"period_from {start} is after period_to {end}"]})
    if start is not None and start > today:
        raise ValidationError({"period_from": [f"period_from {start} is in the future (today is {today} UTC)"]})
    retention = retention_class or settings.GOVERNANCE_DEFAULT_RETENTION_CLASS
    if retention not in settings.GOVERNANCE_RETENTION_CLASSES:
        known = ", ".join(sorted(settings.GOVERNANCE_RETENTION_CLASSES))
        raise ValidationError({"retention_class": [f"unknown retention class {retention!r} (known: {known})"]})
    model, version = _resolve_subject(user, chosen, model_id, version_id, (start, end))
    if chosen.requires_full_log and not sees_all_events(user=user):
        raise NotPermitted(
            f"{user.get_username()} may not request a {chosen.key} report: it reads the whole audit log "
            "(needs audit.view_event)"
        )
    report = _create(
        actor=user,
        report_type=chosen.key,
        model=model,
        version=version,
        period_from=start,
        period_to=end,
        retention_class=retention,
    )
    pk = report.pk
    transaction.on_commit(lambda: _enqueue(pk))
    report.refresh_from_db()
    return report


def _enqueue(report_id: int) -> None:
    from celery import current_app
    from kombu.exceptions import OperationalError

    from governance.tasks import generate_report

    if current_app.conf.task_always_eager:
        generate_report.apply_async(args=[report_id])
        return
    try:
        generate_report.apply_async(args=[report_id])
    except (OperationalError, ConnectionError, OSError, TimeoutError) as exc:
        report_fail(report_id=report_id, reason=f"the job queue could not be reached: {exc}")
        raise ServiceUnavailable(
            f"the job queue is unavailable; report {report_id} was not started (marked failed). Try again later.",
            detail={"report": report_id},
        ) from exc


# --- The job ----------------------------------------------------------------------------------


@audited_change()
def _start(*, report_id: int) -> Report | None:
    report = Report.objects.select_for_update().get(pk=report_id)
    if report.status != ReportStatus.QUEUED:
        return None  # a duplicate or redelivered message: the first delivery owns the job
    before = _snapshot(report)
    report.status, report.progress, report.step, report.started_at = ReportStatus.RUNNING, 1, "started", timezone.now()
    report.save()
    record_event(actor=JOB, action="report.started", target=report, before=before, after=_snapshot(report))
    return report


@audited_change()
def report_progress(*, report_id: int, percent: int, step: str) -> None:
    """One event per step of the job (the job reports only steps, never a tight loop)."""
    report = Report.objects.select_for_update().get(pk=report_id)
    if report.status != ReportStatus.RUNNING or step == report.step:
        return
    before = {"progress": report.progress, "step": report.step}
    report.progress, report.step = max(report.progress, min(percent, 99)), step[:200]
    report.save(update_fields=["progress", "step"])
    record_event(
        actor=JOB,
        action="report.progressed",
        target=report,
        before=before,
        after={"progress": report.progress, "step": report.step},
    )


@audited_change()
def report_fail(*, report_id: int, reason: str) -> Report:
    """End a queued or running report failed with ``reason`` (``report.failed``); a finished one is left alone."""
    report = Report.objects.select_for_update().get(pk=report_id)
    if report.status in (ReportStatus.SUCCEEDED, ReportStatus.FAILED):
        return report
    before = _snapshot(report)
    report.status, report.error, report.finished_at = ReportStatus.FAILED, reason[:5000], timezone.now()
    report.step = "failed"
    report.save()
    record_event(
        actor=JOB, action="report.failed", target=report, before=before, after=_snapshot(report), reason=reason
    )
    return report


def _store(pdf: bytes, sha256: str) -> str:
    """Content-addressed, written before the issuing transaction (decision 0004): a rollback
    leaves at most an unreferenced copy of the same bytes, never a row without its file."""
    name = f"reports/{sha256}.pdf"
    if not default_storage.exists(name):
        stored = default_storage.save(name, ContentFile(pdf))
        if stored != name:
            default_storage.delete(stored)
            raise RuntimeError(f"the storage saved the report as {stored!r}, not {name!r}")
    return name


@audited_change()
def _issue(
    *, report_id: int, checkpoint: Any, pdf: bytes, name: str, pages: int, data_sha256: str, signer: str
) -> Report:
    report = Report.objects.select_for_update().get(pk=report_id)
    if report.status != ReportStatus.RUNNING:
        raise Conflict(f"report {report_id} is {report.status}, not running: it cannot be issued")
    before = _snapshot(report)
    now = timezone.now()
    report.status, report.progress, report.step, report.finished_at = ReportStatus.SUCCEEDED, 100, "issued", now
    report.file.name = name
    report.sha256 = hashlib.sha256(pdf).hexdigest()
    report.size, report.page_count, report.data_sha256 = len(pdf), pages, data_sha256
    report.signed, report.signer_fingerprint = bool(signer), signer
    report.checkpoint = checkpoint
    report.retain_until = retention_until(now, report.retention_class)
    report.save()
    record_event(
        actor=JOB,
        action="report.issued",
        target=report,
        before=before,
        after={
            **_snapshot(report),
            "sha256": report.sha256,
            "size": report.size,
            "page_count": pages,
            "data_sha256": data_sha256,
            "signed": report.signed,
            "signer_fingerprint": signer,
            "checkpoint_id": checkpoint.pk,
            "checkpoint_tree_size": checkpoint.tree_size,
            "checkpoint_root_hash": checkpoint.root_hash,
            "audit_retention_class": settings.GOVERNANCE_AUDIT_RETENTION_CLASS,
        },
    )
    return report


def report_generate(*, report_id: int) -> Report:
    """The job: bind to a new signed checkpoint, build the data, render, write PDF/A-3b with the
    data embedded, sign (when configured), store, and issue. Any error ends the report failed
    with the reason; a report not queued (a redelivery) is returned as it is."""
    report = _start(report_id=report_id)
    if report is None:
        return Report.objects.get(pk=report_id)
    try:
        # WeasyPrint loads Pango when imported (render is imported below, not at the top): a
        # machine without it runs everything else and fails a report naming the library and the fix.
        require_pdf_libraries()
        report_type = registry.get(report.report_type)
        if report_type is None:
            raise ValueError(f"report type {report.report_type!r} is no longer registered")

        def progress(percent: int, step: str) -> None:
            report_progress(report_id=report_id, percent=percent, step=step)

        progress(5, "binding to the audit log (new signed checkpoint)")
        # A checkpoint of its own: the report names the log exactly as it was when generated,
        # including its own request (decision 0013).
        checkpoint = checkpoint_create(actor=JOB)
        ctx = BuildContext(report=report, checkpoint=checkpoint, generated_at=timezone.now(), progress=progress)
        progress(10, "building the data")
        data = envelope.report_data(ctx, report_type)
        progress(70, "rendering the pages")
        from governance.reports.render import render_document, render_html

        document = render_document(render_html(report_type, data))
        progress(85, "writing PDF/A-3b")
        embedded = data_json(data)
        pdf = write_pdfa(document, data=data, attachments=ctx.attachments, generated_at=ctx.generated_at)
        signer = ""
        if signing_configured():
            progress(92, "signing (PAdES)")
            signature = sign_pdf(pdf, reason=f"{report_type.title}, {data['report']['reference']}")
            pdf, signer = signature.pdf, signature.signer_fingerprint
        sha256 = hashlib.sha256(pdf).hexdigest()
        name = _store(pdf, sha256)
        return _issue(
            report_id=report_id,
            checkpoint=checkpoint,
            pdf=pdf,
            name=name,
            pages=len(document.pages),
            data_sha256=hashlib.sha256(embedded).hexdigest(),
            signer=signer,
        )
    except Exception as exc:
        logger.exception("report %s failed", report_id)
        return report_fail(report_id=report_id, reason=f"{type(exc).__name__}: {exc}")


# --- Retention and legal hold -------------------------------------------------------------------


def _hold_actor(actor: Actor, what: str) -> AbstractBaseUser:
    user = _require_user(actor, what)
    if not user.has_perm("governance.hold_report"):
        raise NotPermitted(f"{user.get_username()} may not {what} (needs governance.hold_report)")
    return user


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationError({"reason": ["a reason is required (recorded in the audit log)"]})
    return text


@audited_change()
def report_legal_hold_set(*, actor: Actor, report: Report, reason: str) -> Report:
    """Put a report on legal hold (compliance): it cannot be removed, whatever its retention."""
    user = _hold_actor(actor, "put reports on legal hold")
    reason = _reason(reason)
    report = Report.objects.select_for_update().get(pk=report.pk)
    if report.legal_hold:
        raise Conflict(f"report {report.pk} is already on legal hold ({report.legal_hold_reason})")
    before = _snapshot(report)
    report.legal_hold, report.legal_hold_reason = True, reason
    report.legal_hold_by, report.legal_hold_at = user, timezone.now()
    report.save()
    record_event(
        actor=user, action="report.legal_hold_set", target=report, before=before, after=_snapshot(report), reason=reason
    )
    return report


@audited_change()
def report_legal_hold_release(*, actor: Actor, report: Report, reason: str) -> Report:
    """Release a legal hold (compliance); retention still applies."""
    user = _hold_actor(actor, "release legal holds")
    reason = _reason(reason)
    report = Report.objects.select_for_update().get(pk=report.pk)
    if not report.legal_hold:
        raise Conflict(f"report {report.pk} is not on legal hold")
    before = _snapshot(report)
    report.legal_hold, report.legal_hold_reason = False, ""
    report.legal_hold_by, report.legal_hold_at = user, timezone.now()
    report.save()
    record_event(
        actor=user,
        action="report.legal_hold_released",
        target=report,
        before=before,
        after=_snapshot(report),
        reason=reason,
    )
    return report


@audited_change()
def report_remove(*, actor: Actor, report: Report, reason: str) -> None:
    """Remove a report once nothing keeps it: refused (409) while it is on legal hold, within
    its retention period, or still queued or running. Its audit events stay: the log is
    append-only and is never removed, whatever the retention class."""
    user = _hold_actor(actor, "remove reports")
    reason = _reason(reason)
    report = Report.objects.select_for_update().get(pk=report.pk)
    if report.legal_hold:
        raise Conflict(f"report {report.pk} is on legal hold ({report.legal_hold_reason}): it cannot be removed")
    now = timezone.now()
    if report.retain_until is not None and report.retain_until > now:
        raise Conflict(
            f"report {report.pk} is retained until {report.retain_until:%Y-%m-%d} "
            f"(retention class {report.retention_class}): it cannot be removed"
        )
    if report.status in (ReportStatus.QUEUED, ReportStatus.RUNNING):
        raise Conflict(f"report {report.pk} is {report.status}: wait until it ends")
    name, sha256, pk = report.file.name, report.sha256, report.pk
    record_event(actor=user, action="report.removed", target=report, before=_snapshot(report), reason=reason)
    report.delete()
    if name and not Report.objects.filter(sha256=sha256).exclude(pk=pk).exists():
        transaction.on_commit(lambda: default_storage.delete(name))


def report_file(*, report: Report) -> bytes:
    """The stored PDF, checked against its recorded SHA-256 (a changed file is refused, never served)."""
    if report.status != ReportStatus.SUCCEEDED:
        raise Conflict(f"report {report.pk} is {report.status}: there is no file to download")
    with default_storage.open(report.file.name, "rb") as handle:
        content = handle.read()
    if hashlib.sha256(content).hexdigest() != report.sha256:
        raise Conflict(f"the stored file of report {report.pk} does not match its recorded SHA-256: it was altered")
    return content
