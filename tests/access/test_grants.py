"""Grants and revocations: each is an audit event, and each takes effect at once.

Model, dataset and desk grants, validator assignments; what a grant may and may not open.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audit.models import Event
from governance import services as org
from governance.errors import NotPermitted
from governance.models import DeskGrant
from governance.roles import Role
from models_registry import selectors, services
from models_registry.models import ModelGrant
from tests.access.world import World, make_version
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _last(action: str) -> Event:
    return Event.objects.filter(action=action).order_by("-seq").first()


def _assert_granted(event: Event, *, actor, user, permission: str, obj) -> None:
    assert event is not None
    assert event.actor == actor
    assert event.after["user"] == user.pk
    assert event.after["username"] == user.get_username()
    assert event.after["permission"] == permission
    if "object_id" in event.after:
        assert (event.after["object_type"], event.after["object_id"]) == (obj._meta.label_lower, obj.pk)
    else:  # desk grants name the desk
        assert event.after["desk"] == obj.pk


def _assert_revoked(event: Event, *, actor, user, permission: str) -> None:
    assert event is not None
    assert event.actor == actor
    assert event.before["user"] == user.pk
    assert event.before["permission"] == permission
    assert event.after is None


def test_model_grant_and_revoke_are_audited_and_take_effect_at_once(world: World, api):
    owner, outsider = world.users["owner"], world.users["owner_b"]
    model = world.models["A"]
    client = api(outsider)
    url = f"/api/models/{model.pk}/"
    assert client.get(url).status_code == 404

    services.model_access_grant(actor=owner, user=outsider, model=model, permission="change_model", reason="Pairing")
    _assert_granted(_last("access.granted"), actor=owner, user=outsider, permission="change_model", obj=model)
    assert _last("access.granted").reason == "Pairing"
    assert client.get(url).status_code == 200
    assert model.pk in [row["id"] for row in client.get("/api/models/").json()["results"]]
    assert client.patch(url, {"description": "shared work"}, format="json").status_code == 200

    assert services.model_access_revoke(actor=owner, user=outsider, model=model, permission="change_model") == 1
    _assert_revoked(_last("access.revoked"), actor=owner, user=outsider, permission="change_model")
    # The same client and user object: nothing cached keeps the access alive.
    assert client.get(url).status_code == 404
    assert client.patch(url, {"description": "after revocation"}, format="json").status_code == 404
    assert [row["id"] for row in client.get("/api/models/").json()["results"]] == [world.models["B"].pk]
    for version in ("A1.0", "A2.0", "A3.0"):
        assert client.get(f"/api/versions/{world.versions[version].pk}/").status_code == 404


def test_a_second_identical_grant_and_a_revoke_of_nothing_write_no_event(world: World):
    owner, outsider = world.users["owner"], world.users["owner_b"]
    model = world.models["A"]
    services.model_access_grant(actor=owner, user=outsider, model=model, permission="view_model")
    events = Event.objects.count()
    services.model_access_grant(actor=owner, user=outsider, model=model, permission="view_model")
    assert services.model_access_revoke(actor=owner, user=outsider, model=model, permission="change_model") == 0
    assert Event.objects.count() == events


def test_only_the_owner_or_an_administrator_shares_a_model(world: World):
    model = world.models["A"]
    for actor in ("developer", "compliance", "auditor", "owner_b"):
        with pytest.raises(NotPermitted):
            services.model_access_grant(
                actor=world.users[actor], user=world.users["val_una"], model=model, permission="view_model"
            )
    assert not ModelGrant.objects.filter(user=world.users["val_una"]).exists()
    services.model_access_grant(
        actor=world.users["admin"], user=world.users["val_una"], model=model, permission="view_model"
    )
    assert selectors.model_list(user=world.users["val_una"]).filter(pk=model.pk).exists()


def test_dataset_grant_is_the_way_into_a_restricted_dataset(world: World, api):
    owner, compliance = world.users["owner"], world.users["compliance"]
    dataset = world.datasets["A:restricted"]
    client = api(compliance)
    url = f"/api/datasets/{dataset.pk}/"
    # Oversight sees confidential data, but restricted data only by explicit grant.
    assert client.get(url).status_code == 404

    services.dataset_access_grant(actor=owner, user=compliance, dataset=dataset, permission="view_dataset")
    _assert_granted(_last("access.granted"), actor=owner, user=compliance, permission="view_dataset", obj=dataset)
    assert client.get(url).status_code == 200
    assert client.get(f"{url}download/").status_code == 200
    # A view grant is not a change grant.
    assert client.patch(url, {"description": "x"}, format="json").status_code == 403

    services.dataset_access_revoke(actor=owner, user=compliance, dataset=dataset, permission="view_dataset")
    _assert_revoked(_last("access.revoked"), actor=owner, user=compliance, permission="view_dataset")
    assert client.get(url).status_code == 404
    assert client.get(f"{url}download/").status_code == 404
    assert dataset.pk not in [row["id"] for row in client.get("/api/datasets/").json()["results"]]


def test_desk_grant_and_revoke(world: World, api):
    admin, owner = world.users["admin"], world.users["owner"]
    desk_b = world.desks["B"]
    client = api(owner)
    url = f"/api/models/{world.models['B'].pk}/"
    assert client.get(url).status_code == 404

    org.desk_access_grant(actor=admin, user=owner, desk=desk_b, permission="view_desk_models")
    _assert_granted(_last("access.granted"), actor=admin, user=owner, permission="view_desk_models", obj=desk_b)
    assert client.get(url).status_code == 200
    assert client.get(f"/api/versions/{world.versions['B2.0'].pk}/").status_code == 200
    # Seeing a desk's models is not changing them.
    assert client.patch(url, {"description": "x"}, format="json").status_code == 403

    org.desk_access_revoke(actor=admin, user=owner, desk=desk_b, permission="view_desk_models")
    _assert_revoked(_last("access.revoked"), actor=admin, user=owner, permission="view_desk_models")
    assert client.get(url).status_code == 404
    assert client.get(f"/api/versions/{world.versions['B2.0'].pk}/").status_code == 404
    assert not DeskGrant.objects.filter(user=owner).exists()


def test_a_change_desk_grant_alone_lets_its_holder_see_what_it_lets_them_change(world: World, api):
    """Bug fixed: ``change_desk_models`` gave change scope but not view scope, so its holder could
    change the desk's models through the services while the API answered 404 for them."""
    developer = UserFactory(username="dev-two", roles=[Role.MODEL_DEVELOPER])
    org.desk_access_grant(
        actor=world.users["admin"], user=developer, desk=world.desks["A"], permission="change_desk_models"
    )
    model = world.models["A"]
    assert selectors.model_list(user=developer, for_change=True).filter(pk=model.pk).exists()
    assert selectors.model_list(user=developer).filter(pk=model.pk).exists()
    client = api(developer)
    assert client.get(f"/api/models/{model.pk}/").status_code == 200
    version = world.versions["A1.0"]
    response = client.patch(f"/api/versions/{version.pk}/", {"code_commit": "abcdef1"}, format="json")
    assert response.status_code == 200, response.content
    # Still nothing of desk B.
    assert client.get(f"/api/models/{world.models['B'].pk}/").status_code == 404


