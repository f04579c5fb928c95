"""POST /api/monitoring/<model>/samples and GET /api/monitoring/<model>/batches: status codes,
messages, exact numbers through JSON, scope."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from drf_spectacular.generators import SchemaGenerator

from audit.models import Event
from audit.services import SystemActor
from governance import services
from governance.models import MonitoringBatch, MonitoringSample
from governance.roles import Role
from tests.factories import UserFactory
from tests.monitoring.conftest import sample, samples

pytestmark = pytest.mark.django_db


def _post(client, model, body):
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post(f"/api/monitoring/{model}/samples", raw, content_type="application/json")


def test_a_new_batch_is_201_and_the_same_again_200(api, deployed, gateway):
    client = api(gateway)
    body = {"batch_id": "2026-11-02:desk-a:0001", "samples": samples(4)}
    first = _post(client, deployed.model_id, body)
    assert first.status_code == 201, first.json()
    data = first.json()
    assert (data["status"], data["sample_count"], data["pnl_total"], data["trade_count_total"]) == (
        "created",
        4,
        "-482.00",
        12,
    )
    assert data["first_at"] == "2026-11-02T14:30:00Z" and data["received_by"] == "gateway"
    again = _post(client, deployed.model_id, body)
    assert again.status_code == 200
    assert again.json() == {**data, "status": "replayed"}
    assert MonitoringSample.objects.count() == 4


def test_the_model_may_be_named(api, deployed, gateway):
    response = _post(api(gateway), deployed.model.name, {"batch_id": "b1", "samples": samples(1)})
    assert response.status_code == 201


def test_pnl_as_a_json_number_is_kept_exactly(api, deployed, gateway):
    raw = json.dumps({"batch_id": "b1", "samples": [sample(0, pnl="__PNL__")]}).replace('"__PNL__"', "0.10")
    assert _post(api(gateway), deployed.model_id, raw).status_code == 201
    assert MonitoringSample.objects.get().pnl == Decimal("0.10")


def test_other_content_under_the_same_id_is_409_and_nothing_stored(api, deployed, gateway):
    client = api(gateway)
    _post(client, deployed.model_id, {"batch_id": "b1", "samples": samples(2)})
    response = _post(client, deployed.model_id, {"batch_id": "b1", "samples": samples(3)})
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert "batch 'b1'" in response.json()["detail"] and response.json()["batch_id"] == "b1"
    assert MonitoringSample.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"batch_id": "b1", "samples": [sample(0, colour="red")]}, "samples", "sample 0: unknown field(s) colour"),
        ({"batch_id": "b1", "samples": [sample(0, at="2026-11-02T14:30:00")]}, "samples", "sample 0: 'at' has no"),
        ({"batch_id": "b1", "samples": [sample(0, at="2999-01-01T00:00:00Z")]}, "samples", "sample 0: 'at' 2999"),
        ({"batch_id": "b1", "samples": [sample(1), sample(0)]}, "samples", "sample 1: out of order"),
        ({"batch_id": "b1", "samples": [sample(0, probability=2)]}, "samples", "sample 0: 'probability' must be"),
        ({"batch_id": "b1", "samples": [sample(0, pnl="1e3")]}, "samples", "sample 0: 'pnl' must be a decimal"),
        ({"batch_id": "b1", "samples": [sample(0, pnl="NaN")]}, "samples", "sample 0: 'pnl' must be a decimal"),
        ({"batch_id": "b1", "samples": []}, "samples", "a non-empty list of samples is required"),
        ({"batch_id": "b1"}, "samples", "a non-empty list of samples is required"),
        ({"samples": samples(1)}, "batch_id", "a batch id of 1 to 100 characters"),
        ({"batch_id": "b1", "samples": samples(1), "extra": 1}, "extra", "unknown field"),
    ],
)
def test_bad_input_is_400_naming_the_field(api, deployed, gateway, body, field, message):
    response = _post(api(gateway), deployed.model_id, body)
    assert response.status_code == 400
    assert any(m.startswith(message) for m in response.json()[field]), response.json()
    assert not MonitoringBatch.objects.exists() and not MonitoringSample.objects.exists()


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '{"batch_id": "b1", "samples": [{"at": "x", "pnl": NaN}]}'])
def test_a_body_that_is_not_a_json_object_is_400(api, deployed, gateway, raw):
    response = _post(api(gateway), deployed.model_id, raw)
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"] or "object" in response.json()["detail"]
    assert not MonitoringBatch.objects.exists()


def test_a_batch_beyond_the_limit_is_400(api, deployed, gateway, settings):
    settings.GOVERNANCE_MONITORING_MAX_BATCH = 2
    response = _post(api(gateway), deployed.model_id, {"batch_id": "b1", "samples": samples(3)})
    assert response.status_code == 400
    assert "at most 2 samples per batch" in response.json()["samples"][0]


def test_a_model_that_is_not_deployed_is_404(api, approved_version, owner):
    response = _post(api(owner), approved_version.model_id, {"batch_id": "b1", "samples": samples(1)})
    assert response.status_code == 404
    assert response.json()["error"] == "not_deployed"
    assert "is not deployed" in response.json()["detail"]


def test_an_unknown_or_invisible_model_is_404_and_no_permission_is_403(api, deployed, gateway, validator, desk):
    body = {"batch_id": "b1", "samples": samples(1)}
    assert _post(api(gateway), 999999, body).status_code == 404
    stranger = UserFactory(username="other-gateway", roles=[Role.TRADING_SYSTEM])
    invisible = _post(api(stranger), deployed.model.name, body)
    missing = _post(api(stranger), "no-such-model", body)
    assert invisible.status_code == missing.status_code == 404
    # The same answer as for a model that does not exist, naming only what the caller sent.
    assert invisible.json() == {"detail": f"no model {deployed.model.name!r} that you can see"}
    assert missing.json() == {"detail": "no model 'no-such-model' that you can see"}
    assert _post(api(), deployed.model_id, body).status_code == 401
    reader = UserFactory(username="reader", roles=[Role.INTERNAL_AUDITOR])  # sees every model, may not push
    response = _post(api(reader), deployed.model_id, body)
    assert response.status_code == 403
    assert "ingest_monitoring" in response.json()["detail"]
    assert not MonitoringBatch.objects.exists()
    assert not Event.objects.filter(action="monitoring.batch_ingested").exists()


def test_batches_are_listed_latest_first_in_scope(api, deployed, gateway, owner, outsider):
    client = api(gateway)
    _post(client, deployed.model_id, {"batch_id": "b1", "samples": samples(2)})
    _post(client, deployed.model_id, {"batch_id": "b2", "samples": samples(3, start=5)})
    response = api(owner).get(f"/api/monitoring/{deployed.model_id}/batches")
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 2
    assert [b["batch_id"] for b in data["results"]] == ["b2", "b1"]
    assert data["results"][0]["sample_count"] == 3 and data["results"][0]["pnl_total"] == "-361.50"
    assert api(outsider).get(f"/api/monitoring/{deployed.model_id}/batches").status_code == 404
    # Sight of the model without view_deployment: an empty list, as for deployments.
    developer = UserFactory(username="dev-reader", roles=[Role.MODEL_DEVELOPER])
    services.desk_access_grant(
        actor=SystemActor("tests"), user=developer, desk=deployed.model.desk, permission="view_desk_models"
    )
    assert api(developer).get(f"/api/monitoring/{deployed.model_id}/batches").json()["count"] == 0


def test_schema_describes_the_monitoring_api(api):
    document = SchemaGenerator().get_schema(request=None, public=True)
    post = document["paths"]["/api/monitoring/{model}/samples"]["post"]
    assert {"200", "201", "400", "403", "404", "409"} <= set(post["responses"])
    assert "/api/monitoring/{model}/batches" in document["paths"]


def test_the_trading_system_role_reads_the_permission_and_pushes_nothing_else(api, deployed, gateway):
    from django.contrib.auth.models import Group

    perms = Group.objects.get(name=Role.TRADING_SYSTEM.value).permissions.values_list("codename", flat=True)
    assert set(perms) == {"view_deployment", "ingest_monitoring"}
    client = api(gateway)
    assert client.get(f"/api/deployments/{deployed.model_id}/permission").json()["allowed"] is True
    assert client.post(f"/api/deployments/{deployed.model_id}/kill-switch/", {"reason": "x"}).status_code == 403
    assert client.get(f"/api/monitoring/{deployed.model_id}/batches").status_code == 200
