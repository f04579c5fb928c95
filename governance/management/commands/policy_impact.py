"""python manage.py policy_impact --policy-dir DIR [--policy-dir DIR ...] [--trigger T ...] [--rules] [--json]."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.policy import store, triggers
from governance.policy.impact import inventory_impact
from governance.policy.loader import PolicyLoadError, load_directories


class Command(BaseCommand):
    help = (
        "Evaluate a proposed policy set (the --policy-dir directories) and the set in force against every model's "
        "latest version, for each trigger that can come next for it (or the --trigger ones), and list the "
        "versions whose outcome would change. Changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--policy-dir",
            dest="directories",
            action="append",
            type=Path,
            required=True,
            help="A directory of the proposed set (repeatable: together they form the set).",
        )
        parser.add_argument(
            "--trigger",
            dest="triggers",
            action="append",
            default=None,
            help="Only this trigger, e.g. validated->approved, deployment:phase_1, periodic (repeatable).",
        )
        parser.add_argument(
            "--rules", action="store_true", help="Also list objects whose outcome stays but whose firing rules change."
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            proposed = load_directories(options["directories"])
        except PolicyLoadError as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            raise CommandError(f"the proposed policy set does not load ({len(exc.problems)} problem(s))") from exc
        only = None
        if options["triggers"]:
            try:
                only = [triggers.parse(text) for text in options["triggers"]]
            except triggers.TriggerError as exc:
                raise CommandError(str(exc)) from exc
        active = store.active_policy_set()
        report = inventory_impact(proposed=proposed, active=active[1] if active else None, only=only)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        against = f"policy set {report.active_hash}" if report.active_hash else "no set in force (everything allowed)"
        self.stdout.write(f"Proposed policy set {report.proposed_hash} against {against}:")
        listed = report.changes + (report.rule_changes if options["rules"] else [])
        for change in listed:
            rules = ", ".join(f"{rule} {before} -> {after}" for rule, before, after in change.rules)
            self.stdout.write(
                f"  {change.model} {change.version} (version {change.version_id}, {change.status}) {change.trigger}: "
                f"{change.before} -> {change.after} [{rules}]"
            )
        self.stdout.write(
            f"{report.versions} versions, {report.evaluated} (version, trigger) evaluations: {len(report.changes)} "
            f"would change outcome, {len(report.rule_changes)} would change only which rules fire"
            + ("" if options["rules"] or not report.rule_changes else " (--rules lists them)")
            + "."
        )
