"""The model-version lifecycle: every edge of the state machine, through the service that moves versions."""

from __future__ import annotations

import itertools

import pytest

from audit.models import Event
from audit.services import SystemActor
from governance.errors import InvalidTransition, NotPermitted
from governance.roles import Role
from models_registry import lifecycle, segregation, services
from models_registry.choices import LifecycleStatus
from models_registry.models import ModelVersion
from tests.factories import UserFactory, force_fields

pytestmark = pytest.mark.django_db

S = LifecycleStatus
ALL_STATUSES = list(S.values)
ALL_PAIRS = list(itertools.product(ALL_STATUSES, ALL_STATUSES))

# The lifecycle as specified (docs), written out independently of lifecycle.TRANSITIONS so a change
# to the table in code is caught here: (source, target) -> transition name.
SPEC: dict[tuple[str, str], str] = {
    ("draft", "in_development"): "start_development",
    ("draft", "retired"): "retire",
    ("in_development", "submitted_for_validation"): "submit_for_validation",
    ("in_development", "retired"): "retire",
    ("submitted_for_validation", "validated"): "validate",
    ("submitted_for_validation", "rejected"): "reject",
    ("submitted_for_validation", "in_development"): "withdraw",
    ("validated", "approved"): "approve",
    ("validated", "rejected"): "reject",
    ("rejected", "in_development"): "rework",
    ("rejected", "retired"): "retire",
    ("approved", "deployed"): "deploy",
    ("approved", "retired"): "retire",
    ("deployed", "suspended"): "suspend",
    ("deployed", "retired"): "retire",
    ("suspended", "deployed"): "reinstate",
    ("suspended", "in_development"): "rework",
    ("suspended", "retired"): "retire",
}

HAPPY_PATH = [
    ("in_development", "start_development"),
    ("submitted_for_validation", "submit_for_validation"),
    ("validated", "validate"),
    ("approved", "approve"),
    ("deployed", "deploy"),
    ("suspended", "suspend"),
    ("deployed", "reinstate"),
    ("retired", "retire"),
]


def _pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}->{pair[1]}"


def _force_status(version: ModelVersion, status: str) -> ModelVersion:
    """Put a version in ``status`` without going through the service (test set-up only)."""
    force_fields(version, status=status)
    version.refresh_from_db()
    return version


@pytest.fixture
def version(make_version):
    return make_version()


@pytest.fixture
def mover(version, owner, validator, compliance):
    """Who may take each step under segregation of duties: an assigned validator records the
    validation outcome, a compliance officer approves, the owner does the rest."""
    services.validation_assign(actor=compliance, model=version.model, validator=validator)

    def who(source: str, target: str):
        if (source, target) in segregation.VALIDATION_OUTCOMES:
            return validator
        if (source, target) in segregation.APPROVALS:
            return compliance
        return owner

    return who


# --- the table itself ---------------------------------------------------------------------------


def test_transition_table_matches_the_specification():
    table = {(t.source.value, t.target.value): t.name for t in lifecycle.TRANSITIONS}
    assert table == SPEC
    assert len(lifecycle.TRANSITIONS) == len(SPEC), "an edge is listed twice"


@pytest.mark.parametrize("source", ALL_STATUSES)
def test_allowed_targets_are_the_spec_edges_in_definition_order(source):
    expected = [target for (src, target) in SPEC if src == source]
    assert lifecycle.allowed_targets(source) == expected


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=[_pair_id(p) for p in ALL_PAIRS])
def test_transition_for_allows_exactly_the_listed_edges(source, target):
    if (source, target) in SPEC:
        transition = lifecycle.transition_for(source, target)
        assert (transition.source, transition.target, transition.name) == (source, target, SPEC[(source, target)])
    else:
        with pytest.raises(InvalidTransition):
            lifecycle.transition_for(source, target)


def test_retired_is_terminal():
    assert lifecycle.allowed_targets(S.RETIRED) == []
    assert all(t.source != S.RETIRED for t in lifecycle.TRANSITIONS)
    with pytest.raises(InvalidTransition) as excinfo:
        lifecycle.transition_for("retired", "deployed")
    assert "none (terminal status)" in str(excinfo.value)


