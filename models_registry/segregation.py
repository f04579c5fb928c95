"""Segregation of duties: who may not do what to a model version, in one place.

Each rule has an id that refusals carry into the audit log (action ``sod.refused``), so a
reviewer can see which rule stopped whom. Supervisors' basis: SR 11-7 / SR 26-2 (effective
challenge by independent validation), PRA SS1/23 Principle 4 (independent validation),
MiFID II RTS 6 Art. 5 (separation of development, testing and approval).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from audit.models import Event
from models_registry.lifecycle import Transition
from models_registry.models import Model, ModelVersion


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    references: tuple[str, ...]


DEVELOPER_MAY_NOT_VALIDATE = Rule(
    "SOD-1",
    "the model's owner or the version's developer may not record its validation outcome",
    ("SR 11-7 / SR 26-2 §V", "PRA SS1/23 Principle 4"),
)
DEVELOPER_MAY_NOT_APPROVE = Rule(
    "SOD-2",
    "the model's owner or the version's developer may not approve it",
    ("MiFID II RTS 6 Art. 5", "PRA SS1/23 Principle 4"),
)
REQUESTER_MAY_NOT_APPROVE = Rule(
    "SOD-3",
    "whoever submitted the version for validation may not approve their own request",
    ("MiFID II RTS 6 Art. 5",),
)
ONLY_ASSIGNED_VALIDATOR = Rule(
    "SOD-4",
    "only a validator assigned to the model may record its validation outcome",
    ("SR 11-7 / SR 26-2 §V",),
)
VALIDATOR_MUST_BE_INDEPENDENT = Rule(
    "SOD-5",
    "the model's owner or a developer of one of its versions may not be assigned as its validator",
    ("PRA SS1/23 Principle 4",),
)
RULES = (
    DEVELOPER_MAY_NOT_VALIDATE,
    DEVELOPER_MAY_NOT_APPROVE,
    REQUESTER_MAY_NOT_APPROVE,
    ONLY_ASSIGNED_VALIDATOR,
    VALIDATOR_MUST_BE_INDEPENDENT,
)

# Transitions that record the independent validation's outcome, and the approval.
VALIDATION_OUTCOMES = frozenset({("submitted_for_validation", "validated"), ("submitted_for_validation", "rejected")})
APPROVALS = frozenset({("validated", "approved")})


def _is_developer(user: AbstractBaseUser, model: Model) -> bool:
    return model.owner_id == user.pk or ModelVersion.objects.filter(model=model, created_by=user).exists()


def _submitted_by(version: ModelVersion) -> int | None:
    """Who made the latest submission for validation, from the audit log."""
    return (
        Event.objects.filter(
            object_type=ModelVersion._meta.label_lower,
            object_id=str(version.pk),
            action="model_version.submit_for_validation",
        )
        .order_by("-seq")
        .values_list("actor_id", flat=True)
        .first()
    )


def transition_refusal(*, user: AbstractBaseUser, version: ModelVersion, transition: Transition) -> Rule | None:
    """The rule that forbids ``user`` this transition of ``version``, or None."""
    from models_registry.selectors import can_validate

    edge = (transition.source.value, transition.target.value)
    model = version.model
    if edge in VALIDATION_OUTCOMES:
        if _is_developer(user, model):
            return DEVELOPER_MAY_NOT_VALIDATE
        if not can_validate(user=user, model=model):
            return ONLY_ASSIGNED_VALIDATOR
    if edge in APPROVALS:
        if _is_developer(user, model):
            return DEVELOPER_MAY_NOT_APPROVE
        if _submitted_by(version) == user.pk:
            return REQUESTER_MAY_NOT_APPROVE
    return None


def assignment_refusal(*, validator: AbstractBaseUser, model: Model) -> Rule | None:
    return VALIDATOR_MUST_BE_INDEPENDENT if _is_developer(validator, model) else None
