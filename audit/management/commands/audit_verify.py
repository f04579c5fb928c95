"""python manage.py audit_verify [--json]: recompute the hash chain and Merkle tree of the audit log."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.verify import verify_log


class Command(BaseCommand):
    help = (
        "Recompute every event's canonical hash, the hash chain and the Merkle tree, and compare them with "
        "what is stored. Exit 0 with 'OK: <n> events, root <hex>' when intact; exit 1 with "
        "'first bad seq: <N>' otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        result = verify_log()
        if options["json"]:
            payload = {
                "ok": result.ok,
                "size": result.size,
                "root": result.root,
                "first_bad_seq": result.first_bad_seq,
                "problems": result.problems,
                "unverifiable": result.unverifiable,
                "checkpoints_checked": result.checkpoints_checked,
            }
            self.stdout.write(json.dumps(payload))
        elif result.ok:
            self.stdout.write(f"OK: {result.size} events, root {result.root}")
        elif result.first_bad_seq is not None:
            self.stdout.write(f"FAILED: first bad seq: {result.first_bad_seq}")
            for problem in result.problems:
                self.stdout.write(f"  {problem}")
        else:
            self.stdout.write("FAILED: the log could not be fully verified")
            for problem in result.unverifiable:
                self.stdout.write(f"  {problem}")
        if not result.ok:
            sys.exit(1)
