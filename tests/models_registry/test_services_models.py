"""model_create / model_update / model_version_update: audited, validated, atomic."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from audit.models import Event
from governance.errors import Conflict, NotPermitted
from governance.roles import Role
from models_registry import services
from models_registry.choices import LifecycleStatus
from models_registry.models import Model, ModelVersion
from tests.factories import UserFactory, force_fields, skops_classifier_bytes

pytestmark = pytest.mark.django_db

D = Decimal


def _counts() -> tuple[int, int]:
    return Model.objects.count(), Event.objects.count()


def _boom(**kwargs):
    raise RuntimeError("audit store unavailable")


# --- model_create ---------------------------------------------------------------------------------


def test_model_create_stores_the_model_and_one_audit_event(make_model, owner, desk):
    models_before, events_before = _counts()
    model = make_model(description="Directional equity signal", objectives="Beat the benchmark", reason="new desk")
    assert _counts() == (models_before + 1, events_before + 1)
    stored = Model.objects.get(pk=model.pk)
    assert stored.name == "eq-direction"
    assert stored.materiality == D("1000000.00")
    assert stored.owner == owner
    assert stored.desk == desk

    event = Event.objects.order_by("-seq").first()
    assert event.action == "model.created"
    assert event.object_type == "models_registry.model"
    assert event.object_id == str(model.pk)
    assert event.object_repr == "eq-direction"
    assert event.actor == owner
    assert event.actor_label == owner.get_username()
    assert event.reason == "new desk"
    assert event.before is None
    assert event.after["name"] == "eq-direction"
    assert event.after["materiality"] == "1000000.00"
    assert event.after["purpose"] == "alpha"
    assert event.after["desk_id"] == desk.pk
    assert event.after["owner_id"] == owner.pk
    assert event.after["risk_tier"] == 3
    assert event.after["description"] == "Directional equity signal"


@pytest.mark.parametrize("materiality", [D("1000000"), D("1000000.0"), 1000000, "1000000"])
def test_model_create_snapshot_has_materiality_with_two_decimals(make_model, materiality):
    """The audit snapshot shows the stored amount, whatever form the caller passed it in."""
    model = make_model(materiality=materiality)
    event = Event.objects.get(action="model.created")
    assert event.after["materiality"] == "1000000.00"
    assert str(Model.objects.get(pk=model.pk).materiality) == "1000000.00"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"purpose": "market_making"}, "purpose"),
        ({"purpose": ""}, "purpose"),
        ({"materiality": D("-0.01")}, "materiality"),
        ({"materiality": D("-1000000")}, "materiality"),
        ({"materiality": D("1.005")}, "materiality"),
        ({"materiality": D("1" + "0" * 19)}, "materiality"),
        ({"model_type": "gradient_boosting"}, "model_type"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_model_create_bad_input_names_the_field_and_writes_nothing(make_model, overrides, field):
    before = _counts()
    with pytest.raises(ValidationError) as excinfo:
        make_model(**overrides)
    assert field in excinfo.value.message_dict
    assert _counts() == before


def test_model_create_reports_several_bad_fields_at_once(make_model):
    before = _counts()
    with pytest.raises(ValidationError) as excinfo:
        make_model(purpose="nope", materiality=D("-5"))
    assert {"purpose", "materiality"} <= set(excinfo.value.message_dict)
    assert _counts() == before


def test_model_create_duplicate_name_is_refused(make_model):
    make_model(name="dup")
    before = _counts()
    with pytest.raises(ValidationError) as excinfo:
        make_model(name="dup", purpose="risk")
    assert "name" in excinfo.value.message_dict
    assert _counts() == before
    assert Model.objects.get(name="dup").purpose == "alpha"


def test_model_create_rolls_back_when_the_audit_write_fails(make_model, owner, desk, monkeypatch):
    before = _counts()
    monkeypatch.setattr(services, "record_event", _boom)
    with pytest.raises(RuntimeError, match="audit store unavailable"):
        make_model(name="never-stored")
    assert _counts() == before
    assert not Model.objects.filter(name="never-stored").exists()


@pytest.mark.parametrize("roles", [[], [Role.MODEL_DEVELOPER], [Role.VALIDATOR], [Role.COMPLIANCE_OFFICER]])
def test_model_create_without_add_permission_is_refused(make_model, roles):
    user = UserFactory(username="cannot-add", roles=roles)
    before = _counts()
    with pytest.raises(NotPermitted) as excinfo:
        make_model(actor=user)
    assert "models_registry.add_model" in str(excinfo.value)
    assert _counts() == before


# --- model_update -----------------------------------------------------------------------------------


@pytest.fixture
def model(make_model):
    return make_model(description="v1")


def test_model_update_changes_fields_and_audits_the_diff(model, owner, other_desk):
    events_before = Event.objects.count()
    updated = services.model_update(
        actor=owner,
        model=model,
        changes={"description": "v2", "desk": other_desk, "purpose": "risk"},
        reason="reorg",
    )
    stored = Model.objects.get(pk=model.pk)
    assert (stored.description, stored.desk, stored.purpose) == ("v2", other_desk, "risk")
    assert updated.description == "v2"
    assert Event.objects.count() == events_before + 1
    event = Event.objects.order_by("-seq").first()
    assert event.action == "model.updated"
    assert event.object_id == str(model.pk)
    assert event.actor == owner
    assert event.reason == "reorg"
    assert (event.before["description"], event.after["description"]) == ("v1", "v2")
    assert (event.before["purpose"], event.after["purpose"]) == ("alpha", "risk")
    assert event.after["desk_id"] == other_desk.pk
    assert event.before["materiality"] == event.after["materiality"] == "1000000.00"


def test_model_update_materiality_snapshot_is_a_two_decimal_string(model, owner):
    services.model_update(actor=owner, model=model, changes={"materiality": D("2500000")})
    event = Event.objects.get(action="model.updated")
    assert (event.before["materiality"], event.after["materiality"]) == ("1000000.00", "2500000.00")


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"description": "v1"},
        {"purpose": "alpha", "model_type": "logistic_regression"},
        {"materiality": D("1000000.00")},
        {"materiality": D("1000000")},  # same amount, different spelling
        {"risk_tier_override": None},
    ],
    ids=["empty", "same-description", "same-choices", "same-materiality", "same-materiality-unscaled", "no-override"],
)
def test_model_update_without_a_real_change_writes_no_event(model, owner, changes):
    events_before = Event.objects.count()
    services.model_update(actor=owner, model=model, changes=changes)
    assert Event.objects.count() == events_before
    stored = Model.objects.get(pk=model.pk)
    assert stored.materiality == D("1000000.00")
    assert stored.description == "v1"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"purpose": "market_making"}, "purpose"),
        ({"materiality": D("-1")}, "materiality"),
        ({"model_type": "gradient_boosting"}, "model_type"),
        ({"risk_tier_override": 7, "risk_tier_override_justification": "why not"}, "risk_tier_override"),
    ],
)
def test_model_update_bad_value_names_the_field_and_changes_nothing(model, owner, changes, field):
    before = _counts()
    with pytest.raises(ValidationError) as excinfo:
        services.model_update(actor=owner, model=model, changes=changes)
    assert field in excinfo.value.message_dict
    assert _counts() == before
    stored = Model.objects.get(pk=model.pk)
    assert (stored.purpose, stored.materiality, stored.model_type, stored.risk_tier_override) == (
        "alpha",
        D("1000000.00"),
        "logistic_regression",
        None,
    )


@pytest.mark.parametrize("field", ["name", "risk_tier", "created_at", "id", "colour"])
def test_model_update_unknown_or_protected_field_is_refused(model, owner, field):
    before = _counts()
    with pytest.raises(ValidationError) as excinfo:
        services.model_update(actor=owner, model=model, changes={"description": "new", field: 1})
    assert list(excinfo.value.message_dict) == [field]
    assert _counts() == before
    stored = Model.objects.get(pk=model.pk)
    assert stored.description == "v1"
    assert stored.name == "eq-direction"
    assert stored.risk_tier == 3


def test_model_update_rolls_back_when_the_audit_write_fails(model, owner, monkeypatch):
    before = _counts()
    monkeypatch.setattr(services, "record_event", _boom)
    with pytest.raises(RuntimeError):
        services.model_update(actor=owner, model=model, changes={"materiality": D("90000000.00")})
    assert _counts() == before
    stored = Model.objects.get(pk=model.pk)
    assert stored.materiality == D("1000000.00")
    assert stored.risk_tier == 3


def test_model_update_without_change_permission_is_refused(model):
    developer = UserFactory(username="dev-only", roles=[Role.MODEL_DEVELOPER])
    before = _counts()
    with pytest.raises(NotPermitted):
        services.model_update(actor=developer, model=model, changes={"description": "hijack"})
    assert _counts() == before
    assert Model.objects.get(pk=model.pk).description == "v1"


def test_model_update_works_from_a_stale_instance(model, owner):
    stale = Model.objects.get(pk=model.pk)
    services.model_update(actor=owner, model=model, changes={"description": "first"})
    services.model_update(actor=owner, model=stale, changes={"objectives": "second"})
    stored = Model.objects.get(pk=model.pk)
    assert (stored.description, stored.objectives) == ("first", "second")
    last = Event.objects.order_by("-seq").first()
    assert last.before["description"] == "first"  # the diff is against the stored row, not the stale copy
    assert "description" not in {k for k in last.after if last.before[k] != last.after[k]}


# --- model_version_update -------------------------------------------------------------------------------


@pytest.fixture
def version(make_version):
    return make_version()


@pytest.mark.parametrize("status", [LifecycleStatus.DRAFT, LifecycleStatus.IN_DEVELOPMENT])
def test_model_version_update_allowed_while_editable(version, owner, status):
    force_fields(version, status=status)
    events_before = Event.objects.count()
    services.model_version_update(
        actor=owner, version=version, changes={"hyperparameters": {"C": 0.5}, "code_commit": "abc1234"}
    )
    stored = ModelVersion.objects.get(pk=version.pk)
    assert stored.hyperparameters == {"C": 0.5}
    assert stored.code_commit == "abc1234"
    assert Event.objects.count() == events_before + 1
    event = Event.objects.order_by("-seq").first()
    assert event.action == "model_version.updated"
    assert event.after["hyperparameters"] == {"C": 0.5}
    assert event.before["code_commit"] == ""


def test_model_version_update_refused_once_submitted_for_validation(version, owner):
    services.model_version_transition(actor=owner, version=version, to_status="in_development")
    services.model_version_transition(actor=owner, version=version, to_status="submitted_for_validation")
    events_before = Event.objects.count()
    with pytest.raises(Conflict) as excinfo:
        services.model_version_update(actor=owner, version=version, changes={"hyperparameters": {"C": 9}})
    assert "submitted for validation" in str(excinfo.value)
    assert excinfo.value.status == 409
    stored = ModelVersion.objects.get(pk=version.pk)
    assert stored.hyperparameters == {}
    assert stored.status == LifecycleStatus.SUBMITTED_FOR_VALIDATION
    assert Event.objects.count() == events_before


@pytest.mark.parametrize(
    "status",
    [s for s in LifecycleStatus.values if s not in (LifecycleStatus.DRAFT, LifecycleStatus.IN_DEVELOPMENT)],
)
def test_model_version_update_refused_in_every_frozen_status(version, owner, status):
    force_fields(version, status=status)
    events_before = Event.objects.count()
    with pytest.raises(Conflict):
        services.model_version_update(actor=owner, version=version, changes={"code_commit": "abc1234"})
    assert ModelVersion.objects.get(pk=version.pk).code_commit == ""
    assert Event.objects.count() == events_before


def test_model_version_update_test_dataset_equal_to_training_is_refused(version, owner, make_dataset):
    training = make_dataset(name="train")
    services.model_version_update(actor=owner, version=version, changes={"training_dataset": training})
    events_before = Event.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        services.model_version_update(actor=owner, version=version, changes={"test_dataset": training})
    assert "test_dataset" in excinfo.value.message_dict
    assert ModelVersion.objects.get(pk=version.pk).test_dataset_id is None
    assert Event.objects.count() == events_before


def test_model_version_update_both_roles_equal_to_training_are_reported(version, owner, make_dataset):
    training = make_dataset(name="train")
    with pytest.raises(ValidationError) as excinfo:
        services.model_version_update(
            actor=owner,
            version=version,
            changes={"training_dataset": training, "test_dataset": training, "validation_dataset": training},
        )
    assert {"test_dataset", "validation_dataset"} <= set(excinfo.value.message_dict)
    assert ModelVersion.objects.get(pk=version.pk).training_dataset_id is None


def test_model_version_update_distinct_datasets_are_accepted(version, owner, make_dataset):
    training = make_dataset(name="train")
    test = make_dataset(name="test", content=b"Date,Close\n2021-01-04,1.0\n2021-01-05,1.1\n")
    services.model_version_update(
        actor=owner, version=version, changes={"training_dataset": training, "test_dataset": test}
    )
    stored = ModelVersion.objects.get(pk=version.pk)
    assert (stored.training_dataset, stored.test_dataset) == (training, test)


def test_model_version_create_test_dataset_equal_to_training_is_refused(make_model, owner, make_dataset):
    training = make_dataset(name="train")
    model = make_model()
    events_before = Event.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        services.model_version_create(
            actor=owner,
            model=model,
            version="1.0.0",
            artifact=skops_classifier_bytes(),
            training_dataset=training,
            test_dataset=training,
        )
    assert "test_dataset" in excinfo.value.message_dict
    assert not ModelVersion.objects.exists()
    assert Event.objects.count() == events_before


@pytest.mark.parametrize("field", ["status", "version", "model", "artifact_sha256", "nonsense"])
def test_model_version_update_unknown_or_protected_field_is_refused(version, owner, field):
    events_before = Event.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        services.model_version_update(actor=owner, version=version, changes={field: "x"})
    assert field in excinfo.value.message_dict
    assert ModelVersion.objects.get(pk=version.pk).status == LifecycleStatus.DRAFT
    assert Event.objects.count() == events_before


def test_model_version_update_hyperparameters_must_be_an_object(version, owner):
    with pytest.raises(ValidationError) as excinfo:
        services.model_version_update(actor=owner, version=version, changes={"hyperparameters": [1, 2]})
    assert "hyperparameters" in excinfo.value.message_dict
    assert ModelVersion.objects.get(pk=version.pk).hyperparameters == {}


def test_model_version_update_without_a_change_writes_no_event(version, owner):
    events_before = Event.objects.count()
    services.model_version_update(actor=owner, version=version, changes={"hyperparameters": {}})
    assert Event.objects.count() == events_before


def test_model_version_update_rolls_back_when_the_audit_write_fails(version, owner, monkeypatch):
    events_before = Event.objects.count()
    monkeypatch.setattr(services, "record_event", _boom)
    with pytest.raises(RuntimeError):
        services.model_version_update(actor=owner, version=version, changes={"code_commit": "abc1234"})
    assert ModelVersion.objects.get(pk=version.pk).code_commit == ""
    assert Event.objects.count() == events_before
