"""python manage.py policy_replay DECISION_ID [--json]."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.models import PolicyDecision
from governance.policy.replay import replay_decision


class Command(BaseCommand):
    help = (
        "Re-evaluate a stored policy decision with its stored input document and the policy set in force at the "
        "time, and check the result is the same (outcome, and each rule's outcome and message), that the input "
        "still has its recorded SHA-256 and that the audit log's event agrees. Exit 0 when the same, 1 with the "
        "differences otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("decision_id", type=int, help="The decision's id.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        decision = (
            PolicyDecision.objects.select_related("policy_set", "version__model")
            .filter(pk=options["decision_id"])
            .first()
        )
        if decision is None:
            raise CommandError(f"no policy decision {options['decision_id']}", returncode=2)
        result = replay_decision(decision)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "decision": decision.pk,
                        "same": result.same,
                        "outcome": decision.outcome,
                        "replayed_outcome": result.evaluation.outcome if result.evaluation else None,
                        "policy_set": decision.policy_set_hash,
                        "input_sha256": decision.input_sha256,
                        "differences": result.differences,
                    },
                    indent=2,
                )
            )
        else:
            subject = f"{decision.trigger} on {decision.version}"
            if result.same:
                self.stdout.write(
                    f"Decision {decision.pk} ({subject}, {decision.decided_at:%Y-%m-%d %H:%M:%S} UTC) replayed with "
                    f"policy set {decision.policy_set_hash} and input {decision.input_sha256}: same result, "
                    f"{decision.outcome} ({len(decision.results)} rules)."
                )
            else:
                self.stdout.write(f"Decision {decision.pk} ({subject}): the replay differs:")
                for difference in result.differences:
                    self.stdout.write(f"  {difference}")
        if not result.same:
            raise CommandError(f"decision {decision.pk} does not replay to the same result", returncode=1)
