"""Segregation of duties: who may not validate, approve or be assigned, each refusal an audit
event (``sod.refused``) naming the rule, and the refused change not made."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from audit.models import Event
from governance import services as org
from governance.errors import NotPermitted
from governance.roles import Role
from models_registry import segregation, services
from models_registry.models import ModelGrant, ModelVersion
from tests.access.world import World, make_version
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _with_role(user, role: Role):
    """The user with one more role (a user may hold several), fresh from the database so that
    no permission cache of the old instance hides it."""
    user.groups.add(Group.objects.get(name=role.value))
    return get_user_model().objects.get(pk=user.pk)


def _transition(client, version: ModelVersion, to: str):
    return client.post(f"/api/versions/{version.pk}/transition/", {"to": to, "reason": "try"}, format="json")


def _refusals(user, target) -> list[Event]:
    return list(
        Event.objects.filter(
            action="sod.refused", actor=user, object_type=target._meta.label_lower, object_id=str(target.pk)
        ).order_by("seq")
    )


def _assert_refused_by_api(client, user, version: ModelVersion, to: str, rule: segregation.Rule) -> None:
    status_before = ModelVersion.objects.get(pk=version.pk).status
    refusals_before = len(_refusals(user, version))
    response = _transition(client, version, to)
    assert response.status_code == 403, response.content
    assert response.json()["rule"] == rule.id
    refusals = _refusals(user, version)
    assert len(refusals) == refusals_before + 1
    event = refusals[-1]
    assert event.after["rule"] == rule.id
    assert event.after["title"] == rule.title
    assert event.after["attempted"] == f"{status_before} -> {to}"
    assert ModelVersion.objects.get(pk=version.pk).status == status_before


@pytest.fixture
def dev_validator(world: World):
    """A model developer who also holds the validator role, and built version 4.0 of model A,
    which the owner then submitted for validation."""
    user = UserFactory(username="dev-val", roles=[Role.MODEL_DEVELOPER, Role.VALIDATOR])
    org.membership_set(actor=world.users["admin"], user=user, desk=world.desks["A"])
    services.model_access_grant(
        actor=world.users["owner"], user=user, model=world.models["A"], permission="change_model"
    )
    version = make_version(actor=user, model=world.models["A"], version="4.0")
    for to in ("in_development", "submitted_for_validation"):
        services.model_version_transition(actor=world.users["owner"], version=version, to_status=to)
    return user


def test_the_owner_cannot_validate_or_approve(world: World, api):
    owner = world.users["owner"]
    client = api(owner)
    _assert_refused_by_api(client, owner, world.versions["A2.0"], "validated", segregation.DEVELOPER_MAY_NOT_VALIDATE)
    _assert_refused_by_api(client, owner, world.versions["A2.0"], "rejected", segregation.DEVELOPER_MAY_NOT_VALIDATE)
    _assert_refused_by_api(client, owner, world.versions["A3.0"], "approved", segregation.DEVELOPER_MAY_NOT_APPROVE)


def test_a_developer_cannot_validate_or_approve_even_holding_the_validator_role(world: World, api, dev_validator):
    client = api(dev_validator)
    submitted = ModelVersion.objects.get(model=world.models["A"], version="4.0")
    _assert_refused_by_api(client, dev_validator, submitted, "validated", segregation.DEVELOPER_MAY_NOT_VALIDATE)
    # The rule is about the model: building any of its versions is enough.
    _assert_refused_by_api(
        client, dev_validator, world.versions["A2.0"], "validated", segregation.DEVELOPER_MAY_NOT_VALIDATE
    )
    # Approving is the compliance officer's step; as one too, the developer still may not.
    compliance_dev = _with_role(dev_validator, Role.COMPLIANCE_OFFICER)
    _assert_refused_by_api(
        api(compliance_dev), compliance_dev, world.versions["A3.0"], "approved", segregation.DEVELOPER_MAY_NOT_APPROVE
    )


def test_an_assigned_validator_who_later_builds_a_version_may_no_longer_validate(world: World, api):
    # The same person is later made a developer of the model: the assignment does not outlive that.
    validator = _with_role(world.users["val_asg"], Role.MODEL_DEVELOPER)
    services.model_access_grant(
        actor=world.users["owner"], user=validator, model=world.models["A"], permission="change_model"
    )
    make_version(actor=validator, model=world.models["A"], version="5.0")
    _assert_refused_by_api(
        api(validator), validator, world.versions["A2.0"], "validated", segregation.DEVELOPER_MAY_NOT_VALIDATE
    )


def test_an_unassigned_validator_cannot_validate(world: World, api):
    validator, version = world.users["val_una"], world.versions["A2.0"]
    client = api(validator)
    # Without any access the version is simply not there (scope, not segregation: nothing to audit).
    assert _transition(client, version, "validated").status_code == 404
    assert _refusals(validator, version) == []
    # Seeing the model (a view grant) does not make them its validator.
    services.model_access_grant(
        actor=world.users["owner"], user=validator, model=world.models["A"], permission="view_model"
    )
    _assert_refused_by_api(client, validator, version, "validated", segregation.ONLY_ASSIGNED_VALIDATOR)
    _assert_refused_by_api(client, validator, version, "rejected", segregation.ONLY_ASSIGNED_VALIDATOR)


def test_oversight_roles_cannot_validate_without_assignment(world: World, api):
    for key in ("compliance", "admin"):
        user = world.users[key]
        _assert_refused_by_api(
            api(user), user, world.versions["A2.0"], "validated", segregation.ONLY_ASSIGNED_VALIDATOR
        )


def test_whoever_submitted_cannot_approve(world: World, api):
    admin, compliance = world.users["admin"], world.users["compliance"]
    version = world.versions["A3.0"]  # submitted by the administrator, validated by the assigned validator
    _assert_refused_by_api(api(admin), admin, version, "approved", segregation.REQUESTER_MAY_NOT_APPROVE)
    # Someone else approves: allowed, and not refused.
    response = _transition(api(compliance), version, "approved")
    assert response.status_code == 200, response.content
    assert _refusals(compliance, version) == []


def test_the_latest_submission_counts(world: World, api):
    """Withdrawn and resubmitted by someone else: the earlier submitter may approve now."""
    owner, admin, compliance = world.users["owner"], world.users["admin"], world.users["compliance"]
    model, version = world.models["A"], world.versions["A2.0"]  # submitted by the owner
    # Submitting is development (SOD-7): both get a change grant on the model for it.
    for user in (admin, compliance):
        services.model_access_grant(actor=owner, user=user, model=model, permission="change_model")
    for actor, to in (
        (owner, "in_development"),
        (admin, "submitted_for_validation"),
        (admin, "in_development"),
        (compliance, "submitted_for_validation"),
        (world.users["val_asg"], "validated"),
    ):
        services.model_version_transition(actor=actor, version=version, to_status=to)
    _assert_refused_by_api(api(compliance), compliance, version, "approved", segregation.REQUESTER_MAY_NOT_APPROVE)
    assert _transition(api(admin), version, "approved").status_code == 200


def test_whoever_recorded_the_validation_cannot_approve(world: World, api):
    """SOD-6: the assigned validator holds the transition permission, and may not approve what they validated."""
    validator, compliance = world.users["val_asg"], world.users["compliance"]
    version = world.versions["A3.0"]  # validated by the assigned validator
    _assert_refused_by_api(api(validator), validator, version, "approved", segregation.VALIDATOR_MAY_NOT_APPROVE)
    # The latest validation counts: withdrawn, resubmitted and validated by someone else, the
    # first validator may approve.
    other = UserFactory(username="val-other", roles=[Role.VALIDATOR])
    services.validation_assign(actor=compliance, model=world.models["A"], validator=other)
    version = world.versions["A2.0"]
    services.model_version_transition(actor=validator, version=version, to_status="validated")
    _assert_refused_by_api(api(validator), validator, version, "approved", segregation.VALIDATOR_MAY_NOT_APPROVE)
    owner = world.users["owner"]
    for actor, to in (
        (compliance, "rejected"),
        (owner, "in_development"),
        (owner, "submitted_for_validation"),
        (other, "validated"),
    ):
        services.model_version_transition(actor=actor, version=version, to_status=to)
    assert _transition(api(validator), version, "approved").status_code == 200


# Development transitions (SOD-7): (version key, the status it is moved to first, the edge tried).
_DEVELOPMENT_EDGES = {
    "start": ("A1.0", [], "in_development"),
    "submit": ("A1.0", [("owner", "in_development")], "submitted_for_validation"),
    "withdraw": ("A2.0", [], "in_development"),
    "rework after rejection": ("A2.0", [("val_asg", "rejected")], "in_development"),
    "rework after suspension": (
        "A3.0",
        [("compliance", "approved"), ("compliance", "deployed"), ("compliance", "suspended")],
        "in_development",
    ),
}


@pytest.mark.parametrize("edge", sorted(_DEVELOPMENT_EDGES))
def test_only_who_may_change_the_model_moves_it_through_development(world: World, api, edge):
    """SOD-7: validators, compliance and administrators hold the transition permission and see the
    version, but development is for the owner and holders of a change grant (model or desk)."""
    key, before, to = _DEVELOPMENT_EDGES[edge]
    version = world.versions[key]
    for who, status in before:
        version = services.model_version_transition(actor=world.users[who], version=version, to_status=status)
    for who in ("val_asg", "compliance", "admin"):
        user = world.users[who]
        _assert_refused_by_api(api(user), user, version, to, segregation.ONLY_DEVELOPERS_DEVELOP)
    # A change grant is enough: on the model, or on its desk.
    services.model_access_grant(
        actor=world.users["owner"], user=world.users["admin"], model=world.models["A"], permission="change_model"
    )
    assert _transition(api(world.users["admin"]), version, to).status_code == 200


def test_a_version_author_whose_change_grant_is_revoked_no_longer_develops(world: World, api):
    """The author of a version still sees it through the model, but develops it only while they may change it."""
    owner, author = world.users["owner"], UserFactory(username="author", roles=[Role.MODEL_OWNER])
    model = world.models["A"]
    services.model_access_grant(actor=owner, user=author, model=model, permission="change_model")
    version = make_version(actor=author, model=model, version="6.0")
    assert _transition(api(author), version, "in_development").status_code == 200
    services.model_access_revoke(actor=owner, user=author, model=model, permission="change_model")
    _assert_refused_by_api(
        api(author), author, version, "submitted_for_validation", segregation.ONLY_DEVELOPERS_DEVELOP
    )
    # Retiring is not development: it stays with holders of the transition permission who see the version.
    assert _transition(api(author), version, "retired").status_code == 200


@pytest.mark.parametrize("key", ["owner", "developer"])
def test_assigning_the_owner_or_a_developer_as_validator_is_refused(world: World, key):
    compliance, model, candidate = world.users["compliance"], world.models["A"], world.users[key]
    with pytest.raises(NotPermitted) as refused:
        services.validation_assign(actor=compliance, model=model, validator=candidate)
    assert refused.value.detail == {"rule": segregation.VALIDATOR_MUST_BE_INDEPENDENT.id}
    (event,) = _refusals(compliance, model)
    assert event.after["rule"] == segregation.VALIDATOR_MUST_BE_INDEPENDENT.id
    assert event.after["attempted"] == f"assign {candidate.get_username()}"
    assert not ModelGrant.objects.filter(user=candidate, permission__codename="validate_model").exists()


def test_every_rule_has_a_test_here():
    exercised = {
        segregation.DEVELOPER_MAY_NOT_VALIDATE,
        segregation.DEVELOPER_MAY_NOT_APPROVE,
        segregation.REQUESTER_MAY_NOT_APPROVE,
        segregation.ONLY_ASSIGNED_VALIDATOR,
        segregation.VALIDATOR_MUST_BE_INDEPENDENT,
        segregation.VALIDATOR_MAY_NOT_APPROVE,
        segregation.ONLY_DEVELOPERS_DEVELOP,
        segregation.SIGNOFF_REQUESTER_MAY_NOT_DECIDE,  # tests/signoff/test_workflow.py
    }
    assert set(segregation.RULES) == exercised