def test_every_status_except_draft_is_reachable_and_every_non_terminal_status_has_a_way_out():
    targets = {t.target for t in lifecycle.TRANSITIONS}
    assert targets == set(S) - {S.DRAFT}
    sources = {t.source for t in lifecycle.TRANSITIONS}
    assert sources == set(S) - {S.RETIRED}


# --- through the service: every pair -------------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=[_pair_id(p) for p in ALL_PAIRS])
def test_service_allows_a_pair_iff_it_is_in_the_transition_table(version, mover, source, target):
    version = _force_status(version, source)
    changed_at = version.status_changed_at
    events_before = Event.objects.count()
    owner = mover(source, target)

    if (source, target) in SPEC:
        result = services.model_version_transition(actor=owner, version=version, to_status=target)
        stored = ModelVersion.objects.get(pk=version.pk)
        assert result.status == target
        assert stored.status == target
        assert stored.status_changed_at >= changed_at
        assert Event.objects.count() == events_before + 1
        event = Event.objects.order_by("-seq").first()
        assert event.action == f"model_version.{SPEC[(source, target)]}"
        assert event.before == {"status": source}
        assert event.after == {"status": target, "transition": SPEC[(source, target)]}
        assert event.actor == owner
        return

    with pytest.raises(InvalidTransition) as excinfo:
        services.model_version_transition(actor=owner, version=version, to_status=target)
    error = excinfo.value
    allowed = lifecycle.allowed_targets(source)
    assert error.detail["allowed"] == allowed
    assert error.detail["from"] == source
    assert error.detail["to"] == target
    assert error.status == 409
    message = str(error)
    assert f"from {source} to {target}" in message
    for allowed_target in allowed:
        assert allowed_target in message
    if not allowed:
        assert "terminal" in message
    stored = ModelVersion.objects.get(pk=version.pk)
    assert stored.status == source
    assert stored.status_changed_at == changed_at
    assert Event.objects.count() == events_before


def test_refused_message_lists_the_allowed_targets_verbatim(version, owner):
    version = _force_status(version, S.SUBMITTED_FOR_VALIDATION)
    with pytest.raises(InvalidTransition) as excinfo:
        services.model_version_transition(actor=owner, version=version, to_status="deployed")
    assert str(excinfo.value) == (
        "cannot move from submitted_for_validation to deployed; "
        "allowed from submitted_for_validation: validated, rejected, in_development"
    )
    assert excinfo.value.as_dict()["error"] == "invalid_transition"


# --- the representative path -----------------------------------------------------------------------


def test_representative_path_is_allowed_and_each_step_is_audited(version, mover):
    assert version.status == S.DRAFT
    seen_actions = []
    for target, name in HAPPY_PATH:
        previous = ModelVersion.objects.get(pk=version.pk).status
        owner = mover(previous, target)
        last_seq = Event.objects.order_by("-seq").values_list("seq", flat=True).first()
        version = services.model_version_transition(
            actor=owner, version=version, to_status=target, reason=f"step {name}"
        )
        assert ModelVersion.objects.get(pk=version.pk).status == target
        new_events = list(Event.objects.filter(seq__gt=last_seq))
        assert len(new_events) == 1
        event = new_events[0]
        assert event.action == f"model_version.{name}"
        assert event.object_type == "models_registry.modelversion"
        assert event.object_id == str(version.pk)
        assert event.before == {"status": previous}
        assert event.after == {"status": target, "transition": name}
        assert event.actor_id == owner.pk
        assert event.actor_label == owner.get_username()
        assert event.reason == f"step {name}"
        seen_actions.append(event.action)

    assert seen_actions == [f"model_version.{name}" for _, name in HAPPY_PATH]
    # Retired is terminal: nothing moves it any more, and nothing is written.
    count = Event.objects.count()
    for target in ALL_STATUSES:
        with pytest.raises(InvalidTransition):
            services.model_version_transition(actor=owner, version=version, to_status=target)
    assert ModelVersion.objects.get(pk=version.pk).status == S.RETIRED
    assert Event.objects.count() == count


