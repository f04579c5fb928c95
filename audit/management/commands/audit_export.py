"""python manage.py audit_export --out DIR [--from-seq A --to-seq B]: write a verifiable bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.bundle import BundleError, export_bundle


class Command(BaseCommand):
    help = (
        "Export the audit log (or the range --from-seq..--to-seq) as a bundle that "
        "'audit_verify --bundle DIR' checks with no database: events with their canonical bytes and hashes, "
        "the signed checkpoints, the public key and a manifest."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, required=True, help="Directory to write (absent or empty).")
        parser.add_argument("--from-seq", type=int, default=None, help="First event (default 1).")
        parser.add_argument("--to-seq", type=int, default=None, help="Last event (default: the last one).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = export_bundle(out=options["out"], from_seq=options["from_seq"], to_seq=options["to_seq"])
        except (BundleError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"exported events {manifest['from_seq']}..{manifest['to_seq']} of {manifest['tree_size']} "
            f"to {options['out']}, root {manifest['root_hash']}, key id {manifest['key_id']}"
        )
