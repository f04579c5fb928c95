"""The demo's reports: one of each registered type, requested by carl (compliance) through the
report services, issued by the job like any other, and copied to ``var/reports/<type>.pdf``.

Signed with the demo's self-signed certificate (``var/report-signing/``, made once) unless the
operator configured one. A rerun reuses the issued report of the same type and subject instead
of issuing a new one, so a second demo run adds nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test.utils import override_settings
from django.utils import timezone

from governance import report_services
from governance.models import Report, ReportStatus
from governance.reports import registry
from governance.reports.pdf import INSTALL_HINT, certificate_fingerprint, missing_pdf_libraries, signing_configured
from governance.reports.signing_cert import generate_demo_certificate
from models_registry.models import Model, ModelVersion

REQUESTER = "carl"
MODEL = "nvda-direction-logistic"
# The version the demo assessed and runs now, and the retrained one whose phased deployment,
# alert, kill switch and rollback the demo plays out.
ASSESSED_VERSION = "1.0.0"
DEPLOYED_VERSION = "1.1.0"
VERSION_FOR_TYPE = {"deployment-record": DEPLOYED_VERSION}
WAIT_SECONDS = 600


def reports_dir() -> Path:
    return Path(settings.VAR_DIR) / "reports"


@contextmanager
def _signing() -> Iterator[str]:
    """The configured certificate, or the demo's own (made once under var/report-signing/)."""
    if signing_configured():
        yield "configured certificate"
        return
    directory = Path(settings.VAR_DIR) / "report-signing"
    key_path, cert_path = directory / "report-signing-key.pem", directory / "report-signing-cert.pem"
    if not (key_path.exists() and cert_path.exists()):
        key_path, cert_path = generate_demo_certificate(directory)
    with override_settings(GOVERNANCE_REPORT_SIGNING_KEY=str(key_path), GOVERNANCE_REPORT_SIGNING_CERT=str(cert_path)):
        yield f"demo self-signed certificate {cert_path} (SHA-256 {certificate_fingerprint(cert_path)})"


def _subject(report_type: registry.ReportType) -> dict[str, Any] | None:
    """The request's subject for this type in the demo, or None when the demo has none to give."""
    model = Model.objects.filter(name=MODEL).first()
    if report_type.subject == "none":
        return {}
    if report_type.subject == "period":
        today = timezone.now().date()
        return {"period_from": today - dt.timedelta(days=364), "period_to": today}
    if model is None:
        return None
    if report_type.subject in ("model", "model-or-period"):
        return {"model_id": model.pk}
    label = VERSION_FOR_TYPE.get(report_type.key, ASSESSED_VERSION)
    version = ModelVersion.objects.filter(model=model, version=label).first()
    return {"version_id": version.pk} if version else None


def _existing(report_type: str, subject: dict[str, Any]) -> Report | None:
    # A version's report also names its model: the version alone identifies the subject.
    same = {"version_id": subject["version_id"]} if "version_id" in subject else {"model_id": subject.get("model_id")}
    return (
        Report.objects.filter(
            report_type=report_type,
            status=ReportStatus.SUCCEEDED,
            period_from=subject.get("period_from"),
            period_to=subject.get("period_to"),
            **same,
        )
        .order_by("-pk")
        .first()
    )


def _wait(report: Report) -> Report:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        report.refresh_from_db()
        if report.status in (ReportStatus.SUCCEEDED, ReportStatus.FAILED) or time.monotonic() > deadline:
            return report
        time.sleep(0.5)


def run() -> list[str]:
    """Issue (or reuse) one report of each registered type and copy it to var/reports/; the lines to print."""
    problem = missing_pdf_libraries()
    if problem is not None:
        # Requested anyway, each would end failed and a rerun would request them again.
        return [f"none issued: {problem}; to install them, {INSTALL_HINT}"]
    requester = get_user_model().objects.get(username=REQUESTER)
    out = reports_dir()
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    with _signing() as signer:
        lines.append(f"signed with the {signer}")
        for key, report_type in sorted(registry.report_types().items()):
            subject = _subject(report_type)
            if subject is None:
                lines.append(f"{key}: skipped, the demo has no {report_type.subject} to report on")
                continue
            report = _existing(key, subject)
            how = "reused"
            if report is None:
                started = time.monotonic()
                report = _wait(report_services.report_request(actor=requester, report_type=key, **subject))
                how = f"issued in {time.monotonic() - started:.1f} s"
            if report.status != ReportStatus.SUCCEEDED:
                lines.append(f"{key}: report {report.pk} {report.status}: {report.error or report.step}")
                continue
            path = out / f"{key}.pdf"
            path.write_bytes(report_services.report_file(report=report))
            lines.append(
                f"{key}: report {report.pk} ({how}) -> {path}: {report.page_count} pages, "
                f"{'signed' if report.signed else 'unsigned'}, SHA-256 {report.sha256}"
            )
    return lines
