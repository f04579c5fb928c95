"""python manage.py assess VERSION [--kind K] [--param key=value ...] [--wait] [--user NAME]."""

from __future__ import annotations

import json
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import SystemActor
from governance.errors import DomainError
from models_registry import services
from models_registry.models import AssessmentKind, ModelVersion, RiskAssessment

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _value(text: str) -> Any:
    """A parameter's value as JSON (numbers, true/false, quoted strings), else the plain text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class Command(BaseCommand):
    help = (
        "Request a risk assessment of a model version (its id, or MODEL-NAME:VERSION-LABEL). Prints the "
        "assessment's id and whether it was created or an existing one with the same inputs was reused. "
        "With --wait, waits until it ends and prints its status, metrics and findings. Exit status: 0 "
        "succeeded (or queued without --wait), 1 failed or cancelled, 2 bad input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help="Version id, or MODEL-NAME:VERSION-LABEL.")
        parser.add_argument("--kind", default=AssessmentKind.FULL, choices=AssessmentKind.values)
        parser.add_argument(
            "--param", action="append", default=[], metavar="KEY=VALUE", help="A parameter (repeatable)."
        )
        parser.add_argument("--wait", action="store_true", help="Wait until the assessment ends.")
        parser.add_argument("--timeout", type=float, default=3600.0, help="Seconds to wait at most (with --wait).")
        parser.add_argument("--user", help="Request as this user (permissions and scope apply); default: system.")

    def _fail(self, message: str) -> CommandError:
        return CommandError(message, returncode=EXIT_BAD_INPUT)

    def _version(self, ref: str) -> ModelVersion:
        if ref.isdigit():
            version = ModelVersion.objects.filter(pk=int(ref)).first()
        elif ":" in ref:
            name, label = ref.rsplit(":", 1)
            version = ModelVersion.objects.filter(model__name=name, version=label).first()
        else:
            raise self._fail(f"{ref!r} is neither a version id nor MODEL-NAME:VERSION-LABEL")
        if version is None:
            raise self._fail(f"no model version {ref!r}")
        return version

    def handle(self, *args: Any, **options: Any) -> None:
        version = self._version(options["version"])
        parameters: dict[str, Any] = {}
        for item in options["param"]:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise self._fail(f"--param {item!r}: expected KEY=VALUE")
            parameters[key.strip()] = _value(value.strip())
        actor: Any = SystemActor("manage.py assess")
        if options["user"]:
            actor = get_user_model().objects.filter(username=options["user"], is_active=True).first()
            if actor is None:
                raise self._fail(f"no active user {options['user']!r}")
        try:
            assessment, created = services.assessment_request(
                actor=actor, version=version, kind=options["kind"], parameters=parameters
            )
        except ValidationError as exc:
            raise self._fail("; ".join(exc.messages)) from exc
        except DomainError as exc:
            raise CommandError(exc.message, returncode=EXIT_BAD_INPUT if exc.status < 500 else EXIT_FAILED) from exc
        self.stdout.write(
            f"assessment {assessment.pk} ({assessment.kind}) of {version}: "
            f"{'created' if created else 'reused (same inputs)'}, {assessment.status}"
        )
        if not options["wait"]:
            if assessment.status in ("failed", "cancelled"):
                self._report(assessment)
                raise CommandError(f"assessment {assessment.pk} {assessment.status}", returncode=EXIT_FAILED)
            return
        deadline = time.monotonic() + options["timeout"]
        while not assessment.is_final:
            if time.monotonic() > deadline:
                raise CommandError(f"assessment {assessment.pk} still {assessment.status}", returncode=EXIT_FAILED)
            time.sleep(1.0)
            assessment = RiskAssessment.objects.get(pk=assessment.pk)
        self._report(assessment)
        if assessment.status != "succeeded":
            raise CommandError(f"assessment {assessment.pk} {assessment.status}", returncode=EXIT_FAILED)

    def _report(self, assessment: RiskAssessment) -> None:
        self.stdout.write(f"status: {assessment.status}")
        if assessment.error:
            self.stdout.write(f"error: {assessment.error['code']}: {assessment.error['message']}")
        for name, value in sorted((assessment.metrics or {}).items()):
            self.stdout.write(f"  {name}: {value:.6g}" if isinstance(value, float) else f"  {name}: {value}")
        if assessment.overfitting is not None:
            self.stdout.write(f"overfitting check: {'passed' if assessment.overfitting['passed'] else 'failed'}")
        for finding in assessment.findings.order_by("pk"):
            self.stdout.write(f"finding {finding.pk} ({finding.severity}): {finding.title}")
