"""The Annex IV technical documentation: the nine points filled from the records of one version,
figures equal to the stored ones, plain statements where there is no evidence, scoped access."""

from __future__ import annotations

import re

import pytest
from django.db.models import Sum

from governance.models import Deployment, MonitoringBatch
from governance.reports.builders import annex_iv
from governance.reports.pdf import data_json
from tests.assessments.conftest import FAST, assessable, nvda_datasets  # noqa: F401  (fixtures)
from tests.reports.conftest import embedded_data, pdf_text, read_pdf

pytestmark = pytest.mark.django_db


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def assessed(assessable, owner, active_set, django_capture_on_commit_callbacks):  # noqa: F811
    """A version with a real full risk assessment (metrics, rating, findings)."""
    from models_registry import services as registry_services

    version = assessable()
    with django_capture_on_commit_callbacks(execute=True):
        assessment, _ = registry_services.assessment_request(
            actor=owner, version=version, kind="full", parameters=dict(FAST)
        )
    assessment.refresh_from_db()
    assert assessment.status == "succeeded", assessment.error
    return version, assessment


def test_an_assessed_version_shows_its_stored_metrics_rating_findings_and_datasets(generate, compliance, assessed):
    version, assessment = assessed
    report = generate(actor=compliance, report_type="annex-iv", version_id=version.pk)
    assert report.status == "succeeded", report.error
    reader = read_pdf(report)
    data = embedded_data(reader)
    text = _flat(pdf_text(reader))
    body = data["body"]

    assert [s["id"] for s in body["sections"]] == [key for key, _ in annex_iv.SECTIONS] and len(body["sections"]) == 9
    assert "Voluntary" in text and "not a high-risk AI system" in text
    metrics = {row["key"]: row for row in body["metrics"]["metrics"]}
    assert metrics["accuracy"]["value"] == assessment.metrics["accuracy"]
    assert f"Accuracy (test period) {assessment.metrics['accuracy']:.4f}" in text
    assert f"Sharpe ratio (after costs) {assessment.metrics['sharpe_ratio']:.4f}" in text
    assert body["metrics"]["rating"] == assessment.rating and f"Rating: {assessment.rating}" in text
    titles = list(assessment.findings.order_by("raised_at", "pk").values_list("title", flat=True))
    assert [f["title"] for f in body["risk"]["findings"]] == titles
    assert all(_flat(title)[:40] in text for title in titles)
    training = body["development"]["datasets"][0]
    assert training["sha256"] == version.training_dataset.content_sha256
    assert training["row_count"] == version.training_dataset.row_count
    assert f"{version.training_dataset.row_count} rows" in text
    # Lifecycle changes come from the audit log, up to the checkpoint.
    actions = [e["action"] for e in body["changes"]["listed"]]
    assert "model_version.created" in actions and "risk_assessment.succeeded" in actions
    assert all(e["seq"] <= report.checkpoint.tree_size for e in body["changes"]["listed"])
    # Not applicable, said plainly.
    assert "None applied" in text and "Not applicable" in text
    assert "MON-ACCURACY-01" in text and body["post_market"]["rules"]


def test_the_embedded_json_is_the_data_and_its_hash_is_recorded(generate, compliance, assessed):
    import hashlib

    report = generate(actor=compliance, report_type="annex-iv", version_id=assessed[0].pk)
    reader = read_pdf(report)
    raw = reader.attachments["report-data.json"][0]
    assert hashlib.sha256(raw).hexdigest() == report.data_sha256
    assert data_json(embedded_data(reader)) == raw


def test_a_deployed_version_shows_its_deployment_limits_and_oversight(generate, compliance, deployed):
    report = generate(actor=compliance, report_type="annex-iv", version_id=deployed.pk)
    assert report.status == "succeeded", report.error
    reader = read_pdf(report)
    body = embedded_data(reader)["body"]
    text = _flat(pdf_text(reader))
    live = Deployment.objects.get(version=deployed)
    [shown] = body["monitoring"]["deployments"]
    assert (shown["id"], shown["phase"], shown["instruments"]) == (live.pk, live.phase, live.instruments)
    assert shown["capital_limit"] == f"{live.currency} {live.capital_limit:,.2f}" and shown["capital_limit"] in text
    assert shown["kill_switch_engaged"] is False and "not engaged" in text
    samples = MonitoringBatch.objects.filter(version=deployed).aggregate(n=Sum("sample_count"))["n"] or 0
    assert body["post_market"]["samples"] == samples
    assert [s["transition"] for s in body["risk"]["signoffs"]] == ["validated -> approved", "approved -> deployed"]


def test_a_version_without_evidence_says_so_and_does_not_fail(generate, compliance, make_version):
    version = make_version()
    report = generate(actor=compliance, report_type="annex-iv", version_id=version.pk)
    assert report.status == "succeeded", report.error
    text = _flat(pdf_text(read_pdf(report)))
    assert "No risk assessment of this version has succeeded" in text
    assert "This version has not been deployed" in text
    assert "No findings have been raised on this version" in text
    assert "No monitoring alert has been raised on this version" in text
    assert "No sign-off has been requested for this version" in text


def test_a_regulator_gets_404_on_an_unshared_versions_file_and_reads_a_shared_one(
    api, generate, compliance, regulator, share, make_version, make_model, no_report_cert
):
    shared_version = make_version(model=make_model(name="eq-shared"))
    hidden_version = make_version(model=make_model(name="eq-hidden"))
    share(shared_version.model)
    shared = generate(actor=compliance, report_type="annex-iv", version_id=shared_version.pk)
    hidden = generate(actor=compliance, report_type="annex-iv", version_id=hidden_version.pk)
    assert {shared.status, hidden.status} == {"succeeded"}
    client = api(regulator)
    assert client.get(f"/api/reports/{hidden.pk}").status_code == 404
    assert client.get(f"/api/reports/{hidden.pk}/download").status_code == 404
    assert client.get(f"/api/reports/{shared.pk}/download").status_code == 200


def test_without_pango_a_report_fails_naming_the_library_and_the_install_script(
    generate, compliance, make_version, monkeypatch
):
    from governance.reports import pdf

    monkeypatch.setattr(pdf, "missing_pdf_libraries", lambda: "cannot load library 'libpango-1.0-0'")
    report = generate(actor=compliance, report_type="annex-iv", version_id=make_version().pk)
    assert report.status == "failed"
    assert "MissingSystemLibrary" in report.error and "libpango-1.0-0" in report.error
    assert "scripts/install-system-packages.sh" in report.error
