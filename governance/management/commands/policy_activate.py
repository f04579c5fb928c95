"""python manage.py policy_activate --user NAME [--policy-dir DIR ...] [--reason TEXT]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance import services
from governance.errors import NotPermitted
from governance.policy import store
from governance.policy.loader import PolicyLoadError, configured_directories


class Command(BaseCommand):
    help = (
        "Validate and compile the policy files (the shipped set and GOVERNANCE_POLICY_DIRS, or the --policy-dir "
        "directories) and make them the policy set in force, as the compliance officer named by --user. A set "
        "that does not load is refused with each file, rule and reason, and the set in force stays in force. "
        "Activating the set already in force changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="Username of the compliance officer activating the set.")
        parser.add_argument(
            "--policy-dir",
            dest="directories",
            action="append",
            type=Path,
            default=None,
            help="A directory of policy files (repeatable; default: the configured directories).",
        )
        parser.add_argument("--reason", default="", help="Why the set is activated (recorded in the audit log).")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no user named {options['user']!r}")
        directories = options["directories"] or configured_directories()
        in_force = store.active_policy_set()
        try:
            policy_set, changed = services.policy_set_activate(
                actor=user, directories=directories, reason=options["reason"]
            )
        except PolicyLoadError as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            kept = f"policy set {in_force[0].content_hash} stays in force" if in_force else "no set is in force"
            raise CommandError(f"the policy set was refused ({len(exc.problems)} problem(s)); {kept}") from exc
        except NotPermitted as exc:
            raise CommandError(exc.message) from exc
        if not changed:
            self.stdout.write(f"Policy set {policy_set.content_hash} is already in force; nothing changed.")
            return
        previous = in_force[0].content_hash if in_force else "none"
        self.stdout.write(
            f"Activated policy set {policy_set.content_hash}: {len(policy_set.rule_ids)} rules from "
            f"{len(policy_set.files)} files (previous: {previous})."
        )
