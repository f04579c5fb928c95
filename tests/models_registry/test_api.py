"""Behaviour of the inventory REST API (/api/models/, /api/versions/, /api/datasets/)."""

from __future__ import annotations

import hashlib
import json
import pickle
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audit.models import Event
from audit.services import SystemActor
from governance.roles import Role
from models_registry import services
from models_registry.models import Dataset, Model, ModelVersion
from tests.factories import PRICE_CSV, UserFactory, skops_classifier_bytes

pytestmark = pytest.mark.django_db

MODELS = "/api/models/"
VERSIONS = "/api/versions/"
DATASETS = "/api/datasets/"


def _model_payload(**overrides):
    data = {
        "name": "eq-direction",
        "purpose": "alpha",
        "desk": "equities",
        "model_type": "logistic_regression",
        "materiality": "1000000.00",
    }
    data.update(overrides)
    return data


def _dataset_form(**overrides):
    data = {
        "name": "prices-upload",
        "source_kind": "market_data_feed",
        "collection_policy": "End-of-day vendor file.",
        "storage_location": "s3://bucket/prices.csv",
        "classification": "public",
        "rules": json.dumps({"required_columns": ["Date", "Close"], "monotonic_timestamps": True}),
        "file": SimpleUploadedFile("prices.csv", PRICE_CSV, content_type="text/csv"),
    }
    data.update(overrides)
    return data


def _counts():
    return {
        "models": Model.objects.count(),
        "versions": ModelVersion.objects.count(),
        "datasets": Dataset.objects.count(),
        "events": Event.objects.count(),
    }


@pytest.fixture
def auditor(db):
    """Sees the whole inventory but may not change it or move versions."""
    return UserFactory(username="ivan", roles=[Role.INTERNAL_AUDITOR])


@pytest.fixture
def owner_client(api, owner, desk):
    return api(owner)


# --- authentication and scope -------------------------------------------------------


@pytest.mark.parametrize("url", [MODELS, VERSIONS, DATASETS])
def test_anonymous_list_is_401(api, url):
    response = api().get(url)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response


def test_anonymous_detail_is_401(api, make_model, make_version, make_dataset):
    model = make_model()
    version = make_version(model=model)
    dataset = make_dataset()
    client = api()
    for url in (f"{MODELS}{model.pk}/", f"{VERSIONS}{version.pk}/", f"{DATASETS}{dataset.pk}/"):
        assert client.get(url).status_code == 401, url


def test_anonymous_create_is_401_and_writes_nothing(api, desk):
    before = _counts()
    response = api().post(MODELS, _model_payload(), format="json")
    assert response.status_code == 401
    assert _counts() == before


def test_unknown_id_is_404(owner_client):
    for url in (f"{MODELS}999999/", f"{VERSIONS}999999/", f"{DATASETS}999999/"):
        assert owner_client.get(url).status_code == 404, url


def test_outsider_cannot_see_owners_model(api, outsider, make_model, make_version, make_dataset):
    model = make_model()
    version = make_version(model=model)
    dataset = make_dataset()
    client = api(outsider)

    assert client.get(f"{MODELS}{model.pk}/").status_code == 404
    assert client.get(f"{VERSIONS}{version.pk}/").status_code == 404
    assert client.get(f"{DATASETS}{dataset.pk}/").status_code == 404
    for url in (MODELS, VERSIONS, DATASETS):
        body = client.get(url).json()
        assert body["count"] == 0, url
        assert body["results"] == [], url
    # The owner does see them: the 404 is scope, not absence.
    owner_body = api(model.owner).get(MODELS).json()
    assert [m["name"] for m in owner_body["results"]] == [model.name]


def test_outsider_sees_own_model_only(api, outsider, make_model, desk):
    make_model(name="theirs")
    mine = make_model(name="mine", owner=outsider, actor=SystemActor("tests"))
    body = api(outsider).get(MODELS).json()
    assert body["count"] == 1
    assert [m["id"] for m in body["results"]] == [mine.pk]


