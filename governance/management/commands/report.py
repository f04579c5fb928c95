"""python manage.py report TYPE [SUBJECT] [--from DATE --to DATE] --user NAME --out FILE
(or ``report --demo-certificate``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance import report_services
from governance.errors import DomainError
from governance.models import Report, ReportStatus
from governance.reports import registry
from governance.reports.pdf import certificate_fingerprint
from governance.reports.signing_cert import generate_demo_certificate
from models_registry.models import Model, ModelVersion

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class Command(BaseCommand):
    help = (
        "Generate a report through its Celery job (eager without a broker) and write the PDF to --out. "
        "TYPE is a report type (e.g. audit-trail); SUBJECT a model (id or name) or, for version reports, a "
        "version id. --from/--to give a period (UTC days, inclusive); without them, self-assessment covers the last "
        "12 months ending today (today - 365 days + 1 to today, UTC). The report is requested as --user "
        "(permissions and scope apply) and stored like any other. Prints the report id, the file's SHA-256 "
        "and its page count. Exit status: 0 issued, 1 the job failed (the reason is printed), 2 bad input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "type", nargs="?", default=None, help=f"Report type: {', '.join(sorted(registry.report_types()))}."
        )
        parser.add_argument("subject", nargs="?", default=None, help="Model id or name, or version id.")
        parser.add_argument("--from", dest="period_from", default=None, help="First day, YYYY-MM-DD (UTC).")
        parser.add_argument("--to", dest="period_to", default=None, help="Last day, YYYY-MM-DD (UTC), inclusive.")
        parser.add_argument("--user", default=None, help="Request the report as this user (required).")
        parser.add_argument("--out", type=Path, default=None, help="Where to write the PDF (required).")
        parser.add_argument("--retention-class", default=None, help="Retention class (default: the configured one).")
        parser.add_argument("--timeout", type=int, default=600, help="Seconds to wait for the job (default 600).")
        parser.add_argument(
            "--demo-certificate",
            action="store_true",
            help="Instead: write a self-signed report signing key and certificate under var/report-signing/ "
            "(demo only) and print the settings that use them.",
        )

    def _bad(self, message: str) -> CommandError:
        return CommandError(message, returncode=EXIT_BAD_INPUT)

    def _subject(self, kind: str, ref: str | None) -> dict[str, Any]:
        if ref is None:
            return {}
        if kind == "version":
            if not (ref.isascii() and ref.isdigit()):
                raise self._bad(f"a version is named by its id, not {ref!r}")
            if not ModelVersion.objects.filter(pk=int(ref)).exists():
                raise self._bad(f"no version {ref}")
            return {"version_id": int(ref)}
        model = Model.objects.filter(pk=int(ref)).first() if ref.isascii() and ref.isdigit() and len(ref) < 19 else None
        model = model or Model.objects.filter(name=ref).first()
        if model is None:
            raise self._bad(f"no model {ref!r} (give its id or its name)")
        return {"model_id": model.pk}

    def handle(self, *args: Any, **options: Any) -> None:
        if options["demo_certificate"]:
            key_path, cert_path = generate_demo_certificate(Path(settings.VAR_DIR) / "report-signing")
            self.stdout.write(
                f"GOVERNANCE_REPORT_SIGNING_KEY={key_path}\nGOVERNANCE_REPORT_SIGNING_CERT={cert_path}\n"
                f"certificate SHA-256 {certificate_fingerprint(cert_path)} (self-signed: for demonstrations only)"
            )
            return
        missing = [flag for flag, key in (("TYPE", "type"), ("--user", "user"), ("--out", "out")) if not options[key]]
        if missing:
            raise self._bad(f"{', '.join(missing)} required")
        report_type = registry.get(options["type"])
        if report_type is None:
            known = ", ".join(sorted(registry.report_types()))
            raise self._bad(f"unknown report type {options['type']!r} (known: {known})")
        user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise self._bad(f"no active user {options['user']!r}")
        out: Path = options["out"]
        if out.exists() and out.is_dir():
            raise self._bad(f"--out {out} is a directory: give a file name")
        try:
            report = report_services.report_request(
                actor=user,
                report_type=report_type.key,
                period_from=options["period_from"],
                period_to=options["period_to"],
                retention_class=options["retention_class"],
                **self._subject(report_type.subject, options["subject"]),
            )
        except ValidationError as exc:
            raise self._bad("; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items())) from exc
        except DomainError as exc:
            raise self._bad(exc.message) from exc
        report = self._wait(report, options["timeout"])
        if report.status != ReportStatus.SUCCEEDED:
            raise CommandError(f"report {report.pk} {report.status}: {report.error}", returncode=EXIT_FAILED)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(report_services.report_file(report=report))
        self.stdout.write(
            f"report {report.pk} issued: {out}\nsha256 {report.sha256}\npages {report.page_count}\n"
            f"signed {'yes (' + report.signer_fingerprint + ')' if report.signed else 'no'}"
        )

    def _wait(self, report: Report, timeout: int) -> Report:
        deadline = time.monotonic() + timeout
        while True:
            report.refresh_from_db()
            if report.status in (ReportStatus.SUCCEEDED, ReportStatus.FAILED):
                return report
            if time.monotonic() > deadline:
                raise CommandError(
                    f"report {report.pk} is still {report.status} ({report.progress}% {report.step}) after {timeout} s",
                    returncode=EXIT_FAILED,
                )
            time.sleep(0.5)
