"""python manage.py audit_proof inclusion --seq N [--tree-size M] | consistency --from A --to B"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import selectors
from audit.merkle import ProofError


class Command(BaseCommand):
    help = "Print an RFC 9162 inclusion or consistency proof of the audit log as JSON (hex hashes)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="kind", required=True)
        inclusion = sub.add_parser("inclusion", help="Proof that event SEQ is in the tree.")
        inclusion.add_argument("--seq", type=int, required=True)
        inclusion.add_argument("--tree-size", type=int, default=None)
        consistency = sub.add_parser("consistency", help="Proof that the tree at size A is a prefix of size B.")
        consistency.add_argument("--from", dest="first", type=int, required=True)
        consistency.add_argument("--to", dest="second", type=int, required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        # The same selectors answer /api/audit/proofs/, so both print identical JSON.
        try:
            if options["kind"] == "inclusion":
                proof = selectors.inclusion_proof(seq=options["seq"], tree_size=options["tree_size"])
            else:
                proof = selectors.consistency_proof(first=options["first"], second=options["second"])
        except ProofError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(proof))
