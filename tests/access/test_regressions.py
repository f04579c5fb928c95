"""Access bugs the permission-matrix work found outside this package, each with the test of its fix.

They were strict xfails here until fixed. A new open bug goes in the same way
(``xfail(strict=True)`` with the reason), so that its fix asks for the marker to be removed;
the matrix keeps its own list, ``KNOWN_BUGS`` in ``test_permission_matrix.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from audit.services import SystemActor
from governance import services as org
from governance.errors import NotPermitted
from governance.models import DeskGrant
from models_registry import selectors, services
from models_registry.models import Dataset, Model, ModelGrant
from tests.access.world import World, make_dataset
from tests.factories import PRICE_CSV

pytestmark = pytest.mark.django_db


def _model_payload(**fields: Any) -> dict[str, Any]:
    return {"name": "gift", "purpose": "alpha", "model_type": "logistic_regression", "materiality": "1.00"} | fields


def _dataset_payload(**fields: Any) -> dict[str, Any]:
    payload = {"name": "gift-data", "source_kind": "internal", "collection_policy": "x", "storage_location": "y"}
    return payload | {"file": SimpleUploadedFile("a.csv", PRICE_CSV)} | fields


def _client(user) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)
    return client


# --- 1. A write that would leave the caller's scope is refused, not made (was: stored, then 500) ---


@pytest.mark.parametrize(
    "case",
    [
        "model for another owner",
        "model on another desk",
        "model handed over",
        "model moved off the caller's desk grant",
        "dataset handed over",
        "restricted dataset for another",
        "administrator's restricted dataset for another",
    ],
)
def test_a_write_that_leaves_the_callers_scope_is_refused_and_not_made(world: World, case):
    owner, admin = world.users["owner"], world.users["admin"]
    client = _client(owner)
    dataset, model_b = world.datasets["A:restricted"], world.models["B"]
    if case == "model for another owner":
        response = client.post("/api/models/", _model_payload(desk="rates", owner="owner-b"), format="json")
        made = Model.objects.filter(name="gift").exists()
    elif case == "model on another desk":
        response = client.post("/api/models/", _model_payload(desk="rates"), format="json")
        made = Model.objects.filter(name="gift").exists()
    elif case == "model handed over":
        model = world.models["A"]
        response = client.patch(f"/api/models/{model.pk}/", {"owner": "owner-b"}, format="json")
        made = Model.objects.get(pk=model.pk).owner_id != owner.pk
    elif case == "model moved off the caller's desk grant":
        # The owner may change desk B's models through a desk grant; moving one to their own desk
        # ends that grant's reach (they neither own it nor hold a grant on it).
        org.desk_access_grant(actor=admin, user=owner, desk=world.desks["B"], permission="change_desk_models")
        response = client.patch(f"/api/models/{model_b.pk}/", {"desk": "equities"}, format="json")
        made = Model.objects.get(pk=model_b.pk).desk_id != world.desks["B"].pk
    elif case == "dataset handed over":
        response = client.patch(f"/api/datasets/{dataset.pk}/", {"owner": "owner-b"}, format="json")
        made = Dataset.objects.get(pk=dataset.pk).owner_id != owner.pk
    elif case == "restricted dataset for another":
        payload = _dataset_payload(classification="restricted", owner="owner-b")
        response = client.post("/api/datasets/", payload, format="multipart")
        made = Dataset.objects.filter(name="gift-data").exists()
    else:
        # An administrator may register for someone else, but not what they could not then see.
        payload = _dataset_payload(classification="restricted", owner="owner-b")
        response = _client(admin).post("/api/datasets/", payload, format="multipart")
        made = Dataset.objects.filter(name="gift-data").exists()
    assert response.status_code == 403, (response.status_code, response.content[:300])
    assert response.json()["error"] == "permission_denied"
    assert not made


@pytest.mark.parametrize("case", ["administrator registers for another", "on a desk the owner may change"])
def test_models_for_others_or_other_desks_are_registered_by_those_entitled(world: World, case):
    admin, owner = world.users["admin"], world.users["owner"]
    if case == "administrator registers for another":
        response = _client(admin).post("/api/models/", _model_payload(desk="rates", owner="owner-b"), format="json")
        expected_owner = world.users["owner_b"]
    else:
        org.desk_access_grant(actor=admin, user=owner, desk=world.desks["B"], permission="change_desk_models")
        response = _client(owner).post("/api/models/", _model_payload(desk="rates"), format="json")
        expected_owner = owner
    assert response.status_code == 201, response.content
    assert Model.objects.get(name="gift").owner == expected_owner


def test_an_administrator_hands_a_dataset_over(world: World):
    admin, owner_b = world.users["admin"], world.users["owner_b"]
    dataset = make_dataset(actor=admin, name="handover", desk=None, owner=admin, classification="internal")
    response = _client(admin).patch(f"/api/datasets/{dataset.pk}/", {"owner": "owner-b"}, format="json")
    assert response.status_code == 200, response.content
    assert Dataset.objects.get(pk=dataset.pk).owner == owner_b
    # Registering for someone else too, when the administrator can still see it.
    payload = _dataset_payload(classification="internal", owner="owner-b")
    assert _client(admin).post("/api/datasets/", payload, format="multipart").status_code == 201


def test_the_api_answers_plainly_should_a_write_ever_leave_the_callers_scope(world: World, monkeypatch):
    """Defence in depth: without the services' check, the API says what happened instead of a 500."""
    monkeypatch.setattr(services, "_require_visible_after_write", lambda *args, **kwargs: None)
    owner, admin, model_b = world.users["owner"], world.users["admin"], world.models["B"]
    org.desk_access_grant(actor=admin, user=owner, desk=world.desks["B"], permission="change_desk_models")
    response = _client(owner).patch(f"/api/models/{model_b.pk}/", {"desk": "equities"}, format="json")
    assert response.status_code == 403
    assert "saved but left the object outside what you may see" in response.json()["detail"]
    assert model_b.name not in response.content.decode()


