"""No write path to a governed model skips the audit log: walk every governed model and try them all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission

from audit.governed import RECORDED, SERVICE_ONLY, governed_links, governed_models
from audit.models import Event
from audit.scope import UnauditedWriteError, audited_change
from audit.services import SystemActor, record_event
from audit.verify import verify_log
from governance import services as governance_services
from governance.models import Membership
from governance.roles import Role
from models_registry import services as registry_services
from tests.factories import UserFactory

User = get_user_model()
pytestmark = pytest.mark.django_db

# Models of our own apps that are not governed, and why. Any other model must be governed:
# a new model fails this file until it is one or is listed here with its reason.
NOT_GOVERNED = {
    "audit.event": "the log itself: append-only by triggers",
    "audit.treenode": "the log itself: append-only by triggers",
    "audit.head": "the log's write lock, changed only by record_event",
    "audit.checkpoint": "signed tree heads: append-only by triggers",
    "governance.monitoringsample": "bound by its batch's event (content hash); append-only, bulk-written by ingest",
}
OWN_APPS = ("governance", "models_registry", "audit")


@pytest.fixture
def existing(
    request, desk, other_desk, owner, make_model, make_version, make_dataset
) -> Callable[[type[models.Model]], models.Model]:
    """One existing row of each governed model, made through its service."""

    def membership() -> models.Model:
        return governance_services.membership_set(actor=SystemActor("tests"), user=owner, desk=desk)

    builders: dict[str, Callable[[], models.Model]] = {
        "models_registry.model": lambda: make_model(name="walk-model"),
        "models_registry.modelversion": lambda: make_version(),
        "models_registry.dataset": lambda: make_dataset(name="walk-dataset"),
        # A desk no membership refers to (the owner sits on ``desk``), so that deleting it can be tried.
        "governance.desk": lambda: other_desk,
        "governance.membership": lambda: governance_services.membership_set(
            actor=SystemActor("tests"), user=owner, desk=desk
        ),
        "governance.deskgrant": lambda: governance_services.desk_access_grant(
            actor=SystemActor("tests"), user=owner, desk=desk, permission="view_desk_models"
        ),
        "models_registry.modelgrant": lambda: registry_services.model_access_grant(
            actor=SystemActor("tests"),
            user=UserFactory(username="grantee"),
            model=make_model(name="shared"),
            permission="view_model",
        ),
        "models_registry.datasetgrant": lambda: registry_services.dataset_access_grant(
            actor=SystemActor("tests"),
            user=UserFactory(username="grantee"),
            dataset=make_dataset(name="shared"),
            permission="view_dataset",
        ),
        "models_registry.engagement": lambda: _engagement(make_model),
        "models_registry.engagementmodel": lambda: _engagement(make_model).scope.get(),
        "guardian.userobjectpermission": lambda: _generic_grant(UserObjectPermission, membership(), user=owner),
        "guardian.groupobjectpermission": lambda: _generic_grant(
            GroupObjectPermission, membership(), group=Group.objects.get(name=Role.VALIDATOR.value)
        ),
        "auth.user": lambda: owner,
        "auth.group": lambda: Group.objects.get(name=Role.VALIDATOR.value),
        "governance.policyset": lambda: _policy_set(),
        "governance.policydecision": lambda: _policy_decision(make_version()),
        "governance.signoffrequest": lambda: _signoff_request(request),
        "governance.signoffresponse": lambda: _signoff_response(request),
        "governance.deployment": lambda: _deployment(request),
        "governance.monitoringbatch": lambda: _monitoring_batch(request),
        "governance.monitoringalert": lambda: _monitoring_alert(request),
        "models_registry.riskassessment": lambda: _risk_assessment(make_version, make_dataset),
        "governance.report": lambda: _report(request, make_model),
        "models_registry.modeldependency": lambda: registry_services.model_update(
            actor=SystemActor("tests"),
            model=make_model(name="downstream"),
            changes={"upstream_models": [make_model(name="upstream")]},
        ).upstream_links.get(),
        "models_registry.postmodeladjustment": lambda: registry_services.adjustment_create(
            actor=request.getfixturevalue("compliance"),
            version=request.getfixturevalue("validated_version"),
            description="walk",
            reason="walk",
            adjustment="cap: walk",
            effective_from=timezone.now(),
        ),
        "governance.finding": lambda: governance_services.finding_raise(
            actor=request.getfixturevalue("validator"),
            version=request.getfixturevalue("validated_version"),
            severity="low",
            title="walk",
            description="walk",
            remediation_owner=owner,
            due_date=timezone.now().date(),
        ),
    }

    def build(model: type[models.Model]) -> models.Model:
        label = model._meta.label_lower
        assert label in builders, f"{label} is governed but this test has no builder for it: add one"
        return builders[label]()

    return build


def _risk_assessment(make_version: Callable[..., models.Model], make_dataset: Callable[..., models.Model]) -> Any:
    """Queued only: inside the test's transaction the job (sent on commit) never starts."""
    version = make_version(target="Close", test_dataset=make_dataset(name="walk-test"))
    return registry_services.assessment_request(actor=SystemActor("tests"), version=version, kind="performance")[0]