def test_service_reads_the_current_status_from_the_database_not_the_passed_instance(version, owner):
    stale = ModelVersion.objects.get(pk=version.pk)  # still says draft
    services.model_version_transition(actor=owner, version=version, to_status="in_development")
    # Draft -> in_development again must be refused: the stored status is in_development now.
    with pytest.raises(InvalidTransition) as excinfo:
        services.model_version_transition(actor=owner, version=stale, to_status="in_development")
    assert excinfo.value.detail["from"] == "in_development"
    assert ModelVersion.objects.get(pk=version.pk).status == S.IN_DEVELOPMENT


def test_system_actor_transition_is_recorded_by_label(version):
    services.model_version_transition(actor=SystemActor("scheduler"), version=version, to_status="in_development")
    event = Event.objects.order_by("-seq").first()
    assert event.action == "model_version.start_development"
    assert event.actor is None
    assert event.actor_label == "system:scheduler"


# --- refusals that are not about the graph ----------------------------------------------------------


@pytest.mark.parametrize("role", [None, Role.MODEL_DEVELOPER, Role.RISK_MANAGER, Role.INTERNAL_AUDITOR])
def test_user_without_transition_permission_is_refused_and_nothing_changes(version, role):
    user = UserFactory(username="no-transition", roles=[role] if role else [])
    assert not user.has_perm("models_registry.transition_modelversion")
    count = Event.objects.count()
    with pytest.raises(NotPermitted) as excinfo:
        services.model_version_transition(actor=user, version=version, to_status="in_development")
    assert "models_registry.transition_modelversion" in str(excinfo.value)
    assert ModelVersion.objects.get(pk=version.pk).status == S.DRAFT
    assert Event.objects.count() == count


@pytest.mark.parametrize("role", [Role.VALIDATOR, Role.COMPLIANCE_OFFICER, Role.ADMINISTRATOR])
def test_roles_with_the_transition_permission_may_move_versions(version, role):
    # Retiring is no party's own step (development is the model's developers', SOD-7).
    user = UserFactory(username=f"mover-{role.name.lower()}", roles=[role])
    if role == Role.VALIDATOR:  # validators act only on the models assigned to them
        services.validation_assign(actor=SystemActor("tests"), model=version.model, validator=user)
    services.model_version_transition(actor=user, version=version, to_status="retired")
    assert ModelVersion.objects.get(pk=version.pk).status == S.RETIRED
    assert Event.objects.order_by("-seq").first().actor == user


@pytest.mark.parametrize("bogus", ["archived", "", "DEPLOYED", "Retired", "in development"])
def test_unknown_status_string_is_refused(version, owner, bogus):
    count = Event.objects.count()
    with pytest.raises(InvalidTransition) as excinfo:
        services.model_version_transition(actor=owner, version=version, to_status=bogus)
    message = str(excinfo.value)
    assert f"unknown status {bogus!r}" in message
    for status in ALL_STATUSES:
        assert status in message
    assert excinfo.value.detail["allowed"] == lifecycle.allowed_targets("draft")
    assert ModelVersion.objects.get(pk=version.pk).status == S.DRAFT
    assert Event.objects.count() == count


def test_transition_to_the_same_status_is_refused(version, owner):
    version = _force_status(version, S.DEPLOYED)
    with pytest.raises(InvalidTransition):
        services.model_version_transition(actor=owner, version=version, to_status="deployed")
    assert ModelVersion.objects.get(pk=version.pk).status == S.DEPLOYED


def test_failed_audit_write_rolls_back_the_status_change(version, owner, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(services, "record_event", boom)
    count = Event.objects.count()
    with pytest.raises(RuntimeError):
        services.model_version_transition(actor=owner, version=version, to_status="in_development")
    assert ModelVersion.objects.get(pk=version.pk).status == S.DRAFT
    assert Event.objects.count() == count
