"""The inventory attributes and the post-model adjustment register in the reports: the inventory
extract (vendor flag, upstream models, outputs and users, restrictions on use, adjustments, the
version in use beside the latest version) and the validation report's "Post-model adjustments
and restrictions"; the PDF text shows them and the embedded JSON carries the same."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.utils import timezone

from audit.services import SystemActor
from governance.reports.builders import inventory, validation
from governance.reports.context import BuildContext
from models_registry import services as registry
from models_registry.models import PostModelAdjustment
from tests.factories import skops_classifier_bytes
from tests.reports.conftest import embedded_data, pdf_text, read_pdf

pytestmark = pytest.mark.django_db


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture
def story(deployed, owner, compliance, make_model):
    """The deployed model 1.0.0 (shadow) with a newer 1.1.0 in development, fed by a signal model,
    feeding a vendor model, with a cap recorded on 1.0.0 and a withdrawn one."""
    model = deployed.model
    registry.model_version_create(actor=owner, model=model, version="1.1.0", artifact=skops_classifier_bytes())
    registry.model_version_transition(
        actor=owner, version=model.versions.get(version="1.1.0"), to_status="in_development"
    )
    signal = make_model(name="eq-signal", outputs_and_users="Signal for eq-policy.")
    registry.model_update(
        actor=owner,
        model=model,
        changes={
            "upstream_models": [signal],
            "outputs_and_users": "Long/flat signal; used by the equities desk's inventory tilt.",
            "restrictions_on_use": "Equities desk only; never for execution scheduling.",
        },
    )
    make_model(
        name="eq-vendor",
        is_vendor_model=True,
        vendor_name="Acme Analytics",
        upstream_models=[model],
    )
    now = timezone.now()
    cap = registry.adjustment_create(
        actor=compliance,
        version=deployed,
        description="Orders sized at half.",
        reason="Shadow phase caution.",
        adjustment="cap: position at most 50% of the signal",
        effective_from=now - dt.timedelta(hours=2),
        effective_until=now + dt.timedelta(days=30),
    )
    ended = registry.adjustment_create(
        actor=compliance,
        version=deployed,
        description="Spread widened.",
        reason="Thin liquidity.",
        adjustment="overlay: +2bp on quoted spread",
        effective_from=now - dt.timedelta(hours=3),
    )
    registry.adjustment_withdraw(actor=compliance, adjustment=ended, reason="Liquidity back to normal.")
    return {"version": deployed, "cap": cap, "ended": ended}


def _rebuilt(builder, report, generated_at: str) -> dict:
    ctx = BuildContext(
        report=report, checkpoint=report.checkpoint, generated_at=dt.datetime.fromisoformat(generated_at)
    )
    return json.loads(json.dumps(builder.build(ctx)))


def test_the_inventory_shows_the_attributes_and_the_register(generate, compliance, story, no_report_cert):
    report = generate(actor=compliance, report_type="inventory")
    assert report.status == "succeeded", report.error
    reader = read_pdf(report)
    data = embedded_data(reader)
    body, text = data["body"], pdf_text(reader)
    squeezed = _squeezed(text)
    assert body == _rebuilt(inventory, report, data["report"]["generated_at"])
    rows = {row["name"]: row for row in body["models"]}
    row = rows["eq-policy"]

    # The version in use (deployed, with its phase) and the latest version beside it.
    assert row["in_use"] == {"version": "1.0.0", "status": "deployed", "status_label": "deployed", "phase": "shadow"}
    assert row["latest"]["version"] == "1.1.0" and row["latest_differs"] is True
    assert row["status"] == "deployed"
    assert "inuse1.0.0deployed(shadow);latest1.1.0indevelopment" in squeezed

    assert row["inputs"]["upstream_models"] == ["eq-signal"] and "upstream:eq-signal" in squeezed
    assert rows["eq-vendor"]["inputs"]["upstream_models"] == ["eq-policy"]
    assert rows["eq-vendor"]["vendor"] == {"is_vendor": True, "name": "Acme Analytics"}
    assert row["vendor"] == {"is_vendor": False, "name": None}
    assert "vendorAcmeAnalytics" in squeezed and "in-house" in text
    assert row["outputs"]["users"] == "Long/flat signal; used by the equities desk's inventory tilt."
    assert row["restrictions"] == "Equities desk only; never for execution scheduling."
    assert _squeezed(row["restrictions"]) in squeezed
    assert _squeezed(row["outputs"]["users"]) in squeezed

    cap, ended = story["cap"], story["ended"]
    assert [(a["id"], a["status"]) for a in row["post_model_adjustments"]] == [
        (ended.pk, "withdrawn"),
        (cap.pk, "active"),
    ]
    register = {a["id"]: a for a in body["adjustments"]}
    assert register[cap.pk]["adjustment"] == cap.adjustment and register[cap.pk]["approved_by"] == "chloe"
    assert register[ended.pk]["withdrawal_reason"] == "Liquidity back to normal."
    assert (body["summary"]["adjustment_count"], body["summary"]["active_adjustment_count"]) == (2, 1)
    assert f"#{cap.pk}1.0.0active" in squeezed and _squeezed(cap.adjustment) in squeezed
    assert "Liquiditybacktonormal." in squeezed
    assert "Not recorded by this system" not in text and "not_recorded" not in body


def test_the_inventory_names_no_upstream_model_the_requester_may_not_see(
    generate, owner, story, other_desk, compliance, make_model, no_report_cert
):
    from django.contrib.auth.models import Permission

    from governance import services
    from governance.roles import Role
    from tests.factories import UserFactory

    stranger = UserFactory(username="sam", roles=[Role.MODEL_OWNER])
    services.membership_set(actor=compliance, user=stranger, desk=other_desk)
    hidden = make_model(name="rates-hidden", owner=stranger, desk=other_desk, actor=stranger)
    policy = story["version"].model
    registry.model_update(
        actor=SystemActor("tests"),  # e.g. a data-lineage import; the owner could not name it
        model=policy,
        changes={"upstream_models": [hidden, *policy.upstream_models.all()]},
    )
    owner.user_permissions.add(*Permission.objects.filter(codename="request_report"))
    report = generate(actor=owner, report_type="inventory")
    assert report.status == "succeeded", report.error
    body = embedded_data(read_pdf(report))["body"]
    row = next(r for r in body["models"] if r["name"] == "eq-policy")
    assert row["inputs"]["upstream_models"] == ["eq-signal"]
    assert "rates-hidden" not in json.dumps(body)


def test_the_validation_report_lists_the_adjustments_and_restrictions(generate, compliance, story, no_report_cert):
    version = story["version"]
    report = generate(actor=compliance, report_type="validation", version_id=version.pk)
    assert report.status == "succeeded", report.error
    reader = read_pdf(report)
    data = embedded_data(reader)
    body, text = data["body"], pdf_text(reader)
    squeezed = _squeezed(text)
    assert body == _rebuilt(validation, report, data["report"]["generated_at"])
    restrictions = body["restrictions"]
    assert restrictions["restrictions_on_use"] == "Equities desk only; never for execution scheduling."
    stored = list(PostModelAdjustment.objects.filter(version=version).order_by("effective_from", "pk"))
    assert [(a["id"], a["status"], a["adjustment"]) for a in restrictions["adjustments"]] == [
        (stored[0].pk, "withdrawn", stored[0].adjustment),
        (stored[1].pk, "active", stored[1].adjustment),
    ]
    assert "No post-model adjustment register exists" not in text
    assert _squeezed(restrictions["restrictions_on_use"]) in squeezed
    assert "cap:positionatmost50%ofthesignal" in squeezed and "overlay:+2bponquotedspread" in squeezed
    assert "Reason:Shadowphasecaution." in squeezed


def test_a_version_without_adjustments_says_so(generate, compliance, validated_version, no_report_cert):
    report = generate(actor=compliance, report_type="validation", version_id=validated_version.pk)
    assert report.status == "succeeded", report.error
    reader = read_pdf(report)
    assert embedded_data(reader)["body"]["restrictions"]["adjustments"] == []
    assert "No post-model adjustment is recorded on this version." in pdf_text(reader)