def _report(request: pytest.FixtureRequest, make_model: Callable[..., models.Model]) -> models.Model:
    """Queued only: inside the test's transaction the job (sent on commit) never starts."""
    from governance import report_services

    return report_services.report_request(
        actor=request.getfixturevalue("compliance"), report_type="audit-trail", model_id=make_model(name="reported").pk
    )


def _policy_set() -> models.Model:
    officer = UserFactory(username="walk-compliance", roles=[Role.COMPLIANCE_OFFICER])
    return governance_services.policy_set_activate(actor=officer)[0]


def _policy_decision(version: models.Model) -> models.Model:
    _policy_set()
    return governance_services.policy_evaluate(actor=SystemActor("tests"), version=version, trigger="periodic")


def _signoff_request(request: pytest.FixtureRequest) -> models.Model:
    version = request.getfixturevalue("validated_version")
    request.getfixturevalue("active_set")
    return governance_services.signoff_submit(
        actor=request.getfixturevalue("owner"),
        version=version,
        to_status="approved",
        justification="walk",
        evidence=[{"title": "report", "reference": "R-1"}],
    )


def _signoff_response(request: pytest.FixtureRequest) -> models.Model:
    signoff = _signoff_request(request)
    governance_services.signoff_respond(
        actor=request.getfixturevalue("risk_manager"), request=signoff, verdict="approve", comment="walk"
    )
    return signoff.responses.get()


def _deployment(request: pytest.FixtureRequest) -> models.Model:
    from governance.models import Deployment

    version = request.getfixturevalue("approved_version")
    signoff = governance_services.signoff_submit(
        actor=request.getfixturevalue("owner"),
        version=version,
        to_status="deployed",
        justification="walk",
        evidence=[{"title": "report", "reference": "R-1"}],
        deployment={
            "phase": "shadow",
            "capital_limit": "1000.00",
            "instruments": ["NVDA"],
            "rollback_plan": "switch off",
        },
    )
    governance_services.signoff_respond(
        actor=request.getfixturevalue("second_risk_manager"), request=signoff, verdict="approve", comment="walk"
    )
    return Deployment.objects.get(version=version)


def _monitoring_batch(request: pytest.FixtureRequest) -> models.Model:
    from governance.models import MonitoringBatch

    deployment = _deployment(request)
    now = timezone.now()
    with audited_change():
        batch = MonitoringBatch.objects.create(
            model=deployment.model,
            deployment=deployment,
            version=deployment.version,
            batch_id="walk-1",
            content_sha256="0" * 64,
            sample_count=1,
            first_at=now,
            last_at=now,
            received_at=now,
            received_by_label="tests",
        )
        record_event(actor=SystemActor("tests"), action="monitoring.batch_ingested", target=batch)
    return batch


def _monitoring_alert(request: pytest.FixtureRequest) -> models.Model:
    from governance.models import MonitoringAlert

    deployment = _deployment(request)
    decision = governance_services.policy_evaluate(
        actor=SystemActor("tests"), version=deployment.version, trigger="periodic"
    )
    with audited_change():
        alert = MonitoringAlert.objects.create(
            deployment=deployment,
            model=deployment.model,
            version=deployment.version,
            rule_id="MON-WALK-01",
            actions=["alert"],
            severity="medium",
            message="walk",
            raised_at=timezone.now(),
            policy_decision=decision,
        )
        record_event(actor=SystemActor("tests"), action="monitoring.alert_raised", target=alert)
    return alert


def _engagement(make_model: Callable[..., models.Model]) -> models.Model:
    regulator = UserFactory(username="reg", roles=[Role.REGULATOR])
    now = timezone.now()
    return registry_services.engagement_create(
        actor=SystemActor("tests"),
        regulator=regulator,
        authority="PRA",
        purpose="review",
        starts_at=now,
        ends_at=now + dt.timedelta(days=30),
        models=[make_model(name="engaged")],
    )


def _generic_grant(model: type[models.Model], target: models.Model, **holder: Any) -> models.Model:
    """A grant in guardian's generic table (an object with no grant table of its own: a desk membership)."""
    permission = Permission.objects.get(codename="view_membership")
    membership_type = ContentType.objects.get_for_model(Membership)
    with audited_change():
        row = model.objects.create(
            permission=permission, content_type=membership_type, object_pk=str(target.pk), **holder
        )
        record_event(actor=SystemActor("tests"), action="test.generic_grant", target=row)
    return row


