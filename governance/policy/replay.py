"""Replaying a stored decision: the same input and the same policy set must give the same result.

``replay_decision`` reads a ``PolicyDecision`` and

1. recomputes the SHA-256 of its stored input document and compares it with the stored
   hash and with the hash in the decision's audit event (``policy.decided``);
2. compiles the policy set stored with the decision (its files as they were activated)
   and checks that it still has the recorded content hash;
3. evaluates that set against that document, and compares the overall outcome and each
   rule's outcome, message, error and approval state with the stored ones.

Nothing is written. Any difference, including one that comes from a change in the
evaluator itself, is listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audit.models import Event
from governance.models import PolicyDecision
from governance.policy import engine, store
from governance.policy.document import document_sha256
from governance.policy.loader import PolicyLoadError

_COMPARED = ("outcome", "message", "error", "approval", "effect")


@dataclass
class ReplayResult:
    decision: PolicyDecision
    evaluation: engine.Evaluation | None
    differences: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.differences


def _compare_rules(stored: list[dict[str, Any]], replayed: engine.Evaluation) -> list[str]:
    differences = []
    before = {rule["id"]: rule for rule in stored}
    after = {rule.id: rule.as_dict() for rule in replayed.rules}
    for rule_id in sorted(before.keys() - after.keys()):
        differences.append(f"rule {rule_id}: was evaluated ({before[rule_id]['outcome']}), now does not apply")
    for rule_id in sorted(after.keys() - before.keys()):
        differences.append(f"rule {rule_id}: now applies ({after[rule_id]['outcome']}), was not evaluated")
    for rule_id in sorted(before.keys() & after.keys()):
        for key in _COMPARED:
            if before[rule_id].get(key) != after[rule_id].get(key):
                differences.append(
                    f"rule {rule_id}: {key} was {before[rule_id].get(key)!r}, now {after[rule_id][key]!r}"
                )
    return differences


def replay_decision(decision: PolicyDecision) -> ReplayResult:
    """Re-evaluate ``decision`` with its stored input and the policy set of its time."""
    differences: list[str] = []
    recomputed = document_sha256(decision.input_document)
    if recomputed != decision.input_sha256:
        differences.append(
            f"input document: stored SHA-256 {decision.input_sha256}, recomputed {recomputed} (the stored document "
            "was altered)"
        )
    event = (
        Event.objects.filter(
            object_type=PolicyDecision._meta.label_lower, object_id=str(decision.pk), action="policy.decided"
        )
        .only("seq", "after", "policy_set_hash")
        .first()
    )
    if event is None:
        differences.append("audit log: no policy.decided event records this decision")
    else:
        recorded = event.after or {}
        for name, stored in (
            ("input_sha256", decision.input_sha256),
            ("outcome", decision.outcome),
            ("trigger", decision.trigger),
        ):
            if recorded.get(name) != stored:
                differences.append(
                    f"audit event #{event.seq}: {name} is {recorded.get(name)!r}, the decision has {stored!r}"
                )
        if event.policy_set_hash != decision.policy_set_hash:
            differences.append(
                f"audit event #{event.seq}: policy set {event.policy_set_hash}, "
                f"the decision has {decision.policy_set_hash}"
            )
    policy_set = decision.policy_set
    if policy_set.content_hash != decision.policy_set_hash:
        differences.append(
            f"policy set: the decision records {decision.policy_set_hash}, its stored set is {policy_set.content_hash}"
        )
    try:
        compiled = store.compiled_set(policy_set, verify=True)
    except (store.PolicyIntegrityError, PolicyLoadError) as exc:
        differences.append(f"policy set {policy_set.content_hash}: {exc}")
        return ReplayResult(decision, None, differences)
    try:
        evaluation = engine.evaluate(compiled, decision.input_document)
    except Exception as exc:  # a stored document the engine can no longer read is a difference too
        differences.append(f"evaluation failed: {type(exc).__name__}: {exc}")
        return ReplayResult(decision, None, differences)
    if evaluation.outcome != decision.outcome:
        differences.append(f"outcome: was {decision.outcome}, now {evaluation.outcome}")
    if evaluation.trigger != decision.trigger:
        differences.append(f"trigger: was {decision.trigger}, the document says {evaluation.trigger}")
    differences += _compare_rules(decision.results, evaluation)
    if evaluation.required_approvals != decision.required_approvals:
        differences.append(
            f"required approvals: were {decision.required_approvals!r}, now {evaluation.required_approvals!r}"
        )
    return ReplayResult(decision, evaluation, differences)
