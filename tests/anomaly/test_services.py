"""The anomaly rules end to end on a deployed version: samples ingested, detections, the policy
decision, alerts, and the actions through the existing services, each an audit event."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from audit.models import Event
from audit.verify import verify_log
from governance import anomaly_services, selectors, services
from governance.errors import Conflict, NotPermitted
from governance.models import Deployment, MonitoringAlert, PolicyDecision
from tests.anomaly.conftest import ingest, samples

pytestmark = pytest.mark.django_db

SYSTEM = anomaly_services.MONITORING
# 400 good predictions (accuracy 0.6), then 600 at 0.45: a drop of 15 points.
DROP = {"n": 1000, "accuracy": lambda i: 0.6 if i < 400 else 0.45}


def _live(model) -> Deployment:
    return Deployment.objects.get(model=model, status__in=Deployment.LIVE_STATUSES)


def test_an_accuracy_drop_raises_an_alert_stops_the_model_and_rolls_it_back(
    deployed_with_target, approved_version, owner, compliance, django_capture_on_commit_callbacks
):
    version = deployed_with_target()
    model = version.model
    deployment = _live(model)
    # Ingest fires the evaluation (a Celery task, eager here) once each batch commits.
    with django_capture_on_commit_callbacks(execute=True):
        ingest(owner, model, samples(**DROP))
    alert = MonitoringAlert.objects.get(rule_id="MON-ACCURACY-01")
    assert (alert.deployment, alert.version, alert.status, alert.severity) == (deployment, version, "open", "critical")
    assert alert.actions == ["suspend", "rollback", "alert"]
    assert "live accuracy dropped below the validation baseline 0.6" in alert.message
    detection = alert.detection["detections"]["accuracy_drop"]
    assert detection["breached"] and detection["detail"]["baseline_source"] == "parameters"
    assert alert.window_from is not None and alert.window_to is not None
    outcomes = {item["action"]: item["status"] for item in alert.action_results}
    assert outcomes == {"suspend": "done", "rollback": "done", "alert": "done"}
    # The model was stopped, then returned to its rollback target.
    deployment.refresh_from_db()
    assert deployment.status == "rolled_back" and deployment.kill_switch_engaged
    restored = _live(model)
    assert restored.version == approved_version and restored.status == "active"
    permission = selectors.trading_permission(model_id=model.pk)
    assert permission["allowed"] and permission["version"] == approved_version.version
    version.refresh_from_db()
    assert version.status == "suspended"
    # Every step is an audit event, in order, by the monitoring system actor.
    decision = alert.policy_decision
    assert decision.trigger == "monitoring" and decision.outcome == "deny"
    assert decision.input_document["monitoring"]["deployment"]["id"] == deployment.pk
    steps = list(
        Event.objects.filter(
            action__in=[
                "policy.decided",
                "monitoring.alert_raised",
                "kill_switch.engaged",
                "deployment.rolled_back",
                "deployment.started",
                "monitoring.alert_actions",
            ],
            seq__gt=Event.objects.get(action="policy.decided", object_id=str(decision.pk)).seq - 1,
        )
        .order_by("seq")
        .values_list("action", "actor_label")
    )
    assert steps[:6] == [
        ("policy.decided", "system:monitoring"),
        ("monitoring.alert_raised", "system:monitoring"),
        ("kill_switch.engaged", "system:monitoring"),
        ("deployment.rolled_back", "system:monitoring"),
        ("deployment.started", "system:monitoring"),
        ("monitoring.alert_actions", "system:monitoring"),
    ]
    # The owner and the compliance officers were told.
    message = next(m for m in mail.outbox if "MON-ACCURACY-01" in m.subject)
    assert set(message.to) == {owner.email, compliance.email} and "Acknowledge and resolve" in message.body
    assert verify_log().ok


def test_clean_data_raises_no_alert(deployed_with_target, owner):
    version = deployed_with_target()
    ingest(owner, version.model, samples(n=1000, accuracy=0.6, seed=3))
    alerts = anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(version.model))
    assert alerts == [] and not MonitoringAlert.objects.exists()
    decision = PolicyDecision.objects.filter(trigger="monitoring").latest("pk")
    assert decision.outcome == "allow"
    detections = decision.input_document["monitoring"]["detections"]
    assert detections["accuracy_drop"]["computed"] and not detections["accuracy_drop"]["breached"]
    assert detections["losing_trades"]["computed"] and not detections["losing_trades"]["breached"]
    # No features were reported: drift cannot be computed, and says why.
    assert not detections["feature_drift"]["computed"] and "features" in detections["feature_drift"]["reason"]
    assert _live(version.model).status == "active"


def test_an_alert_is_not_raised_again_while_unresolved_and_the_rule_restarts_after_resolution(
    deployed_with_target, owner, risk_manager
):
    version = deployed_with_target(rollback_target=None)
    model = version.model
    ingest(owner, model, samples(**DROP))
    first = anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(model))
    assert [a.rule_id for a in first] == ["MON-ACCURACY-01"]
    events = Event.objects.filter(action="monitoring.alert_raised").count()
    assert anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(model)) == []
    assert MonitoringAlert.objects.count() == 1
    assert Event.objects.filter(action="monitoring.alert_raised").count() == events
    # Resolved, the rule reads only the samples after the alert's window: none yet, no new alert.
    alert = anomaly_services.monitoring_alert_resolve(
        actor=risk_manager, alert=first[0], resolution="Desk confirmed a data outage; model reviewed."
    )
    assert alert.status == "resolved" and alert.resolved_by == risk_manager
    assert anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(model)) == []
    decision = PolicyDecision.objects.filter(trigger="monitoring").latest("pk")
    accuracy = decision.input_document["monitoring"]["detections"]["accuracy_drop"]
    assert not accuracy["computed"] and accuracy["samples"] == 0


def test_a_rollback_without_target_is_recorded_and_the_model_stays_suspended(deployed_with_target, owner):
    version = deployed_with_target(rollback_target=None)
    model = version.model
    ingest(owner, model, samples(**DROP))
    (alert,) = anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(model))
    results = {item["action"]: item for item in alert.action_results}
    assert results["suspend"]["status"] == "done"
    assert results["rollback"]["status"] == "refused"
    assert "names no rollback target" in results["rollback"]["detail"]
    live = _live(model)
    assert live.version == version and live.status == "suspended" and live.kill_switch_engaged
    assert not selectors.trading_permission(model_id=model.pk)["allowed"]
    recorded = Event.objects.get(action="monitoring.alert_actions", object_id=str(alert.pk))
    assert recorded.after["actions"][1]["status"] == "refused"
    assert verify_log().ok


def test_a_per_model_override_changes_the_outcome(deployed_with_target, owner):
    # The same drop, but this model's CUSUM threshold is far higher: nothing fires.
    version = deployed_with_target(monitoring_parameters={"accuracy": {"baseline": 0.6, "cusum_threshold": 500.0}})
    model = version.model
    ingest(owner, model, samples(**DROP))
    assert anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(model)) == []
    decision = PolicyDecision.objects.filter(trigger="monitoring").latest("pk")
    assert decision.input_document["monitoring"]["parameters"]["accuracy"]["cusum_threshold"] == 500.0
    assert decision.input_document["monitoring"]["detections"]["accuracy_drop"]["threshold"] == 500.0


def test_without_a_baseline_the_accuracy_rule_is_not_computed(deployed_with_target, owner):
    version = deployed_with_target(monitoring_parameters=None)
    ingest(owner, version.model, samples(**DROP))
    assert anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(version.model)) == []
    decision = PolicyDecision.objects.filter(trigger="monitoring").latest("pk")
    accuracy = decision.input_document["monitoring"]["detections"]["accuracy_drop"]
    assert not accuracy["computed"] and "no validation accuracy" in accuracy["reason"]
    assert {r["id"]: r["outcome"] for r in decision.results}["MON-ACCURACY-01"] == "not_applicable"


def test_a_daily_loss_beyond_the_limit_suspends_the_model(deployed_with_target, owner):
    # The model's own limit for the rule (a per-model override of the deployment's max_daily_loss).
    version = deployed_with_target(
        rollback_target=None,
        monitoring_parameters={"accuracy": {"baseline": 0.6}, "daily_loss": {"max_daily_loss": "1000.00"}},
    )
    model = version.model
    # Clean accuracy; one day loses 1,000.01 in total.
    rows = samples(n=200, accuracy=0.6, seed=5, pnl=lambda i, right: "0.00")
    rows[120]["pnl"] = "-1000.01"
    ingest(owner, model, rows)
    (alert,) = anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(model))
    assert alert.rule_id == "MON-DAILYLOSS-01" and alert.actions == ["suspend", "alert"]
    assert "a daily loss of 1000.01 USD is beyond the maximum daily loss 1000.00" in alert.message
    assert _live(model).kill_switch_engaged


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"accuracy": {"shift": 2}}, "monitoring_parameters.accuracy.shift: must be a number between 0 and 1"),
        ({"accuracy": {"shfit": 0.1}}, "monitoring_parameters.accuracy.shfit: unknown parameter"),
        ({"speed": {}}, "monitoring_parameters.speed: unknown section"),
        ({"drift": {"bins": 2.5}}, r"monitoring_parameters.drift.bins: must be an integer >= 1"),
        ({"daily_loss": {"max_daily_loss": 500.5}}, "monitoring_parameters.daily_loss.max_daily_loss: must be a posit"),
        ({"accuracy": {"baseline": 0.5, "shift": 0.5}}, "accuracy.shift: must be below accuracy.baseline"),
        ("cusum", "monitoring_parameters: must be an object"),
    ],
)
def test_bad_monitoring_parameters_in_a_proposal_are_refused(approved_version, owner, overrides, message):
    from tests.fixtures_deployment import EVIDENCE, deployment

    requests = approved_version.signoff_requests.count()
    events = Event.objects.count()
    with pytest.raises(ValidationError, match=message):
        services.signoff_submit(
            actor=owner,
            version=approved_version,
            to_status="deployed",
            justification="Phase plan.",
            evidence=EVIDENCE,
            deployment=deployment(monitoring_parameters=overrides),
        )
    assert approved_version.signoff_requests.count() == requests and Event.objects.count() == events


def test_acknowledge_and_resolve_need_the_role_and_a_resolution(deployed_with_target, owner, compliance, validator):
    version = deployed_with_target(rollback_target=None)
    ingest(owner, version.model, samples(**DROP))
    (alert,) = anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(version.model))
    for person in (owner, validator):
        with pytest.raises(NotPermitted):
            anomaly_services.monitoring_alert_acknowledge(actor=person, alert=alert)
    with pytest.raises(NotPermitted, match="needs a person"):
        anomaly_services.monitoring_alert_acknowledge(actor=SYSTEM, alert=alert)
    alert = anomaly_services.monitoring_alert_acknowledge(actor=compliance, alert=alert, comment="Looking into it.")
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", compliance)
    with pytest.raises(Conflict, match="only an open alert"):
        anomaly_services.monitoring_alert_acknowledge(actor=compliance, alert=alert)
    with pytest.raises(ValidationError, match="resolution"):
        anomaly_services.monitoring_alert_resolve(actor=compliance, alert=alert, resolution="  ")
    alert = anomaly_services.monitoring_alert_resolve(actor=compliance, alert=alert, resolution="Reviewed.")
    with pytest.raises(Conflict, match="already resolved"):
        anomaly_services.monitoring_alert_resolve(actor=compliance, alert=alert, resolution="again")
    actions = list(
        Event.objects.filter(object_id=str(alert.pk), action__startswith="monitoring.alert").values_list(
            "action", flat=True
        )
    )
    assert actions == [
        "monitoring.alert_raised",
        "monitoring.alert_actions",
        "monitoring.alert_acknowledged",
        "monitoring.alert_resolved",
    ]


def test_the_beat_task_evaluates_every_live_deployment(deployed_with_target, owner):
    from governance.tasks import evaluate_monitoring

    version = deployed_with_target(rollback_target=None)
    ingest(owner, version.model, samples(**DROP))
    result = evaluate_monitoring.apply().get()
    deployment = _live(version.model)
    assert list(result) == [deployment.pk] and len(result[deployment.pk]) == 1
    assert evaluate_monitoring.apply().get() == {deployment.pk: []}


def test_a_deployment_no_longer_live_is_not_evaluated(deployed_with_target, owner, risk_manager):
    version = deployed_with_target()
    deployment = _live(version.model)
    services.deployment_rollback(actor=risk_manager, model=version.model, reason="Planned switch back.")
    with pytest.raises(Conflict, match="no longer live"):
        anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=deployment)


def _with_features(rows, *, shift_from: int, seed: int = 11):
    import numpy as np

    rng = np.random.default_rng(seed)
    for i, row in enumerate(rows):
        row["features"] = {"ret": float(rng.normal()), "vol": float(rng.normal(1.5 if i >= shift_from else 0, 1))}
    return rows


def test_feature_drift_warns_and_asks_for_a_revalidation(deployed_with_target, owner, monkeypatch):
    from models_registry import assessment_services

    version = deployed_with_target(rollback_target=None)
    model = version.model
    ingest(owner, model, _with_features(samples(n=1000, accuracy=0.6, seed=4), shift_from=500))
    asked = []

    def request(**kwargs):
        asked.append(kwargs)
        raise ValidationError({"version": [f"version {kwargs['version']} has no target"]})

    monkeypatch.setattr(assessment_services, "assessment_request", request)
    (alert,) = anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(model))
    assert (alert.rule_id, alert.severity, alert.actions) == ("MON-DRIFT-01", "high", ["revalidate", "alert"])
    drift = alert.detection["detections"]["feature_drift"]
    assert drift["detail"]["drifted"] == ["vol"] and drift["statistic"] > 0.25
    assert drift["detail"]["features"]["ret"]["psi"] < 0.1
    (call,) = asked
    assert call["actor"].label == "system:monitoring" and call["kind"] == "full"
    assert call["occasion"].startswith("monitoring alert MON-DRIFT-01 ")
    results = {item["action"]: item for item in alert.action_results}
    assert results["revalidate"]["status"] == "refused" and "has no target" in results["revalidate"]["detail"]
    # A warning: the model keeps trading.
    assert _live(model).status == "active"


def test_a_losing_streak_suspends_the_model(deployed_with_target, owner):
    version = deployed_with_target(rollback_target=None)
    # Accuracy and P&L decoupled: predictions stay right, but 25 trades in a row lose.
    rows = samples(n=300, accuracy=0.6, seed=8, pnl=lambda i, right: "-10.00" if 200 <= i < 225 else "10.00")
    ingest(owner, version.model, rows)
    alerts = anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(version.model))
    assert [a.rule_id for a in alerts] == ["MON-LOSING-01"]
    alarm = alerts[0].detection["detections"]["losing_trades"]["detail"]["alarm"]
    assert alarm["cause"] == "streak" and alarm["streak_probability"] < 0.001
    assert _live(version.model).kill_switch_engaged


def test_a_burst_of_trades_warns_and_only_alerts(deployed_with_target, owner):
    version = deployed_with_target(rollback_target=None)
    rows = samples(n=1000, accuracy=0.6, seed=9, pnl=lambda i, right: "0.00")
    for row in rows[960:1000]:  # the last day: 10 trades per decision instead of 1
        row["trade_count"] = 10
    ingest(owner, version.model, rows)
    (alert,) = anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(version.model))
    assert (alert.rule_id, alert.severity, alert.actions) == ("MON-TRADES-01", "medium", ["alert"])
    alarm = alert.detection["detections"]["trade_count"]["detail"]["alarm"]
    assert (alarm["count"], alarm["median"], alarm["direction"]) == (400.0, 40.0, "high")
    assert _live(version.model).status == "active"  # a warning: the model keeps trading


def test_a_drawdown_beyond_the_phase_limit_suspends_the_model(deployed_with_target, owner):
    # Shadow phase: 10% of the 5,000,000.00 capital limit. Gains first, then a fall of 500,000.01.
    version = deployed_with_target(rollback_target=None)

    def pnl(i, right):
        return {0: "100000.00", 100: "-300000.00", 101: "-200000.01"}.get(i, "0.00")

    ingest(owner, version.model, samples(n=200, accuracy=0.6, seed=10, pnl=pnl))
    alerts = anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(version.model))
    assert [a.rule_id for a in alerts] == ["MON-DRAWDOWN-01"]
    drawdown = alerts[0].detection["detections"]["drawdown"]
    assert drawdown["detail"]["max_drawdown"] == "500000.01"
    assert Decimal(drawdown["detail"]["limit"]) == Decimal("500000.00")  # exact: capital x fraction
    assert "drawdown 500000.01 USD is beyond 0.1 of the capital limit 5000000.00 in phase shadow" in alerts[0].message
    assert _live(version.model).kill_switch_engaged


def test_a_monitoring_decision_replays_to_the_same_result(deployed_with_target, owner):
    import io

    from django.core.management import call_command

    version = deployed_with_target(rollback_target=None)
    ingest(owner, version.model, samples(**DROP))
    (alert,) = anomaly_services.monitoring_evaluate(actor=SYSTEM, deployment=_live(version.model))
    out = io.StringIO()
    call_command("policy_replay", str(alert.policy_decision_id), stdout=out)  # raises on a difference
    assert "same" in out.getvalue().lower()


def test_the_rules_run_after_each_ingest_and_by_beat(settings):
    from governance import monitoring_services
    from governance.celery import app

    assert anomaly_services.on_ingest in monitoring_services.after_ingest_hooks
    entry = settings.CELERY_BEAT_SCHEDULE["monitoring-anomaly-rules"]
    assert entry == {
        "task": "governance.evaluate_monitoring",
        "schedule": float(settings.GOVERNANCE_MONITORING_INTERVAL),
    }
    assert {"governance.evaluate_monitoring", "governance.evaluate_deployment_monitoring"} <= set(app.tasks)


def test_the_ingest_task_skips_a_deployment_no_longer_live(deployed_with_target, owner, risk_manager):
    from governance.tasks import evaluate_deployment_monitoring

    version = deployed_with_target()
    deployment = _live(version.model)
    services.deployment_rollback(actor=risk_manager, model=version.model, reason="Planned switch back.")
    assert evaluate_deployment_monitoring.apply(args=[deployment.pk]).get() == []