# A harmless change per model, valid for the database.
CHANGES: dict[str, dict[str, Any]] = {
    "models_registry.model": {"description": "changed"},
    "models_registry.modelversion": {"code_commit": "abc1234"},
    "models_registry.dataset": {"description": "changed"},
    "governance.desk": {"name": "Changed desk"},
    "governance.membership": {"desk_id": F("desk_id")},
    "governance.deskgrant": {"user_id": F("user_id")},
    "models_registry.modelgrant": {"user_id": F("user_id")},
    "models_registry.datasetgrant": {"user_id": F("user_id")},
    "models_registry.engagement": {"purpose": "changed"},
    "models_registry.engagementmodel": {"model_id": F("model_id")},
    "guardian.userobjectpermission": {"object_pk": F("object_pk")},
    "guardian.groupobjectpermission": {"object_pk": F("object_pk")},
    "auth.user": {"first_name": "Changed"},
    "auth.group": {"name": "changed-group"},
    "governance.policyset": {"activated_by_label": "changed"},
    "governance.policydecision": {"actor_label": "changed"},
    "governance.signoffrequest": {"justification": "changed"},
    "governance.signoffresponse": {"comment": "changed"},
    "governance.finding": {"title": "changed"},
    "governance.deployment": {"kill_reason": "changed"},
    "governance.monitoringbatch": {"received_by_label": "changed"},
    "governance.monitoringalert": {"message": "changed"},
    "models_registry.riskassessment": {"current_step": "changed"},
    "governance.report": {"step": "changed"},
    "models_registry.modeldependency": {"upstream_id": F("upstream_id")},
    "models_registry.postmodeladjustment": {"description": "changed"},
}


def _governed(kind: str | None = None) -> list[type[models.Model]]:
    return [model for model, k in governed_models().items() if kind is None or k == kind]


def _ids(model: type[models.Model]) -> str:
    return model._meta.label_lower


def test_every_model_of_our_apps_is_governed_or_listed_with_a_reason():
    governed = {model._meta.label_lower for model in governed_models()}
    own = {model._meta.label_lower for model in apps.get_models() if model._meta.app_label in OWN_APPS}
    assert own - governed - NOT_GOVERNED.keys() == set()
    # Django's user and group are governed too (roles are groups), and so are guardian's grants.
    assert {"auth.user", "auth.group", "guardian.userobjectpermission", "guardian.groupobjectpermission"} <= governed


@pytest.mark.parametrize("model", _governed(), ids=_ids)
def test_queryset_update_and_bulk_writes_are_refused_outside_a_service(model, existing):
    row = existing(model)
    events = Event.objects.count()
    label = model._meta.label_lower
    field = next(iter(CHANGES[label])).removesuffix("_id")
    with pytest.raises(UnauditedWriteError, match="update"):
        model.objects.filter(pk=row.pk).update(**CHANGES[label])
    with pytest.raises(UnauditedWriteError, match="bulk_update"):
        model.objects.bulk_update([row], [field])
    with pytest.raises(UnauditedWriteError, match="bulk_create"):
        model.objects.bulk_create([model()])
    assert Event.objects.count() == events


@pytest.mark.parametrize("model", _governed(SERVICE_ONLY), ids=_ids)
def test_service_only_rows_cannot_be_saved_or_deleted_outside_a_service(model, existing):
    row = existing(model)
    stored = model.objects.filter(pk=row.pk).values().get()
    events = Event.objects.count()
    for name, value in CHANGES[model._meta.label_lower].items():
        setattr(row, name, value)
    with pytest.raises(UnauditedWriteError, match="save"):
        row.save()
    with pytest.raises(UnauditedWriteError, match="delete"), transaction.atomic():
        row.delete()
    with pytest.raises(UnauditedWriteError, match="delete"):
        model.objects.filter(pk=row.pk).delete()
    assert model.objects.filter(pk=row.pk).values().get() == stored
    assert Event.objects.count() == events


@pytest.mark.parametrize("model", _governed(), ids=_ids)
def test_a_change_that_writes_a_row_without_its_event_is_rolled_back(model, existing):
    row = existing(model)
    stored = model.objects.filter(pk=row.pk).values().get()
    events = Event.objects.count()
    with pytest.raises(UnauditedWriteError, match=f"{model._meta.label_lower}:{row.pk}"), audited_change():
        model.objects.filter(pk=row.pk).update(**CHANGES[model._meta.label_lower])
    assert model.objects.filter(pk=row.pk).values().get() == stored
    assert Event.objects.count() == events


