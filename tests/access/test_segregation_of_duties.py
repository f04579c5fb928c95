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
    version = world.versions["A2.0"]  # submitted by the owner
    services.model_version_transition(actor=owner, version=version, to_status="in_development")
    services.model_version_transition(actor=compliance, version=version, to_status="submitted_for_validation")
    services.model_version_transition(actor=world.users["val_asg"], version=version, to_status="validated")
    _assert_refused_by_api(api(compliance), compliance, version, "approved", segregation.REQUESTER_MAY_NOT_APPROVE)
    assert _transition(api(admin), version, "approved").status_code == 200


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
    }
    assert set(segregation.RULES) == exercised
