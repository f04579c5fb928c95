"""The post-model adjustment register: recorded and withdrawn by compliance officers, each with
its audit event; read by those who see the version (scoped as findings are); status derived
from the dates and the withdrawal."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import Event
from governance import services as governance_services
from governance.errors import Conflict, NotPermitted
from governance.roles import Role
from models_registry import services
from models_registry.models import PostModelAdjustment
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/adjustments/"


@pytest.fixture
def record(compliance, validated_version):
    def make(**overrides):
        data = {
            "actor": compliance,
            "version": validated_version,
            "description": "Orders sized at half the model's size.",
            "reason": "Pilot phase: conservative until live evidence is in.",
            "adjustment": "cap: position at most 50% of the signal's size",
            "effective_from": timezone.now() - dt.timedelta(hours=1),
        }
        data.update(overrides)
        return services.adjustment_create(**data)

    return make


@pytest.fixture
def stranger(compliance, other_desk):
    """A model owner on another desk: sees none of olivia's models."""
    user = UserFactory(username="sam", roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER])
    governance_services.membership_set(actor=compliance, user=user, desk=other_desk)
    return user


def test_recording_stores_the_adjustment_and_its_event(record, compliance, validated_version):
    adjustment = record(effective_until=timezone.now() + dt.timedelta(days=30))
    stored = PostModelAdjustment.objects.with_status().get(pk=adjustment.pk)
    assert stored.status == "active" and stored.model_id == validated_version.model_id
    assert stored.approved_by == compliance and stored.created_by_label == "chloe"
    event = Event.objects.get(action="post_model_adjustment.recorded", object_id=str(adjustment.pk))
    assert event.actor_label == "chloe" and event.after["adjustment"] == stored.adjustment
    assert event.after["version_id"] == validated_version.pk


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"description": " "}, "description"),
        ({"reason": ""}, "reason"),
        ({"adjustment": ""}, "adjustment"),
        ({"adjustment": "x" * 301}, "adjustment"),
        ({"effective_from": dt.datetime(2026, 1, 1)}, "effective_from"),  # naive
        ({"effective_until": timezone.now() - dt.timedelta(days=1)}, "effective_until"),  # before the start
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(record, overrides, field):
    events = Event.objects.count()
    with pytest.raises(ValidationError) as refused:
        record(**overrides)
    assert field in refused.value.message_dict
    assert not PostModelAdjustment.objects.exists() and Event.objects.count() == events


def test_only_compliance_records_and_the_approver_must_be_compliance(record, owner, risk_manager, compliance):
    with pytest.raises(NotPermitted):
        record(actor=owner)
    with pytest.raises(NotPermitted):
        record(actor=risk_manager)
    with pytest.raises(ValidationError) as refused:
        record(approved_by=risk_manager)
    assert "approved_by" in refused.value.message_dict
    assert not PostModelAdjustment.objects.exists()


def test_withdrawal_is_audited_and_happens_once(record, compliance, owner):
    adjustment = record()
    with pytest.raises(NotPermitted):
        services.adjustment_withdraw(actor=owner, adjustment=adjustment, reason="Not mine to end.")
    with pytest.raises(ValidationError) as refused:
        services.adjustment_withdraw(actor=compliance, adjustment=adjustment, reason=" ")
    assert "reason" in refused.value.message_dict
    withdrawn = services.adjustment_withdraw(actor=compliance, adjustment=adjustment, reason="Pilot ended early.")
    assert withdrawn.withdrawn_by_label == "chloe"
    assert PostModelAdjustment.objects.with_status().get(pk=adjustment.pk).status == "withdrawn"
    event = Event.objects.get(action="post_model_adjustment.withdrawn", object_id=str(adjustment.pk))
    assert event.before["withdrawn_at"] is None and event.after["withdrawal_reason"] == "Pilot ended early."
    with pytest.raises(Conflict):
        services.adjustment_withdraw(actor=compliance, adjustment=adjustment, reason="Again.")


def test_status_follows_the_dates(record):
    now = timezone.now()
    scheduled = record(effective_from=now + dt.timedelta(days=1))
    expired = record(effective_from=now - dt.timedelta(days=10), effective_until=now - dt.timedelta(days=1))
    active = record()
    status = dict(PostModelAdjustment.objects.with_status(now).values_list("pk", "status"))
    assert (status[scheduled.pk], status[expired.pk], status[active.pk]) == ("scheduled", "expired", "active")
    assert expired.status_at(now) == "expired" and scheduled.status_at(now + dt.timedelta(days=2)) == "active"


