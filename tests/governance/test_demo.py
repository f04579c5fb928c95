"""``manage.py demo --no-serve``: what it sets up, and that a second run changes nothing.

The demo trains six models on real prices and runs a full risk assessment of each (about a
minute on two cores), so it runs twice per module:
a module-scoped fixture runs it, records the state after each run, and flushes the test
database afterwards (the demo commits outside any test transaction, since it migrates).
"""

from __future__ import annotations

import io
import json
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.apps import apps
from django.contrib.auth import authenticate, get_user_model
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import RequestFactory
from django.test.utils import override_settings

from audit.models import Event
from governance.models import (
    Deployment,
    Desk,
    MonitoringAlert,
    MonitoringBatch,
    PolicyDecision,
    PolicySet,
    SignOffRequest,
)
from governance.roles import Role
from models_registry.artifacts import load_artifact
from models_registry.choices import ModelType
from models_registry.models import Dataset, Model, ModelVersion, RiskAssessment

pytestmark = pytest.mark.django_db

PASSWORD = "demo-password-for-tests-7c1e"
USERNAMES = {"alice", "bob", "vera", "carl", "max", "rita", "ian", "admin"}
FEATURES = ["ret_1", "ret_5", "ret_20", "vol_20", "ma_gap_10", "ma_gap_50", "volume_z_20"]
EXPECTED_COMPLEXITY = {
    "linear_regression": "low",
    "logistic_regression": "low",
    "decision_tree": "medium",
    "random_forest": "medium",
    "svm": "high",
    "deep_learning": "very_high",
}


def _table_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models(include_auto_created=True)}


@dataclass
class DemoRuns:
    var_dir: Path
    first_output: str
    second_output: str
    counts_before: dict[str, int]
    counts_after_first: dict[str, int]
    counts_after_second: dict[str, int]
    summary_after_first: dict[str, Any]


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("demo-var")
    outputs = []
    with django_db_blocker.unblock(), override_settings(VAR_DIR=var_dir), pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEMO_PASSWORD", PASSWORD)
        counts_before = _table_counts()
        try:
            out = io.StringIO()
            call_command("demo", "--no-serve", stdout=out)
            outputs.append(out.getvalue())
            counts_after_first = _table_counts()
            summary = json.loads((var_dir / "demo" / "summary.json").read_text(encoding="utf-8"))
            out = io.StringIO()
            call_command("demo", "--no-serve", stdout=out)
            outputs.append(out.getvalue())
            counts_after_second = _table_counts()
        except BaseException:
            call_command("flush", interactive=False, verbosity=0)
            raise
    yield DemoRuns(
        var_dir=var_dir,
        first_output=outputs[0],
        second_output=outputs[1],
        counts_before=counts_before,
        counts_after_first=counts_after_first,
        counts_after_second=counts_after_second,
        summary_after_first=summary,
    )
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


def test_users_can_log_in_with_the_demo_password(demo):
    users = {u.username: u for u in get_user_model().objects.filter(username__in=USERNAMES)}
    assert set(users) == USERNAMES
    for username in USERNAMES:
        # django-axes needs the request (its client address) to apply the login lock-out.
        request = RequestFactory().post("/admin/login/")
        assert authenticate(request, username=username, password=PASSWORD) == users[username], username
        assert authenticate(request, username=username, password=PASSWORD + "x") is None
        assert users[username].is_staff
    assert users["admin"].is_superuser
    assert not any(users[name].is_superuser for name in USERNAMES - {"admin"})
    assert set(users["alice"].groups.values_list("name", flat=True)) == {Role.MODEL_OWNER, Role.MODEL_DEVELOPER}
    assert set(users["vera"].groups.values_list("name", flat=True)) == {Role.VALIDATOR}
    assert set(users["carl"].groups.values_list("name", flat=True)) == {Role.COMPLIANCE_OFFICER}
    assert set(users["rita"].groups.values_list("name", flat=True)) == {Role.REGULATOR}
    assert set(users["ian"].groups.values_list("name", flat=True)) == {Role.INTERNAL_AUDITOR}


def test_desks_and_datasets(demo):
    assert Desk.objects.count() == 2
    datasets = list(Dataset.objects.all())
    assert len(datasets) == 8
    assert {d.validation_status for d in datasets} == {"passed"}
    for dataset in datasets:
        assert dataset.row_count > 0
        assert dataset.validation_result["passed"] is True
        assert dataset.validated_at is not None
        assert len(dataset.content_sha256) == 64
        assert default_storage.exists(dataset.file.name)


