"""The model inventory extract: one row per visible model with its tier and why, live deployment,
validation dates, open findings and exceptions; plain statements where there is no evidence;
a fixed number of queries whatever the number of models."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance import services
from governance.errors import NotPermitted
from governance.models import Deployment, Finding
from governance.reports.builders import inventory
from governance.reports.context import BuildContext
from governance.reports.envelope import iso
from governance.roles import Role
from models_registry.models import Model
from tests.factories import UserFactory
from tests.reports.conftest import embedded_data, pdf_text, read_pdf

pytestmark = pytest.mark.django_db


def _squeezed(text: str) -> str:
    # Table cells wrap anywhere in the PDF: compare without whitespace.
    return re.sub(r"\s+", "", text)


@pytest.fixture
def inventory_data(deployed, validator, owner, make_model):
    """The deployed model with two open findings and a closed one, a model with a tier override, and a draft."""
    for severity in ("high", "medium"):
        services.finding_raise(
            actor=validator,
            version=deployed,
            severity=severity,
            title=f"{severity} finding",
            description="Found in validation.",
            remediation_owner=owner,
            due_date=dt.date(2026, 12, 31),
        )
    make_model(
        name="eq-override",
        model_type="deep_learning",
        materiality=Decimal("100000.00"),
        risk_tier_override=1,
        risk_tier_override_justification="Feeds the desk's hedging; treated as tier 1.",
    )
    make_model(name="eq-draft", constraints="Research only.")
    return deployed


@pytest.fixture
def issued(generate, compliance, inventory_data, no_report_cert):
    report = generate(actor=compliance, report_type="inventory")
    assert report.status == "succeeded", report.error
    return report


def _rebuilt(report, generated_at: str) -> dict:
    ctx = BuildContext(
        report=report, checkpoint=report.checkpoint, generated_at=dt.datetime.fromisoformat(generated_at)
    )
    return json.loads(json.dumps(inventory.build(ctx)))


def test_key_figures_in_the_pdf_text_equal_the_stored_values(issued, inventory_data):
    reader = read_pdf(issued)
    data = embedded_data(reader)
    body = data["body"]
    text = pdf_text(reader)
    squeezed = _squeezed(text)

    names = list(Model.objects.order_by("name").values_list("name", flat=True))
    assert [row["name"] for row in body["models"]] == names
    assert body["summary"]["model_count"] == Model.objects.count() == 3
    assert re.search(r"Models\s+3 \(1 versions\)", text)
    by_name = {row["name"]: row for row in body["models"]}

    # The deployed model: its live phase and capital limit, open findings by severity, its exception.
    live = Deployment.objects.get(status="active")
    row = by_name["eq-policy"]
    assert row["deployment"]["phase"] == live.phase == "shadow"
    assert row["deployment"]["capital_limit"] == str(live.capital_limit) == "5000000.00"
    assert "1.0.0shadow(active)" in squeezed and "5,000,000.00USD" in squeezed
    open_findings = Finding.objects.filter(version=inventory_data, status="open")
    assert row["open_findings"] == {"total": open_findings.count(), "critical": 0, "high": 1, "medium": 1, "low": 0}
    assert re.search(r"Open findings\s+2 \(critical 0, high 1, medium 1, low 0\)", text)
    assert row["validators"] == ["victor"] and row["owner"] == "olivia"
    assert row["tier"] == inventory_data.model.risk_tier == 3
    assert row["vendor"] == {"is_vendor": False, "name": None} and row["inputs"]["upstream_models"] == []
    assert row["post_model_adjustments"] == [] and row["restrictions"] is None
    assert [d["name"] for d in row["inputs"]["datasets"]] == ["prices-training", "prices-validation", "prices-test"]
    # Rows refer to datasets by reference; the annex names each once, with the models using it.
    annex = {d["ref"]: (d["name"], d["roles"], d["models"]) for d in body["datasets"]}
    # Numbered in the order the rows name them (training, validation, test): a row reads D1, D2, D3.
    assert annex == {
        "D1": ("prices-training", ["training"], 1),
        "D2": ("prices-validation", ["validation"], 1),
        "D3": ("prices-test", ["test"], 1),
    }
    assert [d["ref"] for d in row["inputs"]["datasets"]] == ["D1", "D2", "D3"]
    assert "D1,D2,D3;" in squeezed and "D3prices-testtest1" in squeezed

    # Approved and deployed with no risk assessment: the validation is overdue (never done).
    assert row["last_validation"] is None and row["validation_overdue"] is True
    assert [(o["model"], o["version"], o["due"]) for o in body["overdue"]] == [("eq-policy", "1.0.0", None)]
    assert "eq-policy1.0.0(deployed)3,365daysnever;duenownevervalidated" in squeezed
    # The row names the overdue version (its last validation may be another version's).
    assert row["overdue_version"] == "1.0.0 never validated" and "OVERDUE1.0.0nevervalidated" in squeezed
    # The status summary lists only the statuses that have models, with no dangling comma.
    assert not re.search(r",\s*\n?\s*(With a live deployment|In use|Retired)", text)
    assert "notacountofmodels" in squeezed

    # Exceptions: the approval under PERF-EVIDENCE-02 (granted by rhea and chloe), and the tier override.
    exceptions = {(e["model"], e["kind"], e["rule"]) for e in body["exceptions"]}
    assert exceptions == {("eq-policy", "policy exception", "PERF-EVIDENCE-02"), ("eq-override", "tier override", None)}
    perf = next(e for e in body["exceptions"] if e["rule"] == "PERF-EVIDENCE-02")
    assert sorted(perf["approved_by"]) == ["chloe", "rhea"] and perf["open"] is True
    assert body["summary"]["open_exception_count"] == 2
    assert "PERF-EVIDENCE-02" in squeezed and "tieroverride" in squeezed

    override = by_name["eq-override"]
    assert (override["tier"], override["tier_computed"], override["tier_overridden"]) == (1, 2, True)
    assert "Feeds the desk's hedging" in override["tier_rationale"]
    assert [t["models"] for t in body["tiers"]] == [1, 0, 2]
    assert by_name["eq-draft"]["versions"] == [] and by_name["eq-draft"]["deployment"] is None
    assert "notdeployed" in squeezed and "noversion" in squeezed


def test_the_embedded_json_is_the_builders_data(issued):
    data = embedded_data(read_pdf(issued))
    assert data["report"]["type"] == "inventory"
    assert data["report"]["subject"] == {"kind": "none", "label": "all models"}
    assert data["body"] == _rebuilt(issued, data["report"]["generated_at"])
    assert data["body"]["as_of"] == data["report"]["generated_at"]


def test_an_empty_inventory_says_so(generate, compliance, no_report_cert):
    report = generate(actor=compliance, report_type="inventory")
    assert report.status == "succeeded", report.error
    reader = read_pdf(report)
    text = pdf_text(reader)
    body = embedded_data(reader)["body"]
    assert body["models"] == [] and body["overdue"] == [] and body["exceptions"] == []
    assert "The inventory holds no model" in text
    assert "No validation is overdue." in text
    assert "No exception has been granted" in text


def test_a_period_before_any_registration_includes_no_model(generate, compliance, inventory_data, no_report_cert):
    yesterday = timezone.now().date() - dt.timedelta(days=1)
    report = generate(actor=compliance, report_type="inventory", period_from=yesterday, period_to=yesterday)
    assert report.status == "succeeded", report.error
    body = embedded_data(read_pdf(report))["body"]
    assert body["models"] == [] and body["exceptions"] == []
    assert f"models registered up to {yesterday.isoformat()}" in body["inclusion"]["text"]


def test_an_owner_gets_only_the_models_they_may_see(
    generate, owner, compliance, make_model, other_desk, no_report_cert
):
    make_model(name="eq-mine")
    other = UserFactory(username="otto", roles=[Role.MODEL_OWNER])
    services.membership_set(actor=compliance, user=other, desk=other_desk)
    make_model(name="rates-theirs", owner=other, desk=other_desk, actor=other)
    owner.user_permissions.add(*_request_report_permission())
    report = generate(actor=owner, report_type="inventory")
    assert report.status == "succeeded", report.error
    body = embedded_data(read_pdf(report))["body"]
    assert [row["name"] for row in body["models"]] == ["eq-mine"]
    assert body["inclusion"]["scope"] == "the models olivia may see"


def _request_report_permission():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="governance", codename="request_report")


def test_a_regulator_neither_requests_nor_fetches_the_firm_wide_inventory(
    api, issued, regulator, share, inventory_data
):
    share(inventory_data.model)
    with pytest.raises(NotPermitted):
        from governance import report_services

        report_services.report_request(actor=regulator, report_type="inventory")
    client = api(regulator)
    assert client.get(f"/api/reports/{issued.pk}").status_code == 404
    assert client.get(f"/api/reports/{issued.pk}/download").status_code == 404


def test_a_model_is_refused_as_the_subject(api, compliance, make_model):
    model = make_model()
    response = api(compliance).post("/api/reports/", {"report_type": "inventory", "model": model.pk})
    assert response.status_code == 400
    assert "is not about one model" in json.dumps(response.json())


def test_the_builder_reads_a_fixed_number_of_queries_whatever_the_number_of_models(
    generate, compliance, inventory_data, make_model, make_version, no_report_cert
):
    report = generate(actor=compliance, report_type="inventory")
    now = timezone.now()

    def count() -> int:
        ctx = BuildContext(report=report, checkpoint=report.checkpoint, generated_at=now)
        with CaptureQueriesContext(connection) as queries:
            inventory.build(ctx)
        return len(queries)

    count()  # the first build fills the caches (permissions, the compiled policy set)
    before = count()
    for n in range(4):
        make_version(model=make_model(name=f"eq-more-{n}"))
    assert Model.objects.count() == 7
    assert count() == before
    assert iso(now) is not None
