"""The model validation report (``validation``): a validated, assessed version renders with its
figures equal to the stored ones and its data embedded; a bare version says what is missing;
a regulator cannot fetch one on an unshared model."""

from __future__ import annotations

import re

import pytest

from governance.reports import registry
from governance.reports.builders import validation
from governance.reports.pdf import data_json
from models_registry import services as registry_services
from tests.assessments.conftest import assessable, nvda_datasets, run_now, validator_on  # noqa: F401
from tests.reports.conftest import embedded_data, pdf_text, read_pdf

pytestmark = pytest.mark.django_db


def _fixed(value: float) -> str:
    return f"{value:.4f}"


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture
def assessed(active_set, assessable, nvda_datasets, owner, run_now, validator_on):  # noqa: F811
    """A version validated by an assigned validator, with a succeeded full risk assessment."""
    for dataset in nvda_datasets.values():
        registry_services.dataset_validate(actor=owner, dataset=dataset)
    version = assessable(
        model={
            "objectives": "Predict next-day direction.",
            "success_criteria": "Accuracy above 51% out of sample.",
            "constraints": "Daily bars; NVDA only.",
        },
        code_repository="https://git.example.com/quant/models",
        code_commit="3f9c2d41a7be",
    )
    for status in ("in_development", "submitted_for_validation"):
        version = registry_services.model_version_transition(actor=owner, version=version, to_status=status)
    validator = validator_on(version.model)
    version = registry_services.model_version_transition(actor=validator, version=version, to_status="validated")
    assessment, _ = run_now(actor=owner, version=version)
    assert assessment.status == "succeeded", assessment.error
    return assessment


@pytest.fixture
def issued(generate, compliance, assessed, no_report_cert):
    report = generate(actor=compliance, report_type="validation", version_id=assessed.version_id)
    assert report.status == "succeeded", report.error
    return report


def test_key_figures_in_the_pdf_text_equal_the_stored_values(issued, assessed):
    reader = read_pdf(issued)
    text = pdf_text(reader)
    squeezed = _squeezed(text)
    metrics, results = assessed.metrics, assessed.results

    for name, label in (
        ("accuracy", "Accuracy"),
        ("precision", "Precision"),
        ("recall", "Recall"),
        ("roc_auc", "ROC AUC"),
    ):
        assert re.search(rf"{label}\s+{_fixed(metrics[name])}", text), name
    backtest = results["backtest"]["metrics"]
    benchmark = results["backtest"]["benchmark"]
    strategy_row = " ".join(
        _fixed(backtest[k])
        for k in ("total_return", "annualised_return", "sharpe_ratio", "sortino_ratio", "max_drawdown")
    )
    assert strategy_row in text
    assert _fixed(benchmark["sharpe_ratio"]) in text and _fixed(benchmark["max_drawdown"]) in text
    matrix = results["performance"]["confusion_matrix"]["matrix"]
    for label, row in zip(results["performance"]["confusion_matrix"]["labels"], matrix, strict=True):
        assert re.search(rf"\b{label}\s+{row[0]}\s+{row[1]}\b", text)
    assert _fixed(metrics["pbo"]) in text and _fixed(metrics["deflated_sharpe_ratio"]) in text
    assert _fixed(metrics["cv_mean_score"]) in text
    # The signal is described with the label as Python prints it, not numpy's repr.
    assert (
        _squeezed(f"signal: {results['backtest']['signal']}") in squeezed and "np." not in results["backtest"]["signal"]
    )
    # Implementation: the artifact and dataset hashes, the inputs key.
    version = assessed.version
    assert version.artifact_sha256 in squeezed and assessed.inputs_key in squeezed
    assert version.test_dataset.content_sha256 in squeezed
    # Counts: findings raised by the assessment, the version's sign-offs (none here).
    assert f"Open findings: {assessed.findings.count()}." in text
    assert "No sign-off has been requested for this version." in text
    assert "No monitoring alert has been raised on this version." in text
    assert len(reader.pages) == issued.page_count and f"Page 1 of {issued.page_count}" in text


def test_the_conclusion_says_how_it_was_derived(issued, assessed):
    data = embedded_data(read_pdf(issued))
    conclusion = data["body"]["conclusion"]
    expected = "approve" if assessed.rating == "green" and not assessed.findings.exists() else "approve with conditions"
    assert conclusion["outcome"] == expected
    text = pdf_text(read_pdf(issued))
    assert f"Conclusion: {expected.upper()}." in text
    assert "How the conclusion was derived" in text and "'validate' by valerie" in text
    assert data["body"]["scope"]["independent"] is True and "Independent:" in text
    assert data["body"]["rating"]["rating"] == assessed.rating