def test_one_model_per_type_with_its_complexity(demo):
    models = list(Model.objects.all())
    assert len(models) == 6
    assert sorted(m.model_type for m in models) == sorted(ModelType.values)
    for model in models:
        assert model.complexity.value == EXPECTED_COMPLEXITY[model.model_type], model.name
        assert model.risk_tier in (1, 2, 3)


def test_each_model_has_a_loadable_version_predicting_on_seven_features(demo):
    rows = pd.DataFrame(np.random.default_rng(1).normal(size=(5, 7)), columns=FEATURES)
    for model in Model.objects.all():
        versions = list(model.versions.order_by("version"))
        # The deployment scenario retrains the logistic model (1.1.0); the others have one version.
        expected = ["1.0.0", "1.1.0"] if model.name == "nvda-direction-logistic" else ["1.0.0"]
        assert [v.version for v in versions] == expected, model.name
        version = versions[0]
        assert version.n_features == 7
        assert version.feature_names == FEATURES
        assert version.training_dataset is not None
        assert version.test_dataset is not None
        assert version.training_dataset != version.test_dataset
        with default_storage.open(version.artifact.name, "rb") as handle:
            estimator = load_artifact(handle.read())
        predictions = estimator.predict(rows)
        assert predictions.shape == (5,), model.name
        assert np.isfinite(predictions.astype(float)).all()


def test_versions_moved_through_the_lifecycle(demo):
    statuses = Counter(ModelVersion.objects.values_list("status", flat=True))
    assert statuses["submitted_for_validation"] >= 1
    assert statuses["validated"] >= 1
    assert statuses["rejected"] >= 1
    assert statuses["draft"] == 0
    # Validation decisions are the validator's, and each step is audited.
    decisions = Event.objects.filter(action__in=["model_version.validate", "model_version.reject"])
    # Validated, then approved, deployed or (the rolled-back 1.1.0) suspended; or rejected.
    later = statuses["approved"] + statuses["deployed"] + statuses["suspended"]
    assert decisions.count() == statuses["validated"] + statuses["rejected"] + later
    assert set(decisions.values_list("actor__username", flat=True)) == {"vera"}


def test_the_policies_are_in_force_and_every_transition_was_evaluated(demo):
    active = PolicySet.objects.get(is_active=True)
    assert active.activated_by.username == "carl"
    transitions = Event.objects.filter(action__startswith="model_version.").exclude(
        action__in=["model_version.created", "model_version.updated"]
    )
    decided = PolicyDecision.objects.filter(policy_set=active)
    assert decided.count() >= transitions.count() > 0


def test_three_signoff_outcomes_approved_blocked_rejected(demo):
    scenarios = SignOffRequest.objects.filter(version__version="1.0.0", to_status="approved")
    requests = {r.model.name: r for r in scenarios.select_related("model", "version")}
    approved = requests["nvda-direction-logistic"]
    # Approved for use; the deployment scenario later rolls back to it, so it ends deployed.
    assert approved.status == "approved" and approved.version.status == "deployed"
    assert sorted(approved.responses.values_list("approver__username", flat=True)) == ["carl", "max"]
    blocked = requests["orcl-regime-tree"]
    assert blocked.status == "blocked" and blocked.version.status == "validated"
    denial = next(r for r in blocked.reasons if r["outcome"] == "deny")
    assert denial["id"] == "FINDINGS-01" and "Regime labels" in denial["message"]
    assert "MiFID II RTS 6 Art. 9 (deficiencies remedied)" in denial["references"]
    assert f"FINDINGS-01: {denial['message']}" in demo.first_output
    rejected = requests["nvda-next-day-return-linear"]
    assert rejected.status == "rejected" and rejected.version.status == "validated"
    assert rejected.responses.get().verdict == "reject"
    assert len(requests) == 3


