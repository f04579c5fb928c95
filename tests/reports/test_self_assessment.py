"""The annual self-assessment (RTS 6 Art. 9 and Annex I) over a period: scope, the review of each
deployed model, governance, the kill switch and limits, monitoring, validations, findings, and
the approval chain left to be signed."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from audit.models import Event
from governance import anomaly_services, services
from governance.errors import NotPermitted
from governance.models import Finding, MonitoringAlert, Report
from governance.reports.builders import self_assessment
from governance.reports.context import BuildContext
from governance.reports.pdf import data_json
from models_registry import services as registry_services
from tests.reports.conftest import embedded_data, pdf_text, read_pdf
from tests.reports.test_deployment_record import newer, rolled_back  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def _year() -> dict[str, str]:
    today = timezone.now().astimezone(dt.UTC).date()
    return {"period_from": (today - dt.timedelta(days=364)).isoformat(), "period_to": today.isoformat()}


@pytest.fixture
def refusal(owner, make_version, approved_version, split_datasets):
    """The owner tries to validate her own version: refused by segregation of duties, audited."""
    version = make_version(
        model=approved_version.model,
        version="2.0.0",
        training_dataset=split_datasets["training"],
        validation_dataset=split_datasets["validation"],
        test_dataset=split_datasets["test"],
    )
    for to in ("in_development", "submitted_for_validation"):
        registry_services.model_version_transition(actor=owner, version=version, to_status=to)
    with pytest.raises(NotPermitted):
        registry_services.model_version_transition(actor=owner, version=version, to_status="validated")
    return Event.objects.get(action="sod.refused")


@pytest.fixture
def finding(validator, owner, approved_version):
    return services.finding_raise(
        actor=validator,
        version=approved_version,
        severity="low",
        title="Regime labels computed with the same day's close",
        description="Look-ahead in the regime split.",
        remediation_owner=owner,
        due_date=timezone.now().date() + dt.timedelta(days=30),
    )


@pytest.fixture
def assessment(generate, compliance, rolled_back, refusal, finding, no_report_cert):  # noqa: F811
    report = generate(actor=compliance, report_type="self-assessment", **_year())
    assert report.status == "succeeded", report.error
    return report


def test_scope_review_and_controls_equal_the_stored_records(assessment, rolled_back, refusal):  # noqa: F811
    reader = read_pdf(assessment)
    body = embedded_data(reader)["body"]
    text = pdf_text(reader)
    model = rolled_back.model
    # Scope: the one model deployed in the year, with both its deployments (1.1.0, then 1.0.0 restored).
    assert [m["name"] for m in body["scope"]["models"]] == [model.name]
    (row,) = body["scope"]["models"]
    assert [d["version"] for d in row["deployments"]] == ["1.1.0", "1.0.0"]
    assert [a["rule_id"] for a in row["alerts"]] == ["MON-ACCURACY-01"]
    # Kill switch and rollbacks: counted here from the log directly.
    engaged = Event.objects.filter(action="kill_switch.engaged").count()
    rolled = Event.objects.filter(action="deployment.rolled_back").count()
    controls = body["controls"]
    assert (controls["engagements"], controls["engagements_by_system"], controls["rollbacks"]) == (engaged, 1, rolled)
    assert engaged == rolled == 1
    assert re.search(rf"Kill\s+switch\s+engagements\s+{engaged}\s+\(1\s+by\s+system\s+actors\)", text)
    assert "No test of the kill switch is recorded in the period" in text
    assert body["controls"]["kill_switch_tests"] == []
    # Monitoring effectiveness.
    alerts = MonitoringAlert.objects.count()
    assert body["effectiveness"]["alerts_raised"] == alerts == 1
    assert re.search(rf"Alerts\s+raised\s+{alerts}\s+\(MON-ACCURACY-01:\s+1\)", text)
    # Governance: the segregation refusal of the period, and who holds the roles.
    (sod,) = body["governance"]["sod_refusals"]
    assert (sod["seq"], sod["rule"]) == (refusal.seq, refusal.after["rule"])
    assert refusal.after["rule"] in text
    roles = {r["role"]: r["holders"] for r in body["governance"]["roles"]}
    assert "chloe" in roles["compliance officer"] and "rhea" in roles["risk manager"]


def test_validations_findings_and_the_approval_chain(assessment, finding):
    reader = read_pdf(assessment)
    body = embedded_data(reader)["body"]
    text = pdf_text(reader)
    validated = Event.objects.filter(action="model_version.validate").values_list("seq", flat=True)
    assert [e["seq"] for e in body["validations"]["transitions"]] == list(validated)
    assert [f["id"] for f in body["deficiencies"]["raised"]] == [finding.pk]
    assert body["deficiencies"]["raised"][0]["severity"] == "low" and finding.title in " ".join(text.split())
    assert len(body["deficiencies"]["open_at_end"]) == Finding.objects.exclude(status="closed").count()
    steps = body["approval_chain"]["steps"]
    assert [s["step"] for s in steps] == ["risk", "compliance", "audit", "management"]
    assert steps[-1]["holders"] == [] and steps[-1]["role"] is None
    assert "The system does not record these approvals yet" in text
    assert "Approved: senior management" in text


def test_the_embedded_json_is_the_builders_data(assessment):
    reader = read_pdf(assessment)
    raw = reader.attachments["report-data.json"][0]
    assert data_json(embedded_data(reader)) == raw
    ctx = BuildContext(report=assessment, checkpoint=assessment.checkpoint, generated_at=assessment.started_at)
    assert embedded_data(reader)["body"] == self_assessment.build(ctx)


def test_a_period_with_nothing_deployed_says_so_and_does_not_fail(generate, compliance, no_report_cert):
    report = generate(actor=compliance, report_type="self-assessment", period_from="2020-01-01", period_to="2020-12-31")
    assert report.status == "succeeded", report.error
    reader = read_pdf(report)
    body = embedded_data(reader)["body"]
    text = pdf_text(reader)
    assert body["scope"]["models"] == [] and body["effectiveness"]["alerts_raised"] == 0
    assert "No model was deployed at any time in the period." in text
    assert "No monitoring alert was raised in the period." in text
    assert "No finding was raised in the period." in text
    assert "No segregation of duties refusal was recorded in the period." in text


def test_without_a_period_it_covers_the_last_12_months_ending_today(api, compliance, no_report_cert):
    """RTS 6 Art. 9 is annual: from today - 365 days + 1 to today (UTC days, inclusive)."""
    from governance import report_services

    today = timezone.now().astimezone(dt.UTC).date()
    expected = (today - dt.timedelta(days=364), today)
    report = report_services.report_request(actor=compliance, report_type="self-assessment")
    assert (report.period_from, report.period_to) == expected
    assert (expected[1] - expected[0]).days + 1 == 365
    response = api(compliance).post("/api/reports/", {"report_type": "self-assessment"}, format="json")
    assert response.status_code == 202, response.json()
    assert (response.json()["period_from"], response.json()["period_to"]) == tuple(d.isoformat() for d in expected)
    # One end of a period alone is still refused, naming the missing one.
    response = api(compliance).post(
        "/api/reports/", {"report_type": "self-assessment", "period_from": today.isoformat()}, format="json"
    )
    assert response.status_code == 400 and "period_to" in response.json()
    # Other types keep no default period: the inventory without one is as at generation.
    inventory = report_services.report_request(actor=compliance, report_type="inventory")
    assert inventory.period_from is None and inventory.period_to is None


def test_needs_the_whole_log_and_is_never_shown_to_a_regulator(
    api, generate, compliance, owner, regulator, share, approved_version, no_report_cert
):
    # It reads the whole firm's log: a model owner may not request it.
    assert api(owner).post("/api/reports/", {"report_type": "self-assessment", **_year()}).status_code == 403
    assert Report.objects.count() == 0
    report = generate(actor=compliance, report_type="self-assessment", **_year())
    share(approved_version.model)
    assert api(regulator).get(f"/api/reports/{report.pk}/download").status_code == 404


def test_a_false_alarm_is_counted(generate, compliance, rolled_back, no_report_cert):  # noqa: F811
    """An alert resolved as a false alarm counts as resolved, acted on and false."""
    alert = MonitoringAlert.objects.get()
    anomaly_services.monitoring_alert_resolve(
        actor=compliance, alert=alert, resolution="The drop came from a stale price feed.", false_alarm=True
    )
    alert.refresh_from_db()
    report = generate(actor=compliance, report_type="self-assessment", **_year())
    reader = read_pdf(report)
    effectiveness = embedded_data(reader)["body"]["effectiveness"]
    assert (effectiveness["resolved"], effectiveness["false_alarms"], effectiveness["acted_on"]) == (1, 1, 1)
    (row,) = effectiveness["alerts"]
    assert row["false_alarm"] is True and row["resolution"] == alert.resolution
    assert row["time_to_action_seconds"] == (alert.resolved_at - alert.raised_at).total_seconds()
    assert effectiveness["median_time_to_action"] == row["time_to_action"]
    assert "false alarm" in pdf_text(reader)


def test_a_resolution_that_reads_like_a_false_alarm_is_not_one_unless_flagged(
    generate,
    compliance,
    rolled_back,  # noqa: F811
    no_report_cert,
):
    """What counts is what the person resolving it said (the flag), not words in the text."""
    alert = MonitoringAlert.objects.get()
    anomaly_services.monitoring_alert_resolve(
        actor=compliance, alert=alert, resolution="Not a false alarm: the model really degraded."
    )
    report = generate(actor=compliance, report_type="self-assessment", **_year())
    effectiveness = embedded_data(read_pdf(report))["body"]["effectiveness"]
    assert (effectiveness["resolved"], effectiveness["false_alarms"]) == (1, 0)


def test_an_engagement_is_a_test_only_when_recorded_as_a_drill(
    generate, compliance, risk_manager, deployed_with_target
):
    version = deployed_with_target()
    services.kill_switch_engage(actor=risk_manager, model=version.model, reason="Limit breach; not a drill.")
    report = generate(actor=compliance, report_type="self-assessment", **_year())
    controls = embedded_data(read_pdf(report))["body"]["controls"]
    assert (controls["engagements"], controls["kill_switch_tests"]) == (1, [])
    assert "No test of the kill switch is recorded" in controls["kill_switch_test_statement"]


def test_a_kill_switch_drill_is_listed_as_a_test(generate, compliance, risk_manager, deployed_with_target):
    version = deployed_with_target()
    services.kill_switch_engage(
        actor=risk_manager, model=version.model, reason="Quarterly kill switch exercise.", drill=True
    )
    services.kill_switch_lift(actor=compliance, model=version.model, reason="Drill over.")
    report = generate(actor=compliance, report_type="self-assessment", **_year())
    reader = read_pdf(report)
    controls = embedded_data(reader)["body"]["controls"]
    (drill,) = controls["kill_switch_tests"]
    seq = Event.objects.get(action="kill_switch.engaged").seq
    assert (drill["seq"], drill["actor"], controls["engagements"], controls["lifts"]) == (seq, "rhea", 1, 1)
    assert "Quarterly kill switch exercise." in pdf_text(reader)
    assert "recorded as a drill" in controls["kill_switch_test_statement"]
