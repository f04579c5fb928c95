"""Validation findings: raised by the independent validation, remediated by the owner, closed
only by the validation function; the policies see them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import Event
from governance import services
from governance.errors import NotPermitted
from governance.models import Finding
from governance.policy.document import build_input_document
from governance.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SOON = dt.timedelta(days=14)


def _raise(actor, version, owner, **overrides):
    data = {
        "severity": "high",
        "title": "Look-ahead in a feature",
        "description": "The volatility feature reads the prediction day's close.",
        "remediation_owner": owner,
        "due_date": timezone.now().date() + SOON,
    }
    data.update(overrides)
    return services.finding_raise(actor=actor, version=version, **data)


def test_an_assigned_validator_raises_a_finding_and_the_policies_see_it(validated_version, validator, owner):
    finding = _raise(validator, validated_version, owner)
    assert finding.status == "open" and finding.raised_by == validator and finding.model == validated_version.model
    event = Event.objects.get(action="finding.raised")
    assert event.object_id == str(finding.pk) and event.after["severity"] == "high"
    document = build_input_document(version=validated_version, trigger="validated->approved", requested_by=owner)
    assert document["findings"] == [
        {
            "id": finding.pk,
            "severity": "high",
            "status": "open",
            "title": "Look-ahead in a feature",
            "due_date": finding.due_date.isoformat(),
        }
    ]


def test_who_may_raise_findings(validated_version, owner, compliance):
    unassigned = UserFactory(username="val2", roles=[Role.VALIDATOR])
    for actor, match in ((owner, "may not raise"), (unassigned, "not in scope|not assigned")):
        with pytest.raises(NotPermitted, match=match):
            _raise(actor, validated_version, owner)
    # The compliance function (oversight of the whole inventory) may.
    assert _raise(compliance, validated_version, owner).raised_by == compliance


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"severity": "urgent"}, "severity"),
        ({"title": " "}, "title"),
        ({"description": ""}, "description"),
        ({"due_date": "2030-01-01"}, "due_date"),
        ({"due_date": dt.date(2000, 1, 1)}, "in the past"),
    ],
)
def test_bad_findings_are_refused(validated_version, validator, owner, change, match):
    before = Event.objects.count()
    with pytest.raises(ValidationError, match=match):
        _raise(validator, validated_version, owner, **change)
    assert Finding.objects.count() == 0 and Event.objects.count() == before


def test_the_remediation_owner_must_see_the_version(validated_version, validator, owner, outsider):
    with pytest.raises(ValidationError, match="cannot see"):
        _raise(validator, validated_version, outsider)


def test_remediation_then_closure_by_the_validation_function(validated_version, validator, owner):
    finding = _raise(validator, validated_version, owner)
    finding = services.finding_update(actor=owner, finding=finding, changes={"status": "in_remediation"})
    assert finding.status == "in_remediation"
    # The owner may neither close it, nor move its due date.
    with pytest.raises(NotPermitted, match="close_finding"):
        services.finding_update(
            actor=owner, finding=finding, changes={"status": "closed", "resolution": "fixed"}, reason="done"
        )
    with pytest.raises(NotPermitted):
        services.finding_update(actor=owner, finding=finding, changes={"due_date": timezone.now().date() + SOON * 4})
    with pytest.raises(ValidationError, match="resolution"):
        services.finding_update(actor=validator, finding=finding, changes={"status": "closed"}, reason="retested")
    with pytest.raises(ValidationError, match="reason"):
        services.finding_update(actor=validator, finding=finding, changes={"status": "closed", "resolution": "x"})
    finding = services.finding_update(
        actor=validator,
        finding=finding,
        changes={"status": "closed", "resolution": "Feature lagged by one day; retested."},
        reason="Retested on 2021 data.",
    )
    assert finding.status == "closed" and finding.closed_by == validator and finding.closed_at is not None
    actions = list(Event.objects.filter(object_type="governance.finding").values_list("action", flat=True))
    assert actions == ["finding.raised", "finding.updated", "finding.closed"]
    finding = services.finding_update(actor=validator, finding=finding, changes={"status": "open"}, reason="Regressed.")
    assert finding.status == "open" and finding.closed_at is None
    with pytest.raises(ValidationError, match="cannot be changed"):
        services.finding_update(actor=validator, finding=finding, changes={"severity": "low"})