# --- 2. Running a dataset's rules needs validate_dataset and sight of the dataset -------------------


def test_running_dataset_rules_needs_the_permission_and_sight(world: World):
    public, confidential = world.datasets["A:public"], world.datasets["A:confidential"]
    for key in ("risk", "auditor", "compliance", "admin"):
        with pytest.raises(NotPermitted, match="validate_dataset"):
            services.dataset_validate(actor=world.users[key], dataset=public)
    # The permission alone does not open a dataset the user cannot see.
    with pytest.raises(NotPermitted, match="not in scope"):
        services.dataset_validate(actor=world.users["val_una"], dataset=confidential)
    assert Dataset.objects.get(pk=confidential.pk).validation_status == "not_validated"
    assert services.dataset_validate(actor=world.users["val_una"], dataset=public).validation_status == "passed"
    # Jobs and commands are trusted.
    assert services.dataset_validate(actor=SystemActor("celery"), dataset=confidential).validation_status == "passed"


# --- 3. Filtering versions by an invisible model: see test_idor.py ----------------------------------

# --- 4. Admin choices come from the selectors -------------------------------------------------------


def test_the_admin_version_form_offers_only_what_the_user_may_see(world: World, client):
    client.force_login(world.users["owner"])
    for url in (
        "/admin/models_registry/modelversion/add/",
        f"/admin/models_registry/modelversion/{world.versions['A1.0'].pk}/change/",
    ):
        body = client.get(url).content.decode()
        assert world.datasets["A:confidential"].name in body, url
        for secret in (
            world.models["B"].name,
            world.datasets["B:restricted"].name,
            world.datasets["B:confidential"].name,
        ):
            assert secret not in body, (url, secret)