def test_the_embedded_json_is_the_builders_data(issued, assessed):
    reader = read_pdf(issued)
    data = embedded_data(reader)
    raw = reader.attachments["report-data.json"][0]
    assert data_json(data) == raw
    body = data["body"]
    assert [s["id"] for s in body["sections"]] == [key for key, _ in validation.SECTIONS]
    # The ROC points and the equity curve are what the assessment stored.
    stored = issued.version.assessments.get().results
    assert body["outcomes"]["roc_curve"] == stored["performance"]["roc_curve"]
    assert body["outcomes"]["backtest"]["equity_curve"]["strategy"] == stored["backtest"]["equity_curve"]["strategy"]
    assert {r["id"] for r in body["monitoring"]["rules"]} >= {"MON-ACCURACY-01", "MON-DRAWDOWN-01"}
    # A null parameter says what it resolves to for this version (anomaly_services' rule).
    parameters = {p["name"]: p for rule in body["monitoring"]["rules"] for p in rule["parameters"]}
    assert parameters["accuracy.baseline"]["value"] == "null"
    assert f"{assessed.metrics['accuracy']:.4f}" in parameters["accuracy.baseline"]["meaning"]


def test_charts_are_drawn_from_the_data(issued):
    data = embedded_data(read_pdf(issued))
    charts = validation.chart_svgs(data["body"])
    assert set(charts) == {"roc", "equity", "drawdown", "importance"}
    assert all(svg.lstrip().startswith("<?xml") for svg in charts.values())


def test_a_version_without_evidence_says_so(generate, compliance, make_version, no_report_cert):
    version = make_version()
    report = generate(actor=compliance, report_type="validation", version_id=version.pk)
    assert report.status == "succeeded", report.error
    reader = read_pdf(report)
    text = pdf_text(reader)
    body = embedded_data(reader)["body"]
    assert body["conclusion"]["outcome"] is None and body["outcomes"] is None
    for statement in (
        "No conclusion: the version is draft and no validation outcome is recorded yet.",
        "No succeeded full risk assessment of this version: no held-out metrics",
        "No findings have been raised on this version.",
        "The version has never been deployed: no deployment limits.",
        "No sign-off has been requested for this version.",
        "No validator has been assigned to this model.",
    ):
        assert _squeezed(statement) in _squeezed(text), statement
    assert validation.chart_svgs(body) == {}


def test_a_validated_version_without_an_assessment_is_approved_with_that_condition(
    generate, compliance, validated_version, no_report_cert
):
    report = generate(actor=compliance, report_type="validation", version_id=validated_version.pk)
    assert report.status == "succeeded", report.error
    conclusion = embedded_data(read_pdf(report))["body"]["conclusion"]
    assert conclusion["outcome"] == "approve with conditions"
    assert conclusion["conditions"] == ["no rated full risk assessment of this version"]
    assert "Conclusion: APPROVE WITH CONDITIONS." in pdf_text(read_pdf(report))


def test_a_rejected_version_is_concluded_reject(generate, compliance, submitted_version, validator, no_report_cert):
    registry_services.validation_assign(actor=compliance, model=submitted_version.model, validator=validator)
    registry_services.model_version_transition(
        actor=validator, version=submitted_version, to_status="rejected", reason="Unstable out of sample."
    )
    report = generate(actor=compliance, report_type="validation", version_id=submitted_version.pk)
    assert embedded_data(read_pdf(report))["body"]["conclusion"]["outcome"] == "reject"
    assert "Conclusion: REJECT." in pdf_text(read_pdf(report))


def test_a_regulator_gets_404_on_an_unshared_models_report(api, issued, regulator, share, assessed):
    client = api(regulator)
    assert client.get(f"/api/reports/{issued.pk}").status_code == 404
    assert client.get(f"/api/reports/{issued.pk}/download").status_code == 404
    share(assessed.model)
    assert client.get(f"/api/reports/{issued.pk}/download").status_code == 200


def test_the_type_is_registered_for_a_version():
    report_type = registry.get("validation")
    assert report_type.subject == "version"
    assert any("SR 26-2" in ref and "SR 11-7" in ref for ref in report_type.references)
