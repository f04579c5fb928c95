"""Segregation of duties: who may not do what to a model version, in one place.

Each rule has an id that refusals carry into the audit log (action ``sod.refused``), so a
reviewer can see which rule stopped whom. Supervisors' basis: SR 11-7 / SR 26-2 (effective
challenge by independent validation), PRA SS1/23 Principle 4 (independent validation),
MiFID II RTS 6 Art. 5 (separation of development, testing and approval).

The lifecycle's steps fall to three parties, and each rule keeps one from doing another's:

* development (start, submit for validation, withdraw a submission, return to development
  after a rejection or a suspension) belongs to whoever may change the model: its owner, a
  ``change_model`` grant on it or ``change_desk_models`` on its desk (SOD-7). This is a rule
  here, audited like the others, rather than a plain permission refusal: a validator or an
  approver reaching into development (withdrawing a version under validation, say) is exactly
  what a reviewer of the log must see;
* the validation outcome (validate, reject a submission) belongs to a validator assigned to
  the model who did not develop it (SOD-1, SOD-4; SOD-5 at assignment);
* approval belongs to someone who neither developed the model, nor submitted the version,
  nor recorded its validation outcome (SOD-2, SOD-3, SOD-6).

Deploy, suspend, reinstate, retire and rejecting a validated version are left to the holders
of ``transition_modelversion`` who can see the version; no rule here applies to them.
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
VALIDATOR_MAY_NOT_APPROVE = Rule(
    "SOD-6",
    "whoever recorded the version's validation outcome may not approve it",
    ("MiFID II RTS 6 Art. 5", "SR 11-7 / SR 26-2 §V"),
)
ONLY_DEVELOPERS_DEVELOP = Rule(
    "SOD-7",
    "only someone who may change the model (its owner, or a change grant on it or its desk) may move "
    "its versions through development",
    ("MiFID II RTS 6 Art. 5",),
)
SIGNOFF_REQUESTER_MAY_NOT_DECIDE = Rule(
    "SOD-8",
    "whoever requested a sign-off may not approve, reject or ask for changes to it (four eyes)",
    ("MiFID II RTS 6 Art. 5", "PRA SS1/23 Principle 2"),
)
RULES = (
    DEVELOPER_MAY_NOT_VALIDATE,
    DEVELOPER_MAY_NOT_APPROVE,
    REQUESTER_MAY_NOT_APPROVE,
    ONLY_ASSIGNED_VALIDATOR,
    VALIDATOR_MUST_BE_INDEPENDENT,
    VALIDATOR_MAY_NOT_APPROVE,
    ONLY_DEVELOPERS_DEVELOP,
    SIGNOFF_REQUESTER_MAY_NOT_DECIDE,
)

# Transitions that record the independent validation's outcome, and the approval.
VALIDATION_OUTCOMES = frozenset({("submitted_for_validation", "validated"), ("submitted_for_validation", "rejected")})
APPROVALS = frozenset({("validated", "approved")})
# Development: start, submit, withdraw a submission, return to development after a rejection
# or a suspension.
DEVELOPMENT = frozenset(
    {
        ("draft", "in_development"),
        ("in_development", "submitted_for_validation"),
        ("submitted_for_validation", "in_development"),
        ("rejected", "in_development"),
        ("suspended", "in_development"),
    }
)


def _is_developer(user: AbstractBaseUser, model: Model) -> bool:
    return model.owner_id == user.pk or ModelVersion.objects.filter(model=model, created_by=user).exists()


def _latest_actor(version: ModelVersion, action: str) -> int | None:
    """Who made the latest ``action`` event on ``version``, from the audit log."""
    return (
        Event.objects.filter(object_type=ModelVersion._meta.label_lower, object_id=str(version.pk), action=action)
        .order_by("-seq")
        .values_list("actor_id", flat=True)
        .first()
    )


def _submitted_by(version: ModelVersion) -> int | None:
    """Who made the latest submission for validation."""
    return _latest_actor(version, "model_version.submit_for_validation")


def _validated_by(version: ModelVersion) -> int | None:
    """Who recorded the latest validation (the outcome that made the version approvable)."""
    return _latest_actor(version, "model_version.validate")


def transition_refusal(*, user: AbstractBaseUser, version: ModelVersion, transition: Transition) -> Rule | None:
    """The rule that forbids ``user`` this transition of ``version``, or None."""
    from models_registry.selectors import can_change_model, can_validate

    edge = (transition.source.value, transition.target.value)
    model = version.model
    if edge in DEVELOPMENT and not can_change_model(user=user, model=model):
        return ONLY_DEVELOPERS_DEVELOP
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
        if _validated_by(version) == user.pk:
            return VALIDATOR_MAY_NOT_APPROVE
    return None


def signoff_refusal(
    *, user: AbstractBaseUser, version: ModelVersion, requester_id: int, edge: tuple[str, str], approving: bool
) -> Rule | None:
    """The rule that forbids ``user`` to decide a sign-off request for ``transition`` of
    ``version`` asked by ``requester_id``: never the requester nor a developer; for an
    approval for use, never who submitted the version for validation or validated it."""
    if user.pk == requester_id:
        return SIGNOFF_REQUESTER_MAY_NOT_DECIDE
    if _is_developer(user, version.model):
        return DEVELOPER_MAY_NOT_APPROVE
    if approving and edge in APPROVALS:
        if _submitted_by(version) == user.pk:
            return REQUESTER_MAY_NOT_APPROVE
        if _validated_by(version) == user.pk:
            return VALIDATOR_MAY_NOT_APPROVE
    return None


def assignment_refusal(*, validator: AbstractBaseUser, model: Model) -> Rule | None:
    return VALIDATOR_MUST_BE_INDEPENDENT if _is_developer(validator, model) else None
