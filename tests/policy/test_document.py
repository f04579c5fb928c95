"""The input document built from the database (schema version 1)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from audit.services import SystemActor
from governance.policy import document
from models_registry import services as registry_services
from tests.factories import force_fields

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC)


def test_a_validated_version(validated_version, owner, validator, split_datasets):
    doc = document.build_input_document(
        version=validated_version, trigger="validated->approved", requested_by=validator, at=AT
    )
    assert doc["schema_version"] == 1
    assert doc["trigger"] == {
        "name": "validated->approved",
        "kind": "transition",
        "from": "validated",
        "to": "approved",
        "phase": None,
    }
    assert doc["evaluated_at"] == "2026-06-30T12:00:00.000000Z"
    assert doc["requested_by"] == {"id": validator.pk, "username": "victor", "roles": ["validator"], "is_system": False}
    model = doc["model"]
    assert model["name"] == "eq-policy"
    assert (model["purpose"], model["model_type"], model["complexity"]) == ("alpha", "logistic_regression", "low")
    assert (model["risk_tier"], model["computed_risk_tier"], model["tier_override"]) == (3, 3, None)
    assert model["materiality"] == "1000000.00" and model["currency"] == "USD"
    assert model["problem_definition"]["objectives"] == "Predict next-day direction."
    version = doc["version"]
    assert version["label"] == "1.0.0"
    assert version["artifact"]["sha256"] == validated_version.artifact_sha256
    assert version["created_by"] == {"id": owner.pk, "username": "olivia"}
    lifecycle = doc["lifecycle"]
    assert lifecycle["status"] == "validated"
    assert lifecycle["allowed_next"] == ["approved", "rejected"]
    assert lifecycle["submitted"]["by"] == {"id": owner.pk, "username": "olivia"}
    assert lifecycle["validated"]["by"] == {"id": validator.pk, "username": "victor"}
    assert lifecycle["approved"] is None
    training = doc["datasets"]["training"]
    assert training["name"] == "prices-training" and training["validation_status"] == "passed"
    assert training["time_start"] == "2019-01-02T00:00:00.000000Z"
    assert training["sha256"] == split_datasets["training"].content_sha256
    assert doc["data_split"] == {
        "registered": ["training", "validation", "test"],
        "complete": True,
        "all_validated": True,
        "time_ranges_known": True,
        "overlaps": [],
        "non_overlapping": True,
        "chronological": True,
    }
    assert doc["people"]["developer_ids"] == [owner.pk]
    assert doc["people"]["assigned_validator_ids"] == [validator.pk]
    # Reserved for later parts of the system: empty in schema version 1.
    assert (doc["risk_assessment"], doc["findings"], doc["signoff"], doc["deployment"]) == (None, [], None, None)
    assert len(document.document_sha256(doc)) == 64


def test_missing_datasets_and_a_split_in_the_wrong_order(make_version, split_datasets, owner):
    version = make_version(training_dataset=split_datasets["validation"], validation_dataset=split_datasets["training"])
    doc = document.build_input_document(version=version, trigger="draft->in_development", requested_by=owner)
    split = doc["data_split"]
    assert doc["datasets"]["test"] is None
    assert split["registered"] == ["training", "validation"]
    assert (split["complete"], split["all_validated"], split["non_overlapping"]) == (False, False, False)
    assert split["overlaps"] == []  # disjoint, though in the wrong order


def test_overlap_is_computed_with_closed_intervals(make_version, make_dataset, split_datasets, owner):
    from tests.conftest import _prices

    overlapping = make_dataset(name="prices-late", content=_prices(["2020-12-31", "2021-03-01"]))
    version = make_version(
        training_dataset=split_datasets["training"],
        validation_dataset=split_datasets["validation"],
        test_dataset=overlapping,
    )
    split = document.build_input_document(version=version, trigger="periodic", requested_by=owner)["data_split"]
    assert split["overlaps"] == [
        {"between": ["validation", "test"], "from": "2020-12-31T00:00:00.000000Z", "to": "2020-12-31T00:00:00.000000Z"}
    ]
    assert split["non_overlapping"] is False and split["chronological"] is False
    assert split["all_validated"] is False  # the new dataset was never validated


def test_developers_are_the_owner_and_every_version_creator(make_version, owner):
    from governance.roles import Role
    from tests.factories import UserFactory

    dev = UserFactory(username="dev2", roles=[Role.MODEL_DEVELOPER])
    first = make_version()
    registry_services.model_access_grant(actor=owner, user=dev, model=first.model, permission="change_model")
    second = make_version(model=first.model, version="1.1.0", actor=dev)
    doc = document.build_input_document(version=first, trigger="periodic", requested_by=SystemActor("tests"))
    assert doc["people"]["developer_ids"] == sorted([owner.pk, dev.pk])
    assert doc["requested_by"] == {"id": None, "username": "system:tests", "roles": [], "is_system": True}
    assert second.created_by == dev


def test_the_trigger_must_start_from_the_current_status(make_version, owner):
    version = make_version()
    with pytest.raises(ValidationError, match=r"starts from validated, but version eq-direction 1\.0\.0 is draft"):
        document.build_input_document(version=version, trigger="validated->approved", requested_by=owner)
    with pytest.raises(ValidationError, match="is not a trigger"):
        document.build_input_document(version=version, trigger="approve", requested_by=owner)
    with pytest.raises(ValidationError, match="timezone-aware"):
        document.build_input_document(
            version=version, trigger="periodic", requested_by=owner, at=dt.datetime(2026, 1, 1)
        )


def test_reserved_sections_supplied_by_callers_are_validated(make_version, owner):
    version = force_fields(make_version(), status="approved")
    doc = document.build_input_document(
        version=version,
        trigger="approved->deployed",
        requested_by=owner,
        deployment={"phase": "phase_1", "capital_limit": "5000000.10", "rollback_plan": "kill switch"},
        signoff={
            "transition": "approved->deployed",
            "requested_by": {"id": owner.pk, "username": "olivia"},
            "submitted_at": AT,
            "approvals": [{"user_id": 9, "username": "rhea", "roles": ["risk manager"], "decided_at": AT}],
        },
        findings=[{"id": 1, "severity": "high", "status": "open", "title": "x"}],
    )
    assert doc["deployment"]["capital_limit"] == "5000000.10"
    assert doc["deployment"]["currency"] == "USD"
    assert doc["signoff"]["approvals"][0]["decided_at"] == "2026-06-30T12:00:00.000000Z"
    assert doc["findings"][0]["severity"] == "high"
    with pytest.raises(ValidationError) as caught:
        document.build_input_document(
            version=version, trigger="approved->deployed", requested_by=owner, deployment={"phase": "p", "budget": 1}
        )
    assert caught.value.message_dict == {"deployment": ["field 'budget': Extra inputs are not permitted"]}
    with pytest.raises(ValidationError, match="severity"):
        document.build_input_document(
            version=version, trigger="periodic", requested_by=owner, findings=[{"id": 1, "severity": "huge"}]
        )


def test_many_versions_in_a_fixed_number_of_queries(make_model, make_version, django_assert_max_num_queries, owner):
    ids = [make_version(model=make_model(name=f"m{i}")).pk for i in range(6)]
    with django_assert_max_num_queries(8):
        docs = document.version_documents(ids)
    assert sorted(docs) == sorted(ids)


def _stored_assessment(version, *, status, finished_at, metrics, kind="full"):
    """Test set-up: a finished assessment row as the job would leave it (audited, like any write)."""
    from django.utils import timezone

    from audit.scope import audited_change
    from audit.services import record_event
    from models_registry.models import RiskAssessment

    with audited_change():
        row = RiskAssessment.objects.create(
            model=version.model,
            version=version,
            kind=kind,
            inputs_key=f"{kind}-{status}-{finished_at.isoformat()}",
            status=status,
            progress_percent=100,
            metrics=metrics,
            overfitting={"passed": True, "method": "cscv_pbo", "details": {"pbo": 0.1}},
            requested_by_label="tests",
            error=None if status == "succeeded" else {"code": "check_failed", "message": "test"},
            queued_at=timezone.now(),
            started_at=finished_at,
            finished_at=finished_at,
        )
        record_event(actor=SystemActor("tests"), action="test.state_forced", target=row)
    return row


def test_the_latest_succeeded_full_assessment_fills_risk_assessment(make_version):
    from django.utils import timezone

    version = make_version()
    assert document.version_documents([version.pk])[version.pk]["risk_assessment"] is None
    now = timezone.now()
    older = _stored_assessment(
        version, status="succeeded", finished_at=now - dt.timedelta(days=2), metrics={"accuracy": 0.5}
    )
    latest = _stored_assessment(
        version, status="succeeded", finished_at=now - dt.timedelta(days=1), metrics={"accuracy": 0.57, "roc_auc": None}
    )
    _stored_assessment(version, status="failed", finished_at=now, metrics=None)
    _stored_assessment(version, status="succeeded", finished_at=now, metrics={"accuracy": 0.9}, kind="backtest")
    section = document.version_documents([version.pk])[version.pk]["risk_assessment"]
    assert section["id"] == latest.pk != older.pk
    # A metric the checks could not compute is left out, so rules see numbers only.
    assert section["metrics"] == {"accuracy": 0.57}
    assert section["overfitting"]["passed"] is True and section["explainability"] is None