def test_revoking_a_change_grant_ends_changes_to_versions_the_grantee_created(world: World, api):
    """Bug fixed: a version's author kept change scope on it after losing the change grant on its
    model (the version change scope included ``created_by``). They still see what they made."""
    owner, helper = world.users["owner"], world.users["owner_b"]
    model = world.models["A"]
    services.model_access_grant(actor=owner, user=helper, model=model, permission="change_model")
    version = make_version(actor=helper, model=model, version="7.0")
    client = api(helper)
    url = f"/api/versions/{version.pk}/"
    assert client.patch(url, {"code_commit": "abcdef1"}, format="json").status_code == 200

    services.model_access_revoke(actor=owner, user=helper, model=model, permission="change_model")
    assert client.get(url).status_code == 200  # the author still sees it
    response = client.patch(url, {"code_commit": "1234567"}, format="json")
    assert response.status_code == 403, response.content
    version.refresh_from_db()
    assert version.code_commit == "abcdef1"


def test_validator_assignment_is_a_grant_and_its_revocation_ends_validation(world: World, api):
    compliance, validator = world.users["compliance"], world.users["val_una"]
    model, version = world.models["A"], world.versions["A2.0"]
    services.validation_assign(actor=compliance, model=model, validator=validator, reason="Rotation")
    _assert_granted(_last("access.granted"), actor=compliance, user=validator, permission="validate_model", obj=model)
    client = api(validator)
    assert client.get(f"/api/versions/{version.pk}/").status_code == 200

    services.model_access_revoke(actor=compliance, user=validator, model=model, permission="validate_model")
    _assert_revoked(_last("access.revoked"), actor=compliance, user=validator, permission="validate_model")
    response = client.post(f"/api/versions/{version.pk}/transition/", {"to": "validated"}, format="json")
    assert response.status_code == 404
    version.refresh_from_db()
    assert version.status == "submitted_for_validation"


def test_the_owner_cannot_unassign_the_independent_validator(world: World):
    """Bug fixed: assigning a validator needs an oversight role, but the model's owner could revoke
    the assignment (``model_access_revoke`` checked only "owner or administrator"), removing the
    validator of their own model; and the compliance officer who assigned could not."""
    owner, validator, model = world.users["owner"], world.users["val_asg"], world.models["A"]
    with pytest.raises(NotPermitted):
        services.model_access_revoke(actor=owner, user=validator, model=model, permission="validate_model")
    assert selectors.can_validate(user=validator, model=model)


@pytest.mark.parametrize("permission", ["view_model", "change_model"])
def test_grants_cannot_open_models_to_regulators_outside_an_engagement(world: World, permission):
    """Bug fixed: an owner's grant to a regulator shared a model with no end date, around the
    engagement (whose expiry and revocation the issue requires)."""
    regulator, model = world.users["reg_none"], world.models["A"]
    with pytest.raises(ValidationError):
        services.model_access_grant(actor=world.users["owner"], user=regulator, model=model, permission=permission)
    with pytest.raises(ValidationError):
        services.validation_assign(actor=world.users["compliance"], model=model, validator=regulator)
    with pytest.raises(ValidationError):
        services.dataset_access_grant(
            actor=world.users["owner"], user=regulator, dataset=world.datasets["A:public"], permission="view_dataset"
        )
    assert not selectors.model_list(user=regulator).exists()
    assert not ModelGrant.objects.filter(user=regulator).exists()
