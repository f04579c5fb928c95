"""The admin is a thin adapter: pages render for each role, saves and actions go through services."""

from __future__ import annotations

import pickle

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from audit.models import Event
from audit.services import SystemActor
from models_registry import services
from models_registry.models import Dataset, Model, ModelVersion
from tests.factories import PRICE_CSV, skops_classifier_bytes

pytestmark = pytest.mark.django_db

PAGES = [
    "/admin/",
    "/admin/models_registry/model/",
    "/admin/models_registry/model/?risk_tier__exact=3&lifecycle_status=draft&purpose__exact=alpha",
    "/admin/models_registry/modelversion/",
    "/admin/models_registry/dataset/",
    "/admin/models_registry/model/{model}/change/",
    "/admin/models_registry/modelversion/{version}/change/",
    "/admin/models_registry/dataset/{dataset}/change/",
]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def inventory(make_version, make_dataset):
    version = make_version()
    return {"model": version.model_id, "version": version.pk, "dataset": make_dataset().pk}


@pytest.mark.parametrize("role", ["owner", "compliance", "validator"])
def test_pages_render_for_each_role(request, role, inventory):
    user = request.getfixturevalue(role)
    if role == "validator":  # validators see the models they are assigned to
        model = Model.objects.get(pk=inventory["model"])
        services.validation_assign(actor=SystemActor("tests"), model=model, validator=user)
    client = _client(user)
    for page in PAGES:
        response = client.get(page.format(**inventory), secure=True)
        assert response.status_code == 200, page


def test_add_pages_render_for_owner(owner):
    client = _client(owner)
    for kind in ("model", "modelversion", "dataset"):
        assert client.get(f"/admin/models_registry/{kind}/add/", secure=True).status_code == 200


def test_compliance_officer_cannot_add(compliance):
    assert _client(compliance).get("/admin/models_registry/model/add/", secure=True).status_code == 403


def test_outsider_does_not_see_the_inventory(outsider, inventory):
    client = _client(outsider)
    assert client.get("/admin/models_registry/model/", secure=True).status_code == 403


def test_model_added_in_admin_goes_through_the_service(owner, desk):
    response = _client(owner).post(
        "/admin/models_registry/model/add/",
        {
            "name": "admin-made",
            "purpose": "risk",
            "desk": desk.pk,
            "owner": owner.pk,
            "model_type": "svm",
            "materiality": "60000000.00",
            "description": "",
            "objectives": "",
            "success_criteria": "",
            "constraints": "",
            "risk_tier_override": "",
            "risk_tier_override_justification": "",
        },
        secure=True,
    )
    assert response.status_code == 302, response.content[:2000]
    model = Model.objects.get(name="admin-made")
    assert model.risk_tier == 1
    assert Event.objects.filter(action="model.created", object_id=str(model.pk), actor=owner).exists()


def test_pickle_upload_in_admin_is_refused_with_the_reason(owner, make_model):
    model = make_model()
    response = _client(owner).post(
        "/admin/models_registry/modelversion/add/",
        {
            "model": model.pk,
            "version": "9.9.9",
            "upload": SimpleUploadedFile("model.pkl", pickle.dumps({"a": 1}, protocol=4)),
            "framework": "",
            "hyperparameters": "{}",
            "code_repository": "",
            "code_commit": "",
        },
        secure=True,
    )
    assert response.status_code == 200
    assert b"pickle" in response.content
    assert not ModelVersion.objects.filter(version="9.9.9").exists()


def test_version_and_dataset_added_in_admin(owner, make_model):
    model = make_model()
    client = _client(owner)
    response = client.post(
        "/admin/models_registry/dataset/add/",
        {
            "name": "admin-prices",
            "description": "",
            "source_kind": "market_data_feed",
            "collection_policy": "vendor file",
            "storage_location": "s3://x",
            "classification": "internal",
            "owner": owner.pk,
            "time_column": "Date",
            "rules": '{"monotonic_timestamps": true}',
            "upload": SimpleUploadedFile("p.csv", PRICE_CSV),
        },
        secure=True,
    )
    assert response.status_code == 302, response.content[:3000]
    dataset = Dataset.objects.get(name="admin-prices")
    assert dataset.row_count == 3
    response = client.post(
        "/admin/models_registry/modelversion/add/",
        {
            "model": model.pk,
            "version": "2.0.0",
            "upload": SimpleUploadedFile("m.skops", skops_classifier_bytes()),
            "framework": "",
            "hyperparameters": '{"C": 1.0}',
            "code_repository": "",
            "code_commit": "",
            "training_dataset": dataset.pk,
        },
        secure=True,
    )
    assert response.status_code == 302, response.content[:3000]
    version = ModelVersion.objects.get(version="2.0.0")
    assert version.training_dataset == dataset
    assert Event.objects.filter(action="model_version.created", object_id=str(version.pk)).exists()


def test_transition_action_moves_allowed_and_reports_refused(owner, make_version):
    version = make_version()
    client = _client(owner)
    response = client.post(
        "/admin/models_registry/modelversion/",
        {"action": "move_to_in_development", "_selected_action": [version.pk]},
        secure=True,
        follow=True,
    )
    assert response.status_code == 200
    version.refresh_from_db()
    assert version.status == "in_development"
    response = client.post(
        "/admin/models_registry/modelversion/",
        {"action": "move_to_deployed", "_selected_action": [version.pk]},
        secure=True,
        follow=True,
    )
    version.refresh_from_db()
    assert version.status == "in_development"
    assert b"allowed from in_development: submitted_for_validation, retired" in response.content


def test_dataset_validation_action(owner, validator, make_dataset):
    dataset = make_dataset()
    _client(owner).post(
        "/admin/models_registry/dataset/",
        {"action": "run_validation", "_selected_action": [dataset.pk]},
        secure=True,
    )
    dataset.refresh_from_db()
    assert dataset.validation_status == "passed"
