"""python manage.py validate_datasets [NAME ...] [--queue]: run datasets' declared rules."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import SystemActor
from models_registry import services
from models_registry.models import Dataset
from models_registry.tasks import validate_dataset


class Command(BaseCommand):
    help = (
        "Run the cleansing and validation rules of the named datasets (all if none named) and store "
        "the results. Exit status 1 if any dataset fails its rules. --queue sends the work to Celery instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="Dataset names (default: every dataset).")
        parser.add_argument("--queue", action="store_true", help="Enqueue one Celery job per dataset and return.")

    def handle(self, *args: Any, **options: Any) -> None:
        names: list[str] = options["names"]
        datasets = Dataset.objects.order_by("name")
        if names:
            datasets = datasets.filter(name__in=names)
            missing = sorted(set(names) - set(datasets.values_list("name", flat=True)))
            if missing:
                raise CommandError(f"unknown dataset(s): {', '.join(missing)}")
        if options["queue"]:
            for dataset in datasets:
                result = validate_dataset.delay(dataset.pk)
                self.stdout.write(f"{dataset.name}: queued as {result.id}")
            return
        failed = 0
        actor = SystemActor("validate_datasets")
        for dataset in datasets:
            dataset = services.dataset_validate(actor=actor, dataset=dataset)
            bad = [c["message"] for c in dataset.validation_result["checks"] if not c["passed"]]
            failed += dataset.validation_status != "passed"
            self.stdout.write(f"{dataset.name}: {dataset.validation_status}" + (f" ({'; '.join(bad)})" if bad else ""))
        if failed:
            raise CommandError(f"{failed} dataset(s) failed their rules", returncode=1)
