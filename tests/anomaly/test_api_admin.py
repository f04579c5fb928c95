"""Monitoring alerts in the API (list, acknowledge, resolve; scoped like deployments) and the admin
(open alerts first, read-only, buttons calling the services)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from audit.models import Event
from audit.scope import audited_change
from audit.services import SystemActor, record_event
from governance import anomaly_services, services
from governance.models import Deployment, MonitoringAlert
from governance.roles import Role
from tests.anomaly.conftest import ingest, samples
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

DROP = {"n": 1000, "accuracy": lambda i: 0.6 if i < 400 else 0.45}


@pytest.fixture
def alert(deployed_with_target, owner):
    version = deployed_with_target(rollback_target=None)
    ingest(owner, version.model, samples(**DROP))
    deployment = Deployment.objects.get(model=version.model, status__in=Deployment.LIVE_STATUSES)
    (raised,) = anomaly_services.monitoring_evaluate(actor=anomaly_services.MONITORING, deployment=deployment)
    return raised


@pytest.fixture
def stranger(other_desk):
    """A model owner on another desk: may view alerts, sees none of these models."""
    user = UserFactory(username="sam", roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER])
    services.membership_set(actor=SystemActor("tests"), user=user, desk=other_desk)
    return user


def _url(model, suffix: str = "") -> str:
    return f"/api/monitoring/{model}/alerts{suffix}"


def test_the_alerts_of_a_model_by_id_or_name(api, alert, owner):
    for ref in (alert.model_id, alert.model.name):
        answer = api(owner).get(_url(ref))
        assert answer.status_code == 200, answer.content
        (row,) = answer.json()["results"]
        assert (row["id"], row["rule_id"], row["status"], row["severity"]) == (
            alert.pk,
            "MON-ACCURACY-01",
            "open",
            "critical",
        )
        assert row["actions"] == ["suspend", "rollback", "alert"]
        assert {item["action"]: item["status"] for item in row["action_results"]}["rollback"] == "refused"
        assert row["detection"]["detections"]["accuracy_drop"]["breached"] is True
    assert api(owner).get(_url(alert.model_id) + "?status=resolved").json()["results"] == []
    bad = api(owner).get(_url(alert.model_id) + "?status=closed")
    assert bad.status_code == 400 and "unknown status closed" in str(bad.json())


def test_alerts_are_scoped_like_deployments(api, alert, stranger, outsider, validator):
    assert api(stranger).get(_url(alert.model_id)).status_code == 404
    assert api(stranger).post(_url(alert.model_id, f"/{alert.pk}/acknowledge"), {}).status_code == 404
    assert api(outsider).get(_url(alert.model_id)).status_code == 403  # no view_monitoringalert
    assert api(validator).get(_url(alert.model_id)).status_code == 403
    assert api().get(_url(alert.model_id)).status_code in (401, 403)
    assert api(stranger).get(_url("no-such-model")).status_code == 404


def test_acknowledge_and_resolve_through_the_api(api, alert, owner, compliance, risk_manager):
    acknowledge = _url(alert.model_id, f"/{alert.pk}/acknowledge")
    resolve = _url(alert.model_id, f"/{alert.pk}/resolve")
    refused = api(owner).post(acknowledge, {"comment": "mine"}, format="json")
    assert refused.status_code == 403 and "acknowledge_monitoringalert" in str(refused.json())
    answer = api(compliance).post(acknowledge, {"comment": "On it."}, format="json")
    assert answer.status_code == 200 and answer.json()["status"] == "acknowledged"
    assert answer.json()["acknowledged_by"] == "chloe"
    assert api(compliance).post(acknowledge, {}, format="json").status_code == 409
    missing = api(risk_manager).post(resolve, {}, format="json")
    assert missing.status_code == 400 and "resolution" in str(missing.json())
    assert MonitoringAlert.objects.get().status == "acknowledged"
    done = api(risk_manager).post(resolve, {"resolution": "Feed outage; model reviewed and reinstated."}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "resolved" and done.json()["resolved_by"] == "rhea"
    assert api(risk_manager).post(resolve, {"resolution": "again"}, format="json").status_code == 409
    assert api(compliance).post(_url(alert.model_id, "/999999/resolve"), {"resolution": "x"}).status_code == 404
    assert Event.objects.filter(action="monitoring.alert_resolved", object_id=str(alert.pk)).count() == 1
    assert done.json()["false_alarm"] is False


def test_resolving_as_a_false_alarm_through_the_api(api, alert, risk_manager):
    resolve = _url(alert.model_id, f"/{alert.pk}/resolve")
    bad = api(risk_manager).post(resolve, {"resolution": "Stale feed.", "false_alarm": "perhaps"}, format="json")
    assert bad.status_code == 400 and "false_alarm" in bad.json()
    assert MonitoringAlert.objects.get().status == "open"
    done = api(risk_manager).post(resolve, {"resolution": "Stale feed.", "false_alarm": True}, format="json")
    assert done.status_code == 200 and done.json()["false_alarm"] is True
    event = Event.objects.get(action="monitoring.alert_resolved", object_id=str(alert.pk))
    assert event.after["false_alarm"] is True and event.before["false_alarm"] is False


def test_the_admin_lists_open_alerts_first(client, alert, compliance, owner):
    resolved = anomaly_services.monitoring_alert_resolve(actor=compliance, alert=alert, resolution="Reviewed.")
    # An older alert that is still open (another rule, raised a day earlier): it comes first.
    with audited_change():
        older = MonitoringAlert.objects.create(
            deployment=alert.deployment,
            model=alert.model,
            version=alert.version,
            rule_id="MON-TRADES-01",
            actions=["alert"],
            severity="medium",
            message="trade count far from its norm",
            raised_at=alert.raised_at - dt.timedelta(days=1),
            policy_decision=alert.policy_decision,
        )
        record_event(actor=SystemActor("tests"), action="monitoring.alert_raised", target=older)
    client.force_login(compliance)
    listing = client.get(reverse("admin:governance_monitoringalert_changelist"))
    assert listing.status_code == 200
    assert [row.pk for row in listing.context["cl"].result_list] == [older.pk, resolved.pk]
    page = client.get(reverse("admin:governance_monitoringalert_change", args=[resolved.pk]))
    assert page.status_code == 200 and b"Actions taken" in page.content and b"refused" in page.content
    assert b'name="_alert"' not in page.content  # resolved: no buttons
    # Nothing can be added or deleted by hand; the owner sees the alert, without buttons.
    assert client.get(reverse("admin:governance_monitoringalert_add")).status_code == 403
    client.force_login(owner)
    page = client.get(reverse("admin:governance_monitoringalert_change", args=[older.pk]))
    assert page.status_code == 200 and b'name="_alert"' not in page.content


def test_admin_buttons_acknowledge_and_resolve(client, alert, compliance):
    client.force_login(compliance)
    url = reverse("admin:governance_monitoringalert_change", args=[alert.pk])
    page = client.get(url)
    assert b'value="acknowledge"' in page.content and b'value="resolve"' in page.content
    client.post(url, {"_alert": "acknowledge", "alert_text": "Looking."})
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    refused = client.post(url, {"_alert": "resolve", "alert_text": ""}, follow=True)
    assert b"Nothing was changed" in refused.content
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    page = client.get(url)
    assert b'name="alert_false_alarm"' in page.content
    client.post(url, {"_alert": "resolve", "alert_text": "Data vendor outage; fixed.", "alert_false_alarm": "1"})
    alert.refresh_from_db()
    assert (alert.status, alert.resolution, alert.false_alarm) == ("resolved", "Data vendor outage; fixed.", True)


def test_admin_list_action_acknowledges_open_alerts(client, alert, risk_manager):
    client.force_login(risk_manager)
    client.post(
        reverse("admin:governance_monitoringalert_changelist"),
        {"action": "acknowledge_selected", "_selected_action": [alert.pk]},
    )
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == risk_manager


def test_the_schema_describes_the_alerts_api(api):
    document = api().get("/api/schema/", {"format": "json"}).json()
    paths = document["paths"]
    assert {
        "/api/monitoring/{model}/alerts",
        "/api/monitoring/{model}/alerts/{alert_id}/acknowledge",
        "/api/monitoring/{model}/alerts/{alert_id}/resolve",
    } <= set(paths)
    assert "MonitoringAlertStatusEnum" in document["components"]["schemas"]