def test_the_admin_version_form_keeps_a_dataset_the_user_cannot_see(world: World, client):
    """A version naming a dataset its editor cannot see: not shown, and not cleared by a save."""
    owner, developer = world.users["owner"], world.users["developer"]
    version = world.versions["A1.0"]  # the developer's, through the desk grant
    hidden = world.datasets["A:restricted"]
    services.model_version_update(actor=owner, version=version, changes={"training_dataset": hidden})
    client.force_login(developer)
    url = f"/admin/models_registry/modelversion/{version.pk}/change/"
    assert hidden.name not in client.get(url).content.decode()
    response = client.post(url, {"framework": "scikit-learn", "hyperparameters": "{}", "code_commit": "abcdef1"})
    assert response.status_code == 302, response.content.decode()[:2000]
    version.refresh_from_db()
    assert (version.code_commit, version.training_dataset_id) == ("abcdef1", hidden.pk)


def _with_permission(user, codename: str):
    user.user_permissions.add(Permission.objects.get(codename=codename))
    return type(user).objects.get(pk=user.pk)


@pytest.mark.parametrize(
    ("key", "shown", "hidden"),
    [
        ("owner", ["model:A"], ["model:B"]),
        ("compliance", ["model:A", "model:B"], []),  # assigns validators to any model
        ("admin", ["model:A", "model:B"], []),
    ],
)
def test_the_admin_model_grant_form_offers_what_the_user_may_share(world: World, client, key, shown, hidden):
    objects = world.objects()
    client.force_login(_with_permission(world.users[key], "add_modelgrant"))
    body = client.get("/admin/models_registry/modelgrant/add/").content.decode()
    for name in shown:
        assert objects[name].name in body, name
    for name in hidden:
        assert objects[name].name not in body, name


@pytest.mark.parametrize(
    ("key", "shown", "hidden"),
    [
        ("owner", ["dataset:A:public", "dataset:A:restricted"], ["dataset:B:public", "dataset:B:restricted"]),
        ("admin", ["dataset:A:restricted", "dataset:B:restricted"], []),
    ],
)
def test_the_admin_dataset_grant_form_offers_what_the_user_may_share(world: World, client, key, shown, hidden):
    objects = world.objects()
    client.force_login(_with_permission(world.users[key], "add_datasetgrant"))
    body = client.get("/admin/models_registry/datasetgrant/add/").content.decode()
    for name in shown:
        assert objects[name].name in body, name
    for name in hidden:
        assert objects[name].name not in body, name


# --- 5. Desk grants refuse regulators -----------------------------------------------------------------


@pytest.mark.parametrize("permission", ["view_desk_models", "change_desk_models"])
def test_a_desk_grant_cannot_open_models_to_a_regulator(world: World, permission):
    regulator = world.users["reg_none"]
    with pytest.raises(ValidationError):
        org.desk_access_grant(actor=world.users["admin"], user=regulator, desk=world.desks["A"], permission=permission)
    assert not DeskGrant.objects.filter(user=regulator).exists()
    assert not selectors.model_list(user=regulator).exists()


# --- 6. Assigning validators needs assign_validator --------------------------------------------------


@pytest.mark.parametrize("key", ["auditor", "risk"])
def test_read_only_oversight_cannot_assign_or_unassign_validators(world: World, key):
    actor, model = world.users[key], world.models["B"]
    with pytest.raises(NotPermitted, match="assign_validator"):
        services.validation_assign(actor=actor, model=model, validator=world.users["val_una"])
    assert not ModelGrant.objects.filter(user=world.users["val_una"]).exists()
    with pytest.raises(NotPermitted, match="assign_validator"):
        services.model_access_revoke(actor=actor, user=world.users["val_b"], model=model, permission="validate_model")
    assert selectors.can_validate(user=world.users["val_b"], model=model)


@pytest.mark.parametrize("key", ["compliance", "admin"])
def test_compliance_and_administrators_assign_and_unassign_validators(world: World, key):
    actor, model, validator = world.users[key], world.models["B"], world.users["val_una"]
    services.validation_assign(actor=actor, model=model, validator=validator)
    assert selectors.can_validate(user=validator, model=model)
    assert services.model_access_revoke(actor=actor, user=validator, model=model, permission="validate_model") == 1
    assert not selectors.can_validate(user=validator, model=model)
