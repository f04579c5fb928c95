"""python manage.py policy_test [DIR ...] [--verbose]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.policy.loader import PolicyLoadError, configured_directories, load_directories
from governance.policy.testing import run_tests


class Command(BaseCommand):
    help = (
        "Load the policy set in DIR ... (default: the configured directories, i.e. the shipped set and "
        "GOVERNANCE_POLICY_DIRS) and run the test cases kept beside it (DIR/tests/test_*.yaml). Prints one line "
        "per failing case and ends with 'N passed, M failed'; exit 0 only when every case passes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directories", nargs="*", type=Path, help="Policy directories forming one set.")
        parser.add_argument("--verbose", action="store_true", help="Also print a line per passing case.")

    def handle(self, *args: Any, **options: Any) -> None:
        directories = options["directories"] or configured_directories()
        try:
            policy_set = load_directories(directories)
        except PolicyLoadError as exc:
            for problem in exc.problems:
                self.stdout.write(f"REFUSED {problem}")
            self.stdout.write(f"0 passed, {len(exc.problems)} failed")
            raise CommandError("the policy set does not load; no test ran") from exc
        run = run_tests(policy_set, directories)
        for problem in run.problems:
            self.stdout.write(f"FAIL {problem}")
        for result in run.results:
            if not result.passed:
                self.stdout.write(f"FAIL {result.file}: {result.name}: {'; '.join(result.failures)}")
            elif options["verbose"]:
                self.stdout.write(f"ok   {result.file}: {result.name}")
        self.stdout.write(f"{run.passed} passed, {run.failed} failed")
        if not run.ok:
            raise CommandError(f"{run.failed} policy test(s) failed")
