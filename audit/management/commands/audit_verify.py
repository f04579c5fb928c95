"""python manage.py audit_verify [--bundle DIR] [--json]: recompute the hash chain and Merkle tree
of the audit log, or of an exported bundle (with no database access)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.selectors import log_size
from audit.verify import Verification, default_workers, verify_log

# Below this, starting worker processes costs more than they save.
PARALLEL_FROM = 100_000


class Command(BaseCommand):
    help = (
        "Recompute every event's canonical hash, the hash chain and the Merkle tree, and compare them with "
        "what is stored (or, with --bundle, with an exported bundle, touching no database). Exit 0 with "
        "'OK: <n> events, root <hex>' when intact; exit 1 with 'first bad seq: <N>' otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--bundle", type=Path, default=None, help="Verify the bundle in this directory (audit_export)."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Processes that check and hash ranges of events (default: one per CPU, at most 4, "
            f"and one more on PostgreSQL, for logs of {PARALLEL_FROM:,} events or more; else 1).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        extra: dict[str, Any] = {}
        if options["bundle"] is not None:
            # Imported here so that verifying the database does not need the bundle module.
            from audit.bundle import BundleError, verify_bundle

            try:
                bundle = verify_bundle(options["bundle"])
            except BundleError as exc:
                raise CommandError(f"malformed bundle: {exc}", returncode=2) from exc
            result: Verification = bundle
            extra = {
                "from_seq": bundle.from_seq,
                "to_seq": bundle.to_seq,
                "tree_size": bundle.tree_size,
                "key_id": bundle.key_id,
            }
        else:
            workers = options["workers"]
            if workers is None:
                workers = default_workers() if log_size() >= PARALLEL_FROM else 1
            result = verify_log(workers=max(1, workers))
        if options["json"]:
            payload = {
                "ok": result.ok,
                "size": result.size,
                "root": result.root,
                "first_bad_seq": result.first_bad_seq,
                "problems": result.problems,
                "unverifiable": result.unverifiable,
                "checkpoints_checked": result.checkpoints_checked,
                **extra,
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
