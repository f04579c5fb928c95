"""The part of every report's data that is not the builder's: cover facts and the audit-log binding.

``report_data`` returns the one dict that is both rendered and embedded as ``report-data.json``:
``{"report": cover facts, "log": the checkpoint it is bound to, "body": the builder's dict}``.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from typing import Any

from django.conf import settings

from audit import hashing, signing
from audit.selectors import checkpoint_public_key_pem
from governance.reports.context import BuildContext
from governance.reports.registry import ReportType

DATA_FORMAT = "model-risk-governance report data"
DATA_VERSION = 1


def system_version() -> str:
    try:
        return metadata.version("model-risk-governance")
    except metadata.PackageNotFoundError:
        return "unknown"


def iso(value: Any) -> str | None:
    """UTC timestamps as the audit log writes them (microseconds, ``Z``); dates as ISO dates."""
    if value is None:
        return None
    if hasattr(value, "hour"):
        return hashing.format_timestamp(value)
    return value.isoformat()


def subject(report: Any) -> dict[str, Any]:
    if report.version_id is not None:
        version = report.version
        return {
            "kind": "version",
            "model_id": version.model_id,
            "model": version.model.name,
            "version_id": version.pk,
            "version": version.version,
            "label": f"{version.model.name} {version.version}",
        }
    if report.model_id is not None:
        return {"kind": "model", "model_id": report.model_id, "model": report.model.name, "label": report.model.name}
    return {"kind": "none", "label": "all models"}


def period(report: Any) -> dict[str, Any]:
    label = "entire record"
    if report.period_from and report.period_to:
        label = f"{report.period_from.isoformat()} to {report.period_to.isoformat()} (UTC, inclusive)"
    return {"from": iso(report.period_from), "to": iso(report.period_to), "label": label}


def checkpoint_binding(checkpoint: Any) -> dict[str, Any]:
    """The signed tree head the report is bound to, with what a reader needs to check it."""
    head = signing.SignedTreeHead(
        checkpoint.tree_size, checkpoint.root_hash, checkpoint.timestamp, checkpoint.key_id, checkpoint.signature
    )
    message = signing.signed_message(tree_size=head.tree_size, root_hash=head.root_hash, timestamp=head.timestamp)
    public_key_pem = checkpoint_public_key_pem(key_id=head.key_id) or ""
    return {
        "checkpoint_id": checkpoint.pk,
        **head.as_json(),
        "origin": signing.ORIGIN,
        "signed_message": message.decode("utf-8"),
        "signature_algorithm": "Ed25519",
        "public_key_pem": public_key_pem,
        # key_id is already SHA-256 of the raw public key: the fingerprint published out of band.
        "public_key_fingerprint": head.key_id,
        "retention_class": settings.GOVERNANCE_AUDIT_RETENTION_CLASS,
        "retention_period": settings.GOVERNANCE_RETENTION_CLASSES[settings.GOVERNANCE_AUDIT_RETENTION_CLASS],
    }


def report_data(ctx: BuildContext, report_type: ReportType) -> dict[str, Any]:
    report = ctx.report
    body = report_type.builder(ctx)
    return {
        "format": DATA_FORMAT,
        "version": DATA_VERSION,
        "report": {
            "id": report.pk,
            "reference": f"RPT-{report.pk:06d}",
            "type": report_type.key,
            "title": report_type.title,
            "subject": subject(report),
            "period": period(report),
            "requested_by": report.requested_by.get_username(),
            "requested_at": iso(report.requested_at),
            "generated_at": iso(ctx.generated_at),
            "system": "model-risk-governance",
            "system_version": system_version(),
            "references": list(report_type.references),
            "retention_class": report.retention_class,
            "retention_period": settings.GOVERNANCE_RETENTION_CLASSES[report.retention_class],
        },
        "log": checkpoint_binding(ctx.checkpoint),
        "body": body,
    }


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