@pytest.mark.parametrize("model", _governed(), ids=_ids)
def test_a_bulk_update_in_a_service_needs_one_event_per_row(model, existing):
    row = existing(model)
    label = model._meta.label_lower
    with audited_change():
        model.objects.filter(pk=row.pk).update(**CHANGES[label])
        record_event(actor=SystemActor("tests"), action="test.bulk_row", target=row)
    assert Event.objects.filter(action="test.bulk_row", object_type=label, object_id=str(row.pk)).exists()
    assert verify_log().ok


# Recorded models: Django writes them itself, so each write is recorded on the spot.


def test_user_save_outside_a_service_is_recorded_without_the_password():
    user = UserFactory(username="walk-user")
    created = Event.objects.filter(action="auth.user.created", object_id=str(user.pk)).get()
    assert created.after["username"] == "walk-user"
    assert created.after["password"] in ("(set)", "")
    user.first_name = "Walker"
    user.set_password("another secret")
    user.save()
    updated = Event.objects.filter(action="auth.user.updated", object_id=str(user.pk)).latest("seq")
    assert updated.before["first_name"] == "" and updated.after["first_name"] == "Walker"
    assert updated.after["password"] == "(changed)"
    assert "secret" not in str(updated.before) + str(updated.after)


def test_saving_a_user_unchanged_records_nothing():
    user = UserFactory(username="still")
    events = Event.objects.count()
    User.objects.get(pk=user.pk).save()
    assert Event.objects.count() == events


def test_user_delete_outside_a_service_is_recorded():
    user = UserFactory(username="leaver")
    pk = user.pk
    user.delete()
    event = Event.objects.get(action="auth.user.deleted", object_id=str(pk))
    assert event.before["username"] == "leaver"


def test_group_membership_changes_are_recorded_per_user_in_both_directions():
    alice, bob = UserFactory(username="alice-w"), UserFactory(username="bob-w")
    validators = Group.objects.get(name=Role.VALIDATOR.value)

    alice.groups.add(validators)
    added = Event.objects.filter(action="auth.user.groups.added", object_id=str(alice.pk)).get()
    assert added.after["groups"] == {"added": [validators.pk]}

    validators.user_set.add(bob)  # the reverse side: recorded against the user, too
    assert Event.objects.filter(action="auth.user.groups.added", object_id=str(bob.pk)).exists()

    validators.user_set.clear()
    removed = Event.objects.filter(action="auth.user.groups.removed").order_by("seq")
    assert {e.object_id for e in removed} == {str(alice.pk), str(bob.pk)}
    assert all(e.after["groups"] == {"removed": [validators.pk]} for e in removed)
    assert verify_log().ok


def test_group_permission_changes_are_recorded():
    group = Group.objects.get(name=Role.VALIDATOR.value)
    permission = Permission.objects.get(codename="delete_model")
    group.permissions.add(permission)
    event = Event.objects.get(action="auth.group.permissions.added", object_id=str(group.pk))
    assert event.after["permissions"] == {"added": [permission.pk]}
    assert permission.pk in event.after["now"]


@pytest.mark.parametrize(("owner_model", "field"), [(m, f) for m, f in governed_links().values()], ids=str)
def test_link_tables_cannot_be_written_directly(owner_model, field):
    link = owner_model._meta.get_field(field).remote_field.through
    user = UserFactory(username="linker")
    group = Group.objects.get(name=Role.VALIDATOR.value)
    permission = Permission.objects.first()
    owner, related, values = {
        ("auth.user", "groups"): (user, group, {"user": user, "group": group}),
        ("auth.user", "user_permissions"): (user, permission, {"user": user, "permission": permission}),
        ("auth.group", "permissions"): (group, permission, {"group": group, "permission": permission}),
    }[(owner_model._meta.label_lower, field)]
    with pytest.raises(UnauditedWriteError):
        link.objects.create(**values)
    with pytest.raises(UnauditedWriteError):
        link.objects.bulk_create([link(**values)])
    getattr(owner, field).add(related)  # through the relation: allowed, and recorded
    assert link.objects.filter(**values).exists()
    with pytest.raises(UnauditedWriteError), transaction.atomic():
        link.objects.all().delete()
    with pytest.raises(UnauditedWriteError):
        link.objects.all().update(pk=1)


def test_relation_managers_of_recorded_models_refuse_bulk_updates():
    group = Group.objects.get(name=Role.VALIDATOR.value)
    UserFactory(username="member", roles=[Role.VALIDATOR])
    with pytest.raises(UnauditedWriteError, match="update"):
        group.user_set.all().update(is_superuser=True)
    assert not User.objects.filter(is_superuser=True).exists()


def test_governed_models_have_the_expected_kinds():
    kinds = {model._meta.label_lower: kind for model, kind in governed_models().items()}
    assert kinds["auth.user"] == RECORDED
    assert kinds["models_registry.modelversion"] == SERVICE_ONLY
