"""The model-version lifecycle, defined in one place.

Every status change goes through ``transition_for``; anything not listed here is refused
with the transitions that are allowed from the current status.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.errors import InvalidTransition
from models_registry.choices import LifecycleStatus as S


@dataclass(frozen=True)
class Transition:
    name: str
    source: S
    target: S
    label: str


TRANSITIONS: tuple[Transition, ...] = (
    Transition("start_development", S.DRAFT, S.IN_DEVELOPMENT, "Start development"),
    Transition("retire", S.DRAFT, S.RETIRED, "Retire"),
    Transition("submit_for_validation", S.IN_DEVELOPMENT, S.SUBMITTED_FOR_VALIDATION, "Submit for validation"),
    Transition("retire", S.IN_DEVELOPMENT, S.RETIRED, "Retire"),
    Transition("validate", S.SUBMITTED_FOR_VALIDATION, S.VALIDATED, "Validate"),
    Transition("reject", S.SUBMITTED_FOR_VALIDATION, S.REJECTED, "Reject"),
    Transition("withdraw", S.SUBMITTED_FOR_VALIDATION, S.IN_DEVELOPMENT, "Withdraw to development"),
    Transition("approve", S.VALIDATED, S.APPROVED, "Approve for use"),
    Transition("reject", S.VALIDATED, S.REJECTED, "Reject"),
    Transition("rework", S.REJECTED, S.IN_DEVELOPMENT, "Return to development"),
    Transition("retire", S.REJECTED, S.RETIRED, "Retire"),
    Transition("deploy", S.APPROVED, S.DEPLOYED, "Deploy"),
    Transition("retire", S.APPROVED, S.RETIRED, "Retire"),
    Transition("suspend", S.DEPLOYED, S.SUSPENDED, "Suspend"),
    Transition("retire", S.DEPLOYED, S.RETIRED, "Retire"),
    Transition("reinstate", S.SUSPENDED, S.DEPLOYED, "Reinstate"),
    Transition("rework", S.SUSPENDED, S.IN_DEVELOPMENT, "Return to development"),
    Transition("retire", S.SUSPENDED, S.RETIRED, "Retire"),
)

# Transitions into use: approval for use, deployment and reinstatement. Once a policy set is in
# force, they happen through a sign-off request whose approvers the policies name
# (governance.services.signoff_submit); a direct transition is refused while approvals are
# required.
SIGNOFF_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {(S.VALIDATED.value, S.APPROVED.value), (S.APPROVED.value, S.DEPLOYED.value), (S.SUSPENDED.value, S.DEPLOYED.value)}
)

_BY_EDGE: dict[tuple[S, S], Transition] = {(t.source, t.target): t for t in TRANSITIONS}


def allowed_targets(source: str) -> list[str]:
    """Statuses reachable in one step from ``source``, in definition order."""
    return [t.target.value for t in TRANSITIONS if t.source == source]


def transition_for(source: str, target: str) -> Transition:
    """The transition from ``source`` to ``target``, or ``InvalidTransition`` naming the allowed ones."""
    if target not in S.values:
        raise InvalidTransition(
            f"unknown status {target!r}; statuses are: {', '.join(S.values)}",
            detail={"from": source, "to": target, "allowed": allowed_targets(source)},
        )
    transition = _BY_EDGE.get((S(source), S(target)))
    if transition is None:
        allowed = allowed_targets(source)
        allowed_text = ", ".join(allowed) if allowed else "none (terminal status)"
        raise InvalidTransition(
            f"cannot move from {source} to {target}; allowed from {source}: {allowed_text}",
            detail={"from": source, "to": target, "allowed": allowed},
        )
    return transition