def test_summary_file(demo):
    path = demo.var_dir / "demo" / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    assert summary == demo.summary_after_first
    by_name = {m["name"]: m for m in summary["models"]}
    assert set(by_name) == set(Model.objects.values_list("name", flat=True))
    for model in Model.objects.with_lifecycle_status():
        entry = by_name[model.name]
        assert entry["complexity"] == EXPECTED_COMPLEXITY[model.model_type]
        assert entry["risk_tier"] == model.risk_tier
        assert entry["lifecycle_status"] == model.lifecycle_status
    assert len(summary["datasets"]) == 8
    assert {d["validation"] for d in summary["datasets"]} == {"passed"}
    assert str(path) in demo.first_output


def test_credentials_file(demo):
    path = demo.var_dir / "demo-credentials.txt"
    text = path.read_text(encoding="utf-8")
    assert f"password: {PASSWORD}" in text.splitlines()
    for username in USERNAMES:
        assert username in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"Password (DEMO_PASSWORD): {PASSWORD}" in demo.first_output


def test_first_run_created_objects(demo):
    grew = {label for label, count in demo.counts_after_first.items() if count > demo.counts_before.get(label, 0)}
    assert {"models_registry.Model", "models_registry.ModelVersion", "models_registry.Dataset", "audit.Event"} <= grew
    assert "Demo ready: 0 new objects." not in demo.first_output


def test_second_run_adds_nothing(demo):
    assert demo.counts_after_second == demo.counts_after_first
    assert "Demo ready: 0 new objects." in demo.second_output
    assert demo.counts_after_second["audit.Event"] > 0


def test_each_model_has_one_succeeded_full_assessment_requested_by_vera(demo):
    assessments = list(RiskAssessment.objects.select_related("version__model", "requested_by"))
    assert sorted(a.version.model.name for a in assessments) == sorted(Model.objects.values_list("name", flat=True))
    for a in assessments:
        name = a.version.model.name
        assert (a.kind, a.status, a.attempts) == ("full", "succeeded", 1), (name, a.error)
        assert a.requested_by.username == "vera" and a.version.version == "1.0.0"
        # The firm's full suite: default parameters, on the version's real price datasets.
        assert a.parameters["pbo_configurations"] == 8 and a.parameters["cv_splits"] == 5
        assert {"sharpe_ratio", "max_drawdown", "pbo", "deflated_sharpe_ratio"} <= set(a.metrics), name
        assert ("rmse" if a.version.model.model_type == "linear_regression" else "accuracy") in a.metrics
        assert a.results and a.overfitting and a.explainability
        # Rated by the policies in force (carl activated them before any model moved).
        assert a.rating in ("green", "amber", "red"), name
        # Each finding it raised is on the model, owned by the model's owner.
        for finding in a.findings.all():
            assert finding.model_id == a.version.model_id and finding.remediation_owner == a.version.model.owner
        line = f"  {name:<30} assessment {a.pk} succeeded (ran in "
        assert line in demo.first_output
        assert f"  {name:<30} assessment {a.pk} succeeded (reused: same inputs)" in demo.second_output
        assert f"findings raised: {a.findings.count()}" in demo.first_output
    events = Event.objects.filter(action="risk_assessment.succeeded")
    assert events.count() == len(assessments)
    assert "Risk assessments (full suite, default parameters, requested by vera, run eagerly" in demo.first_output


def test_the_assessments_come_after_the_signoff_scenarios(demo):
    # The sign-offs were decided on the validation evidence, before any assessment existed.
    first_assessment = Event.objects.filter(action="risk_assessment.requested").order_by("seq").first()
    scenario_requests = SignOffRequest.objects.filter(version__version="1.0.0").values_list("pk", flat=True)
    last_signoff = (
        Event.objects.filter(action__startswith="signoff", object_id__in=[str(pk) for pk in scenario_requests])
        .order_by("seq")
        .last()
    )
    assert last_signoff.seq < first_assessment.seq
    output = demo.first_output
    assert output.index("Sign-off requests") < output.index("Risk assessments") < output.index("Datasets:")


