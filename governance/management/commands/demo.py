"""python manage.py demo: migrate, seed a realistic inventory, and serve the admin."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import signing
from audit.services import SystemActor, checkpoint_if_grown
from audit.verify import verify_log
from governance.demo import assessments as demo_assessments
from governance.demo import reports as demo_reports
from governance.demo import seed
from governance.demo import signoffs as demo_signoffs


class Command(BaseCommand):
    help = (
        "Set up the demo organisation (users per role, desks), register real NVDA/ORCL price datasets, "
        "train one scikit-learn model per complexity class, move them through the first lifecycle steps, "
        "run the sign-off scenarios and a full risk assessment of every model through Celery, "
        "deploy a retrained version in phases and feed it simulated live data until the anomaly rules suspend "
        "it and roll it back, "
        "write var/demo/summary.json, then serve the admin on 127.0.0.1:8000. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Seed and exit without serving the admin.")
        parser.add_argument("--addrport", default="127.0.0.1:8000", help="Where to serve (default 127.0.0.1:8000).")

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("DEMO_PASSWORD") or None
        if password:
            # Checked before anything is written: the user services refuse a weak password.
            try:
                password_validation.validate_password(password)
            except ValidationError as exc:
                raise CommandError(f"DEMO_PASSWORD is refused: {' '.join(exc.messages)}") from exc
        call_command("migrate", interactive=False, verbosity=0)
        report = seed.run(password_from_env=password)
        summary_path = Path(settings.VAR_DIR) / "demo" / "summary.json"
        summary = seed.write_summary(summary_path)

        out = self.stdout
        out.write(self.style.SUCCESS(f"Demo ready: {len(report.created)} new objects."))
        for line in report.created:
            out.write(f"  + {line}")
        out.write("\nInventory:")
        for m in summary["models"]:
            out.write(
                f"  {m['name']:<30} {m['type']:<20} {m['complexity']:<9} tier {m['risk_tier']}  {m['lifecycle_status']}"
            )
        out.write("\nSign-off requests (policies in force, approvers named by them):")
        for line in demo_signoffs.describe(report.signoffs):
            out.write(line)
        where = "eagerly in this process" if settings.CELERY_TASK_ALWAYS_EAGER else "by the Celery worker"
        out.write(
            f"\nRisk assessments (full suite, default parameters, requested by vera, run {where}; "
            "details in the admin and at /api/assessments/):"
        )
        for line in demo_assessments.describe(report.assessments):
            out.write(line)
        out.write(
            "\nPhased deployment, live monitoring and automatic rollback (simulated live data from real NVDA "
            "rows; docs/simulation.md):"
        )
        for line in report.deployments:
            out.write(f"  {line}")
        failed = [d["name"] for d in summary["datasets"] if d["validation"] != "passed"]
        out.write(f"Datasets: {len(summary['datasets'])} registered, {len(failed)} failing their rules.")
        out.write(f"Summary written to {summary_path}")
        signing.generate_key_file()
        out.write(
            "\nReports (one of each type, requested by carl and issued by the report job; a rerun reuses them; "
            f"copies in {demo_reports.reports_dir()}):"
        )
        for line in demo_reports.run():
            out.write(f"  {line}")
        # A new checkpoint only when the log grew since the last one (a rerun adds nothing).
        checkpoint_if_grown(actor=SystemActor("demo"))
        audit = verify_log()
        if audit.ok:
            out.write(
                f"Audit log verified: {audit.size} events, Merkle root {audit.root}, "
                f"{audit.checkpoints_checked} signed checkpoint records checked"
            )
        else:
            out.write(self.style.ERROR(f"Audit log verification FAILED: first bad seq: {audit.first_bad_seq}"))
        out.write(
            f"\nUsers: alice, bob (model owners), vera (validator), carl (compliance), max (risk manager), "
            f"rita (regulator), "
            f"ian (internal auditor), admin (superuser)\nPassword ({report.password_source}): {report.password}\n"
            f"Also saved in {report.credentials_file}"
        )
        if options["no_serve"]:
            return
        out.write(self.style.SUCCESS(f"\nServing the admin on http://{options['addrport']}/admin/ (Ctrl-C to stop)"))
        call_command("runserver", options["addrport"], use_reloader=False)