def test_compliance_sees_everything_but_cannot_change(api, compliance, make_model, make_version, desk):
    model = make_model()
    make_version(model=model)
    client = api(compliance)
    assert client.get(f"{MODELS}{model.pk}/").status_code == 200
    assert client.get(MODELS).json()["count"] == 1
    assert client.get(VERSIONS).json()["count"] == 1
    before = _counts()

    created = client.post(MODELS, _model_payload(name="compliance-model"), format="json")
    assert created.status_code == 403
    assert created.json()["error"] == "permission_denied"
    assert "add_model" in created.json()["detail"]

    patched = client.patch(f"{MODELS}{model.pk}/", {"materiality": "1.00"}, format="json")
    assert patched.status_code == 403

    upload = client.post(
        VERSIONS,
        {"model": model.pk, "version": "2.0.0", "artifact": SimpleUploadedFile("m.skops", skops_classifier_bytes())},
        format="multipart",
    )
    assert upload.status_code == 403
    assert _counts() == before
    model.refresh_from_db()
    assert model.materiality == Decimal("1000000.00")


# --- models: create, validation errors ------------------------------------------------


def test_create_model_returns_computed_fields(owner_client, owner):
    before = _counts()
    response = owner_client.post(MODELS, _model_payload(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "eq-direction"
    assert body["complexity"] == "low"
    assert body["risk_tier"] == 3
    assert body["computed_tier"] == 3
    assert body["tier_rationale"].startswith("tier 3: low materiality")
    assert "low complexity (logistic regression)" in body["tier_rationale"]
    assert body["lifecycle_status"] == "draft"
    assert body["materiality"] == "1000000.00"
    assert body["owner"] == owner.username
    assert body["desk"] == "equities"

    model = Model.objects.get(pk=body["id"])
    assert model.owner == owner
    assert model.risk_tier == 3
    after = _counts()
    assert after["models"] == before["models"] + 1
    assert Event.objects.filter(action="model.created", object_id=str(model.pk), actor=owner).count() == 1


def test_create_model_high_materiality_deep_learning_is_tier_1(owner_client):
    response = owner_client.post(
        MODELS, _model_payload(model_type="deep_learning", materiality="60000000"), format="json"
    )
    assert response.status_code == 201
    assert response.json()["complexity"] == "very_high"
    assert response.json()["risk_tier"] == 1


def test_create_model_with_justified_override(owner_client):
    response = owner_client.post(
        MODELS,
        _model_payload(risk_tier_override=1, risk_tier_override_justification="Used for client-facing prices."),
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["risk_tier"] == 1
    assert body["computed_tier"] == 3
    assert "by override (Used for client-facing prices.)" in body["tier_rationale"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"purpose": "gambling"}, "purpose"),
        ({"materiality": "-1"}, "materiality"),
        ({"name": None}, "name"),
        ({"desk": "no-such-desk"}, "desk"),
        ({"model_type": "crystal_ball"}, "model_type"),
        ({"risk_tier_override": 1}, "risk_tier_override_justification"),
        ({"risk_tier_override": 1, "risk_tier_override_justification": "   "}, "risk_tier_override_justification"),
    ],
)
def test_create_model_bad_input_is_400_per_field(owner_client, overrides, field):
    payload = _model_payload(**overrides)
    payload = {k: v for k, v in payload.items() if v is not None}
    before = _counts()
    response = owner_client.post(MODELS, payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert field in body, body
    assert isinstance(body[field], list)
    assert body[field]
    assert all(isinstance(message, str) and message for message in body[field])
    assert _counts() == before


def test_create_model_duplicate_name_is_400(owner_client, make_model):
    make_model(name="eq-direction")
    before = _counts()
    response = owner_client.post(MODELS, _model_payload(name="eq-direction"), format="json")
    assert response.status_code == 400
    assert "already exists" in response.json()["name"][0]
    assert _counts() == before


def test_create_model_reports_every_bad_field_at_once(owner_client):
    response = owner_client.post(MODELS, {"purpose": "gambling", "materiality": "-5"}, format="json")
    assert response.status_code == 400
    assert {"name", "purpose", "desk", "model_type", "materiality"} <= set(response.json())


# --- models: list, filters, pagination, update ---------------------------------------


@pytest.fixture
def inventory(make_model, make_version, other_desk, owner):
    """Five models across purposes, tiers, desks and lifecycle states."""
    low = make_model(name="m1-alpha-low", purpose="alpha")
    make_model(name="m2-risk-low", purpose="risk")
    high = make_model(name="m3-alpha-high", purpose="alpha", model_type="deep_learning", materiality=Decimal("6e7"))
    # Registered for olivia on a desk that is not hers: only an administrator (or a job) may.
    rates = make_model(name="m4-execution-rates", purpose="execution", desk=other_desk, actor=SystemActor("tests"))
    make_model(name="m5-risk-tier2", purpose="risk", model_type="svm", materiality=Decimal("1000"))
    version = make_version(model=low)
    services.model_version_transition(actor=owner, version=version, to_status="in_development")
    make_version(model=rates)
    return {"low": low, "high": high, "rates": rates}


def _names(response):
    assert response.status_code == 200, response.content
    return [m["name"] for m in response.json()["results"]]


def test_model_list_filters(owner_client, inventory):
    assert _names(owner_client.get(MODELS, {"purpose": "risk"})) == ["m2-risk-low", "m5-risk-tier2"]
    assert _names(owner_client.get(MODELS, {"purpose": "alpha"})) == ["m1-alpha-low", "m3-alpha-high"]
    assert _names(owner_client.get(MODELS, {"risk_tier": 1})) == ["m3-alpha-high"]
    assert _names(owner_client.get(MODELS, {"risk_tier": 2})) == ["m5-risk-tier2"]
    assert _names(owner_client.get(MODELS, {"status": "in_development"})) == ["m1-alpha-low"]
    assert _names(owner_client.get(MODELS, {"status": "draft"})) == [
        "m2-risk-low",
        "m3-alpha-high",
        "m4-execution-rates",
        "m5-risk-tier2",
    ]
    assert _names(owner_client.get(MODELS, {"desk": "rates"})) == ["m4-execution-rates"]
    assert _names(owner_client.get(MODELS, {"desk": "rates", "purpose": "alpha"})) == []


def test_model_list_rejects_unknown_filter_choice(owner_client, inventory):
    response = owner_client.get(MODELS, {"status": "flying"})
    assert response.status_code == 400
    assert "status" in response.json()


def test_model_list_lifecycle_status_is_latest_version(owner_client, inventory):
    by_name = {m["name"]: m for m in owner_client.get(MODELS).json()["results"]}
    assert by_name["m1-alpha-low"]["lifecycle_status"] == "in_development"
    assert by_name["m4-execution-rates"]["lifecycle_status"] == "draft"


def test_model_list_pagination(owner_client, inventory):
    first = owner_client.get(MODELS, {"page_size": 2})
    body = first.json()
    assert body["count"] == 5
    assert [m["name"] for m in body["results"]] == ["m1-alpha-low", "m2-risk-low"]
    assert body["previous"] is None
    assert "page=2" in body["next"]

    last = owner_client.get(MODELS, {"page_size": 2, "page": 3}).json()
    assert [m["name"] for m in last["results"]] == ["m5-risk-tier2"]
    assert last["next"] is None
    assert owner_client.get(MODELS, {"page_size": 2, "page": 4}).status_code == 404


def test_patch_model_changes_materiality_and_tier(owner_client, make_model, owner):
    model = make_model()
    assert model.risk_tier == 3
    response = owner_client.patch(
        f"{MODELS}{model.pk}/", {"materiality": "60000000", "reason": "Desk limit raised."}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["materiality"] == "60000000.00"
    assert body["risk_tier"] == 2
    assert body["tier_rationale"].startswith("tier 2: high materiality")
    model.refresh_from_db()
    assert model.materiality == Decimal("60000000.00")
    assert model.risk_tier == 2
    event = Event.objects.get(action="model.updated", object_id=str(model.pk))
    assert event.reason == "Desk limit raised."
    assert event.before["risk_tier"] == 3
    assert event.after["risk_tier"] == 2


def test_patch_model_negative_materiality_is_400_and_unchanged(owner_client, make_model):
    model = make_model()
    before = _counts()
    response = owner_client.patch(f"{MODELS}{model.pk}/", {"materiality": "-1"}, format="json")
    assert response.status_code == 400
    assert "materiality" in response.json()
    model.refresh_from_db()
    assert model.materiality == Decimal("1000000.00")
    assert _counts() == before


def test_patch_model_outside_scope_is_404(api, outsider, make_model):
    model = make_model()
    response = api(outsider).patch(f"{MODELS}{model.pk}/", {"materiality": "5"}, format="json")
    assert response.status_code == 404


def test_model_endpoint_refuses_put_and_delete(owner_client, make_model):
    model = make_model()
    assert owner_client.delete(f"{MODELS}{model.pk}/").status_code == 405
    assert owner_client.put(f"{MODELS}{model.pk}/", _model_payload(), format="json").status_code == 405
    assert Model.objects.filter(pk=model.pk).exists()


# --- versions: upload -----------------------------------------------------------------


def _upload(client, model, content, version="1.0.0", **extra):
    data = {"model": model.pk, "version": version, "artifact": SimpleUploadedFile("model.skops", content), **extra}
    return client.post(VERSIONS, data, format="multipart")


def test_upload_version(owner_client, make_model, owner):
    model = make_model()
    content = skops_classifier_bytes()
    response = _upload(owner_client, model, content, hyperparameters=json.dumps({"C": 1.0}))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["artifact_sha256"] == hashlib.sha256(content).hexdigest()
    assert body["artifact_size"] == len(content)
    assert body["status"] == "draft"
    assert body["allowed_transitions"] == ["in_development", "retired"]
    assert body["estimator_class"].endswith("LogisticRegression")
    assert body["n_features"] == 3
    assert body["hyperparameters"] == {"C": 1.0}
    assert body["created_by"] == owner.username
    assert body["model"] == model.pk
    assert body["model_name"] == model.name
    version = ModelVersion.objects.get(pk=body["id"])
    assert version.artifact.name == f"artifacts/{body['artifact_sha256']}.skops"
    assert Event.objects.filter(action="model_version.created", object_id=str(version.pk)).count() == 1


def test_upload_duplicate_version_label_is_400(owner_client, make_model):
    model = make_model()
    assert _upload(owner_client, model, skops_classifier_bytes()).status_code == 201
    before = _counts()
    response = _upload(owner_client, model, skops_classifier_bytes())
    assert response.status_code == 400
    assert _counts() == before


def test_upload_pickle_is_refused(owner_client, make_model):
    model = make_model()
    before = _counts()
    content = pickle.dumps({"weights": [1, 2, 3]}, protocol=4)
    response = _upload(owner_client, model, content)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unsafe_artifact"
    assert "pickle" in body["detail"]
    assert _counts() == before


def test_upload_non_skops_is_400(owner_client, make_model):
    model = make_model()
    before = _counts()
    response = _upload(owner_client, model, b"just some text, not a model")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_artifact"
    assert _counts() == before


def test_upload_oversize_artifact_is_413(owner_client, make_model, settings):
    model = make_model()
    content = skops_classifier_bytes()
    settings.GOVERNANCE_MAX_ARTIFACT_BYTES = len(content) - 1
    before = _counts()
    response = _upload(owner_client, model, content)
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "payload_too_large"
    assert f"{len(content) - 1:,}" in body["detail"]
    assert _counts() == before


def test_upload_artifact_of_wrong_family_is_400(owner_client, make_model):
    model = make_model(model_type="random_forest")
    before = _counts()
    response = _upload(owner_client, model, skops_classifier_bytes())
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_artifact"
    assert "random forest" in response.json()["detail"]
    assert _counts() == before


def test_upload_to_model_outside_scope_says_it_does_not_exist(api, make_model, desk):
    """Permission to add versions does not reveal models the caller cannot see."""
    model = make_model()
    uploader = UserFactory(username="uma", roles=[])
    uploader.user_permissions.add(Permission.objects.get(codename="add_modelversion"))
    before = _counts()
    response = _upload(api(uploader), model, skops_classifier_bytes())
    assert response.status_code == 400
    assert "model" in response.json()
    assert "does not exist" in response.json()["model"][0]
    assert _counts() == before


# --- versions: lifecycle --------------------------------------------------------------


def _transition(client, version, to, reason=""):
    return client.post(f"{VERSIONS}{version.pk}/transition/", {"to": to, "reason": reason}, format="json")


def test_transition_to_in_development(owner_client, make_version, owner):
    version = make_version()
    response = _transition(owner_client, version, "in_development", reason="Pipeline ready.")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "in_development"
    assert body["allowed_transitions"] == ["submitted_for_validation", "retired"]
    version.refresh_from_db()
    assert version.status == "in_development"
    event = Event.objects.get(action="model_version.start_development", object_id=str(version.pk))
    assert event.before == {"status": "draft"}
    assert event.reason == "Pipeline ready."
    assert event.actor == owner


def test_invalid_transition_is_409_with_allowed(owner_client, make_version):
    version = make_version()
    before = _counts()
    response = _transition(owner_client, version, "approved")
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "invalid_transition"
    assert body["allowed"] == ["in_development", "retired"]
    assert body["from"] == "draft"
    assert body["to"] == "approved"
    version.refresh_from_db()
    assert version.status == "draft"
    assert _counts() == before


def test_unknown_status_is_400(owner_client, make_version):
    version = make_version()
    response = _transition(owner_client, version, "launched")
    assert response.status_code == 400
    assert "to" in response.json()
    version.refresh_from_db()
    assert version.status == "draft"


def test_transition_outside_scope_is_404(api, outsider, make_version):
    version = make_version()
    response = _transition(api(outsider), version, "in_development")
    assert response.status_code == 404
    version.refresh_from_db()
    assert version.status == "draft"


def test_transition_without_permission_is_403(api, auditor, make_version):
    version = make_version()
    client = api(auditor)
    assert client.get(f"{VERSIONS}{version.pk}/").status_code == 200
    before = _counts()
    response = _transition(client, version, "in_development")
    assert response.status_code == 403
    assert "transition_modelversion" in response.json()["detail"]
    version.refresh_from_db()
    assert version.status == "draft"
    assert _counts() == before


def test_validator_walks_the_lifecycle(api, owner_client, validator, compliance, make_version):
    version = make_version()
    services.validation_assign(actor=compliance, model=version.model, validator=validator)
    assert _transition(owner_client, version, "in_development").status_code == 200
    assert _transition(owner_client, version, "submitted_for_validation").status_code == 200
    response = _transition(api(validator), version, "validated")
    assert response.status_code == 200
    assert response.json()["allowed_transitions"] == ["approved", "rejected"]


def test_patch_version_while_draft(owner_client, make_version):
    version = make_version()
    response = owner_client.patch(
        f"{VERSIONS}{version.pk}/", {"code_commit": "3f9c2d41a7be", "hyperparameters": {"C": 2}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["code_commit"] == "3f9c2d41a7be"
    assert response.json()["hyperparameters"] == {"C": 2}


def test_patch_version_after_submission_is_409(owner_client, make_version):
    version = make_version()
    assert _transition(owner_client, version, "in_development").status_code == 200
    assert _transition(owner_client, version, "submitted_for_validation").status_code == 200
    before = _counts()
    response = owner_client.patch(f"{VERSIONS}{version.pk}/", {"code_commit": "abcdef1"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    version.refresh_from_db()
    assert version.code_commit == ""
    assert _counts() == before


def test_version_list_filters_by_model_and_status(owner_client, make_model, make_version, owner):
    first = make_model(name="first")
    second = make_model(name="second")
    v1 = make_version(model=first)
    make_version(model=second)
    _transition(owner_client, v1, "in_development")
    assert [v["id"] for v in owner_client.get(VERSIONS, {"model": first.pk}).json()["results"]] == [v1.pk]
    assert [v["id"] for v in owner_client.get(VERSIONS, {"status": "in_development"}).json()["results"]] == [v1.pk]
    assert owner_client.get(VERSIONS, {"model_name": "second"}).json()["count"] == 1


# --- datasets ---------------------------------------------------------------------------


def test_upload_dataset(owner_client, owner):
    response = owner_client.post(DATASETS, _dataset_form(), format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["row_count"] == 3
    assert body["content_sha256"] == hashlib.sha256(PRICE_CSV).hexdigest()
    assert body["size_bytes"] == len(PRICE_CSV)
    assert [c["name"] for c in body["schema"]] == ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
    assert body["rules"] == {"required_columns": ["Date", "Close"], "monotonic_timestamps": True}
    assert body["validation_status"] == "not_validated"
    assert body["owner"] == owner.username
    assert body["time_start"].startswith("2020-01-02")
    assert body["time_end"].startswith("2020-01-06")
    assert Event.objects.filter(action="dataset.registered", object_id=str(body["id"])).count() == 1


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"ranges": {"Close": {"min": "low"}}}, "ranges.Close.min"),
        ({"frobnicate": True}, "frobnicate: unknown rule"),
        ({"cleansing": {"sort_by_time": "yes"}}, "cleansing.sort_by_time"),
    ],
)
def test_upload_dataset_bad_rules_is_400_naming_the_path(owner_client, rules, expected):
    before = _counts()
    response = owner_client.post(DATASETS, _dataset_form(rules=json.dumps(rules)), format="multipart")
    assert response.status_code == 400
    messages = response.json()["rules"]
    assert any(m.startswith(expected) for m in messages), messages
    assert _counts() == before


def test_upload_dataset_rules_not_json_is_400(owner_client):
    before = _counts()
    response = owner_client.post(DATASETS, _dataset_form(rules="{not json"), format="multipart")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["rules"][0]
    assert _counts() == before


def test_upload_dataset_missing_time_column_is_400(owner_client):
    before = _counts()
    response = owner_client.post(DATASETS, _dataset_form(time_column="Timestamp"), format="multipart")
    assert response.status_code == 400
    assert "Timestamp" in response.json()["time_column"][0]
    assert _counts() == before


def test_validate_dataset_then_patch_rules_resets(owner_client):
    created = owner_client.post(DATASETS, _dataset_form(), format="multipart").json()
    url = f"{DATASETS}{created['id']}/"

    validated = owner_client.post(f"{url}validate/")
    assert validated.status_code == 200, validated.content
    body = validated.json()
    assert body["validation_status"] == "passed"
    assert body["validation_result"]["passed"] is True
    assert body["validated_at"] is not None

    patched = owner_client.patch(url, {"rules": {"unique": ["Close"]}}, format="json")
    assert patched.status_code == 200, patched.content
    body = patched.json()
    assert body["rules"] == {"unique": ["Close"]}
    assert body["validation_status"] == "not_validated"
    assert body["validation_result"] is None
    assert body["validated_at"] is None


def test_validate_dataset_failing_rules(owner_client):
    content = b"Date,Close\n2020-01-03,1\n2020-01-02,2\n"
    form = _dataset_form(file=SimpleUploadedFile("bad.csv", content), rules=json.dumps({"monotonic_timestamps": True}))
    created = owner_client.post(DATASETS, form, format="multipart").json()
    response = owner_client.post(f"{DATASETS}{created['id']}/validate/")
    assert response.status_code == 200
    assert response.json()["validation_status"] == "failed"
    assert owner_client.get(DATASETS, {"validation_status": "failed"}).json()["count"] == 1
    assert owner_client.get(DATASETS, {"validation_status": "passed"}).json()["count"] == 0


def test_patch_dataset_bad_rules_is_400_and_keeps_validation(owner_client):
    created = owner_client.post(DATASETS, _dataset_form(), format="multipart").json()
    url = f"{DATASETS}{created['id']}/"
    owner_client.post(f"{url}validate/")
    response = owner_client.patch(url, {"rules": {"max_gap_days": -1}}, format="json")
    assert response.status_code == 400
    assert any(m.startswith("max_gap_days") for m in response.json()["rules"])
    dataset = Dataset.objects.get(pk=created["id"])
    assert dataset.validation_status == "passed"


def test_oversize_dataset_is_413(owner_client, settings):
    settings.GOVERNANCE_MAX_DATASET_BYTES = 10
    before = _counts()
    response = owner_client.post(DATASETS, _dataset_form(), format="multipart")
    assert response.status_code == 413
    assert _counts() == before


def test_validate_dataset_outside_scope_is_404(api, outsider, make_dataset):
    dataset = make_dataset()
    response = api(outsider).post(f"{DATASETS}{dataset.pk}/validate/")
    assert response.status_code == 404
    dataset.refresh_from_db()
    assert dataset.validation_status == "not_validated"


# --- schema and docs ---------------------------------------------------------------------


def test_openapi_schema(api):
    response = api().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    assert "/api/models/" in document["paths"]
    assert "/api/versions/{id}/transition/" in document["paths"]
    assert "/api/datasets/{id}/validate/" in document["paths"]


def test_openapi_schema_default_format(api):
    response = api().get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/models/" in response.content


def test_api_docs_page(api):
    response = api().get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"swagger" in response.content.lower()


# --- query count ---------------------------------------------------------------------------


def _fresh_client(user_pk):
    # A fresh user object each time, so permission caches do not differ between requests.
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(pk=user_pk))
    return client


def _list_query_count(user_pk):
    client = _fresh_client(user_pk)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(MODELS)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()["count"]


def test_model_list_query_count_does_not_grow(owner, make_model, make_version, django_assert_max_num_queries):
    for i in range(5):
        make_version(model=make_model(name=f"model-{i:02d}"))
    five, count = _list_query_count(owner.pk)
    assert count == 5
    for i in range(5, 20):
        make_version(model=make_model(name=f"model-{i:02d}"))
    twenty, count = _list_query_count(owner.pk)
    assert count == 20
    assert twenty == five

    client = _fresh_client(owner.pk)
    with django_assert_max_num_queries(5):
        response = client.get(MODELS)
    assert len(response.json()["results"]) == 20