def test_phased_deployment_detects_the_injected_drop_suspends_and_rolls_back(demo):
    """Issue 8's demo: shadow, an early promotion to pilot, simulated live data with an
    injected accuracy drop, detection, automatic suspension and rollback, all audited."""
    deployments = list(Deployment.objects.filter(model__name="nvda-direction-logistic").order_by("pk"))
    assert [(d.version.version, d.phase, d.status) for d in deployments] == [
        ("1.1.0", "pilot", "rolled_back"),
        ("1.0.0", "pilot", "active"),
    ]
    retrained, restored = deployments
    assert restored.rollback_target is None and restored.signoff is None
    assert retrained.kill_switch_engaged and "MON-ACCURACY-01" in retrained.kill_reason
    assert retrained.rollback_target.version == "1.0.0"
    promotion = SignOffRequest.objects.get(
        version=retrained.version, from_status="deployed", to_status="deployed", deployment__phase="pilot"
    )
    assert promotion.status == "approved"
    assert sorted(promotion.responses.values_list("approver__username", flat=True)) == ["carl", "max"]
    assert "DEPLOY-DURATION-02" in {r["id"] for r in promotion.latest_decision.results if r["outcome"] == "pass"}
    alert = MonitoringAlert.objects.get(model__name="nvda-direction-logistic")
    assert alert.rule_id == "MON-ACCURACY-01" and alert.deployment == retrained
    assert [r["action"] for r in alert.action_results if r["status"] == "done"] == ["suspend", "rollback", "alert"]
    # Ten clean shadow days, then pilot days until the drop (from day 5) was caught within 5 days.
    batches = MonitoringBatch.objects.filter(deployment=retrained).count()
    assert 10 + 5 <= batches <= 10 + 9
    actions = list(
        Event.objects.filter(object_type="governance.deployment", object_id__in=[str(d.pk) for d in deployments])
        .order_by("seq")
        .values_list("action", "actor_label")
    )
    assert actions == [
        ("deployment.started", "max"),
        ("deployment.promoted", "carl"),
        ("kill_switch.engaged", "system:monitoring"),
        ("deployment.rolled_back", "system:monitoring"),
        ("deployment.started", "system:monitoring"),
    ]
    assert Event.objects.filter(action="monitoring.batch_ingested").count() == batches
    assert Event.objects.filter(action="monitoring.alert_raised", object_id=str(alert.pk)).exists()
    assert "ALERT MON-ACCURACY-01 (critical)" in demo.first_output
    assert "trading permission now: allowed, version 1.0.0, phase pilot" in demo.second_output


def test_inventory_attributes_and_the_pilot_cap(demo):
    """Every demo model is in-house, fed by no other model, with its outputs, users and
    restrictions on use; carl capped 1.1.0's pilot positions with a post-model adjustment."""
    from models_registry.models import PostModelAdjustment

    for model in Model.objects.all():
        assert model.is_vendor_model is False and model.vendor_name == ""
        assert not model.upstream_models.exists()
        assert model.outputs_and_users and model.restrictions_on_use, model.name
    (cap,) = PostModelAdjustment.objects.with_status()
    pilot = Deployment.objects.get(model__name="nvda-direction-logistic", version__version="1.1.0")
    assert (cap.version, cap.approved_by.get_username(), cap.status) == (pilot.version, "carl", "active")
    assert cap.adjustment.startswith("cap: NVDA position at most 50%")
    assert cap.effective_from == pilot.phase_started_at
    assert Event.objects.filter(action="post_model_adjustment.recorded", actor_label="carl").count() == 1


def test_one_report_of_each_type_in_var_reports_signed_and_reused_by_the_rerun(demo):
    import hashlib
    import os

    from governance.models import Report
    from governance.reports import registry
    from governance.reports.pdf import missing_pdf_libraries

    if missing_pdf_libraries() and os.environ.get("REQUIRE_PDF_LIBS") != "1":
        assert "Reports" in demo.first_output and "none issued" in demo.first_output
        pytest.skip(missing_pdf_libraries())

    types = sorted(registry.report_types())
    assert {"audit-trail", "annex-iv"} <= set(types)
    for key in types:
        [report] = Report.objects.filter(report_type=key, status="succeeded")
        content = (demo.var_dir / "reports" / f"{key}.pdf").read_bytes()
        assert content.startswith(b"%PDF-"), key
        issued = Event.objects.get(action="report.issued", object_id=str(report.pk))
        assert hashlib.sha256(content).hexdigest() == issued.after["sha256"] == report.sha256, key
        assert report.signed and report.requested_by.username == "carl", key
        assert f"{key}: report {report.pk} (issued in" in demo.first_output
        assert f"{key}: report {report.pk} (reused)" in demo.second_output
    assert (demo.var_dir / "report-signing" / "report-signing-cert.pem").exists()
