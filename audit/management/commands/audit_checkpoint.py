"""python manage.py audit_checkpoint: sign the current tree head and print it."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from audit import signing
from audit.services import SystemActor, checkpoint_create


class Command(BaseCommand):
    help = "Make a signed checkpoint (tree size, root, time; Ed25519), store it and append it to the checkpoint file."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            checkpoint = checkpoint_create(actor=SystemActor("audit_checkpoint"))
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        head = signing.SignedTreeHead(
            checkpoint.tree_size, checkpoint.root_hash, checkpoint.timestamp, checkpoint.key_id, checkpoint.signature
        )
        self.stdout.write(json.dumps(head.as_json()))
