"""python manage.py audit_keygen: create the Ed25519 checkpoint signing key file if missing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit import signing


class Command(BaseCommand):
    help = "Create GOVERNANCE_AUDIT_SIGNING_KEY_FILE (Ed25519, mode 600) unless it exists; print the public key."

    def handle(self, *args: Any, **options: Any) -> None:
        path = signing.generate_key_file()
        public = signing.load_private_key().public_key()
        self.stdout.write(f"signing key: {path}\nkey id: {signing.key_id(public)}\n{signing.public_key_pem(public)}")
