"""The deployment and change approval record (RTS 6 Arts 5, 8, 12) of one version: the change,
its evidence and approvals, the phase plan, the kill switch and rollback, the live results.
The showcase is the demo's story in small: 1.1.0 deployed in shadow with 1.0.0 as its rollback
target, an accuracy drop in its live data, the monitoring job's kill switch and rollback."""

from __future__ import annotations

import re
from decimal import Decimal

import numpy as np
import pytest
from django.db.models import Sum
from sklearn.linear_model import LogisticRegression
from skops import io as sio

from audit.models import Event
from governance.models import MonitoringAlert, MonitoringSample, Report, SignOffResponse
from governance.reports.builders import deployment_record
from governance.reports.context import BuildContext
from governance.reports.pdf import data_json
from tests.anomaly.conftest import ingest, samples
from tests.factories import force_fields
from tests.reports.conftest import embedded_data, pdf_text, read_pdf

pytestmark = pytest.mark.django_db

DROP = {"n": 1000, "accuracy": lambda i: 0.6 if i < 400 else 0.45}


@pytest.fixture
def newer(approved_version, make_version):
    """1.1.0 of the approved model, retrained with stronger regularisation from another commit; approved."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3))
    artifact = sio.dumps(LogisticRegression(C=0.5).fit(x, (x[:, 0] > 0).astype(int)))
    version = make_version(
        model=approved_version.model,
        version="1.1.0",
        artifact=artifact,
        hyperparameters={"C": 0.5},
        code_commit="8b41e0c2d9aa",
    )
    return force_fields(version, status="approved")


@pytest.fixture
def rolled_back(deployed_with_target, owner, django_capture_on_commit_callbacks):
    version = deployed_with_target()
    with django_capture_on_commit_callbacks(execute=True):
        ingest(owner, version.model, samples(**DROP))
    assert MonitoringAlert.objects.filter(rule_id="MON-ACCURACY-01").exists()
    version.refresh_from_db()
    return version


@pytest.fixture
def record(generate, compliance, rolled_back, no_report_cert):
    report = generate(actor=compliance, report_type="deployment-record", version_id=rolled_back.pk)
    assert report.status == "succeeded", report.error
    return report


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_the_change_approvals_and_phase_plan_are_the_stored_ones(record, rolled_back, approved_version):
    reader = read_pdf(record)
    body = embedded_data(reader)["body"]
    text = pdf_text(reader)
    # The change: compared with the rollback target, artifact hash included.
    assert body["previous"]["version"] == approved_version.version
    changed = {row["field"]: row for row in body["changes"]}
    assert changed["artifact sha256"]["after"] == rolled_back.artifact_sha256
    assert changed["artifact sha256"]["before"] == approved_version.artifact_sha256 != rolled_back.artifact_sha256
    assert (changed["code commit"]["before"], changed["code commit"]["after"]) == (
        approved_version.code_commit,
        "8b41e0c2d9aa",
    )
    assert changed["hyperparameter C"]["after"] == "0.5000"
    assert rolled_back.artifact_sha256 in _squeezed(text)
    assert body["model"]["risk_tier"] == rolled_back.model.risk_tier
    # The designated approver's sign-off, with its audit seq.
    response = SignOffResponse.objects.get(request__version=rolled_back, request__to_status="deployed")
    seq = Event.objects.get(object_type="governance.signoffresponse", object_id=str(response.pk)).seq
    (deploy_signoff,) = [s for s in body["signoffs"] if s["transition"] == "approved -> deployed"]
    assert deploy_signoff["responses"] == [
        {
            "approver": response.approver_label,
            "roles": response.roles,
            "verdict": "approve",
            "comment": "Limits agreed.",
            "decided_at": deploy_signoff["responses"][0]["decided_at"],
            "round": 1,
            "audit_seq": seq,
        }
    ]
    assert "Limits agreed." in text and re.search(rf"\b{seq}\b", text)
    # The limits set before deployment, and the phase's rules from the policy parameters.
    (plan,) = body["phase_plan"]
    assert (plan["phase"], plan["capital_limit"], plan["instruments"], plan["rollback_target"]) == (
        "shadow",
        "5000000.00",
        ["NVDA"],
        approved_version.version,
    )
    assert plan["policy_limits"]["min_duration"] == "14 days (336h)"  # the shipped parameters
    assert plan["policy_limits"]["max_capital_fraction"] == "0.2"
    assert "5,000,000.00 USD" in text  # amounts are printed with thousands separators


def test_kill_switch_rollback_and_results_after_deployment(record, rolled_back):
    reader = read_pdf(record)
    body = embedded_data(reader)["body"]
    text = pdf_text(reader)
    safety = [(e["action"], e["actor"], e["system_actor"]) for e in body["safety_events"]]
    assert safety == [
        ("kill_switch.engaged", "system:monitoring", True),
        ("deployment.rolled_back", "system:monitoring", True),
    ]
    assert "kill_switch.engaged" in text and "system actor" in text
    # The restored deployment of the rollback target is in the record.
    assert [d["version"] for d in body["deployments"]] == [rolled_back.version, "1.0.0"]
    # Monitoring figures equal the stored samples, counted here directly.
    stored = MonitoringSample.objects.filter(deployment__version=rolled_back)
    monitoring = body["monitoring"]
    assert monitoring["sample_count"] == stored.count() == 1000
    right = sum(1 for s in stored if s.predicted == s.outcome)
    assert monitoring["correct"] == right and monitoring["accuracy"] == round(right / 1000, 4)
    assert Decimal(monitoring["total_pnl"]) == stored.aggregate(total=Sum("pnl"))["total"]
    assert monitoring["baseline_accuracy"] == 0.6
    assert f"Total P&L {Decimal(monitoring['total_pnl']):,.2f} USD" in text
    assert re.search(rf"Monitoring samples\s+{monitoring['sample_count']},", text)
    # Drawdown: the largest fall of the cumulative daily P&L, recomputed from the days.
    peak, worst = Decimal(0), Decimal(0)
    for day in monitoring["days"]:
        peak = max(peak, Decimal(day["cumulative_pnl"]))
        worst = max(worst, peak - Decimal(day["cumulative_pnl"]))
    assert Decimal(monitoring["max_drawdown"]) == worst > 0
    (alert,) = monitoring["alerts"]
    assert alert["rule_id"] == "MON-ACCURACY-01" and {r["action"]: r["status"] for r in alert["action_results"]} == {
        "suspend": "done",
        "rollback": "done",
        "alert": "done",
    }
    assert "MON-ACCURACY-01" in text
    # The P&L chart is drawn as an image.
    assert any("/XObject" in (page.get("/Resources") or {}) for page in reader.pages)


def test_the_embedded_json_is_the_builders_data(record):
    reader = read_pdf(record)
    raw = reader.attachments["report-data.json"][0]
    assert data_json(embedded_data(reader)) == raw
    ctx = BuildContext(report=record, checkpoint=record.checkpoint, generated_at=record.started_at)
    assert embedded_data(reader)["body"] == deployment_record.build(ctx)


def test_a_version_never_deployed_says_so_and_does_not_fail(generate, compliance, approved_version, no_report_cert):
    report = generate(actor=compliance, report_type="deployment-record", version_id=approved_version.pk)
    assert report.status == "succeeded", report.error
    reader = read_pdf(report)
    body = embedded_data(reader)["body"]
    text = pdf_text(reader)
    assert body["deployments"] == [] and body["phase_plan"] == [] and body["events"] == []
    assert "This version was never deployed" in text
    assert "No deployment of this version was proposed" in text
    assert "The kill switch was never engaged" in text
    assert "No full risk assessment of this version has succeeded" in text
    assert "first version" in text


def test_a_regulator_gets_404_on_an_unshared_models_record(
    api, generate, compliance, regulator, share, approved_version, other_model, no_report_cert
):
    unshared = generate(actor=compliance, report_type="deployment-record", version_id=approved_version.pk)
    share(other_model)
    client = api(regulator)
    assert client.get(f"/api/reports/{unshared.pk}").status_code == 404
    assert client.get(f"/api/reports/{unshared.pk}/download").status_code == 404
    share(approved_version.model)
    assert client.get(f"/api/reports/{unshared.pk}/download").status_code == 200


def test_the_subject_is_a_version(api, compliance, approved_version):
    response = api(compliance).post(
        "/api/reports/", {"report_type": "deployment-record", "model": approved_version.model_id}
    )
    assert response.status_code == 400 and "version" in response.json()
    assert Report.objects.count() == 0


def test_no_samples_yet(generate, compliance, deployed_with_target, no_report_cert):
    """A deployment with no samples yet: no results, no alert, no kill switch event, said so."""
    version = deployed_with_target()
    report = generate(actor=compliance, report_type="deployment-record", version_id=version.pk)
    assert report.status == "succeeded", report.error
    reader = read_pdf(report)
    body = embedded_data(reader)["body"]
    text = pdf_text(reader)
    assert body["monitoring"]["sample_count"] == 0 and body["safety_events"] == []
    assert [d["phase"] for d in body["deployments"]] == ["shadow"]
    assert "No monitoring samples were received for this version's deployments." in text
    assert "No monitoring alert was raised on this version's deployments." in text
    assert "The kill switch was never engaged" in text