# --- Scope: as findings ---------------------------------------------------------------------------


def test_the_register_is_scoped_to_the_versions_one_sees(api, record, owner, stranger, compliance):
    adjustment = record()
    assert [row["id"] for row in api(owner).get(URL).json()["results"]] == [adjustment.pk]
    assert api(owner).get(f"{URL}{adjustment.pk}/").status_code == 200
    # Another desk's model owner: neither in the list nor by id (404).
    assert api(stranger).get(URL).json()["results"] == []
    assert api(stranger).get(f"{URL}{adjustment.pk}/").status_code == 404
    assert api(compliance).get(f"{URL}{adjustment.pk}/").json()["status"] == "active"


def test_api_records_and_withdraws_for_compliance_only(api, compliance, owner, stranger, validated_version):
    payload = {
        "version": validated_version.pk,
        "description": "Half size.",
        "reason": "Pilot.",
        "adjustment": "cap: 50%",
        "effective_from": timezone.now().isoformat(),
    }
    assert api(owner).post(URL, payload, format="json").status_code == 403
    assert api(stranger).post(URL, payload, format="json").status_code == 404  # a version out of sight
    response = api(compliance).post(URL, payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["approved_by"], body["status"], body["version_label"]) == ("chloe", "active", "1.0.0")
    bad = api(compliance).post(URL, {**payload, "effective_until": "2000-01-01T00:00:00Z"}, format="json")
    assert bad.status_code == 400 and "effective_until" in bad.json()
    url = f"{URL}{body['id']}/withdraw/"
    assert api(owner).post(url, {"reason": "no"}, format="json").status_code == 403
    assert api(stranger).post(url, {"reason": "no"}, format="json").status_code == 404
    withdrawn = api(compliance).post(url, {"reason": "Pilot over."}, format="json")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    assert api(compliance).post(url, {"reason": "Again."}, format="json").status_code == 409


def test_admin_compliance_records_and_withdraws_owner_reads(client, compliance, owner, validated_version, record):
    client.force_login(compliance)
    response = client.post(
        "/admin/models_registry/postmodeladjustment/add/",
        {
            "version": validated_version.pk,
            "adjustment": "cap: 50%",
            "description": "Half size.",
            "reason": "Pilot.",
            "effective_from_0": timezone.now().strftime("%Y-%m-%d"),
            "effective_from_1": "00:00:00",
            "effective_until_0": "",
            "effective_until_1": "",
            "approved_by": "",
        },
        secure=True,
    )
    assert response.status_code == 302, response.content[:3000]
    adjustment = PostModelAdjustment.objects.get()
    assert adjustment.approved_by == compliance
    change = f"/admin/models_registry/postmodeladjustment/{adjustment.pk}/change/"
    response = client.post(change, {"withdrawal_reason": "Pilot over."}, secure=True)
    assert response.status_code == 302
    assert PostModelAdjustment.objects.with_status().get().status == "withdrawn"
    # The model's owner reads it; cannot add or withdraw.
    client.force_login(owner)
    assert client.get("/admin/models_registry/postmodeladjustment/", secure=True).status_code == 200
    assert client.get(change, secure=True).status_code == 200
    assert client.get("/admin/models_registry/postmodeladjustment/add/", secure=True).status_code == 403
    other = record()
    response = client.post(
        f"/admin/models_registry/postmodeladjustment/{other.pk}/change/", {"withdrawal_reason": "x"}, secure=True
    )
    assert response.status_code == 403
    assert PostModelAdjustment.objects.with_status().get(pk=other.pk).status == "active"


def test_the_list_filters_by_model_and_its_queries_do_not_grow(
    api, record, compliance, make_version, make_model, django_assert_max_num_queries
):
    first = record()
    client = api(compliance)
    with django_assert_max_num_queries(6) as few:
        client.get(URL)
    other = make_version(model=make_model(name="eq-other"))
    for _ in range(5):
        record(version=other)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(client.get(URL).json()["results"]) == 6
    filtered = client.get(URL, {"model": first.model_id}).json()["results"]
    assert [row["id"] for row in filtered] == [first.pk]
