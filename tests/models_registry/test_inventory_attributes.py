"""The inventory attributes of a model (issue 9's inventory extract): vendor flag and name,
upstream models (no self-reference, no cycle), outputs and their users, restrictions on use.
Written through model_create / model_update (audited), the admin and the API."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit.models import Event
from audit.scope import audited_change
from audit.services import SystemActor, record_event
from governance.roles import Role
from models_registry import services
from models_registry.models import Model, ModelDependency
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MODELS = "/api/models/"


def _upstream(model: Model) -> list[str]:
    return sorted(model.upstream_models.values_list("name", flat=True))


def test_the_attributes_are_stored_and_in_the_created_event(make_model):
    signal = make_model(name="eq-signal")
    model = make_model(
        name="eq-execution",
        purpose="execution",
        is_vendor_model=True,
        vendor_name="Acme Analytics",
        upstream_models=[signal],
        outputs_and_users="Order schedule; used by the execution desk.",
        restrictions_on_use="Scheduling only; never sizes orders.",
    )
    stored = Model.objects.get(pk=model.pk)
    assert (stored.is_vendor_model, stored.vendor_name) == (True, "Acme Analytics")
    assert _upstream(stored) == ["eq-signal"]
    assert stored.outputs_and_users == "Order schedule; used by the execution desk."
    assert stored.restrictions_on_use == "Scheduling only; never sizes orders."
    created = Event.objects.get(action="model.created", object_id=str(model.pk))
    after = created.after
    assert after["is_vendor_model"] is True and after["vendor_name"] == "Acme Analytics"
    assert after["upstream_models"] == [signal.pk]
    assert after["restrictions_on_use"] == "Scheduling only; never sizes orders."
    link = ModelDependency.objects.get(model=model)
    added = Event.objects.get(action="model.upstream_added", object_id=str(link.pk))
    assert added.after["upstream_name"] == "eq-signal" and added.after["model_name"] == "eq-execution"


def test_every_change_is_audited_with_before_and_after(make_model, owner):
    signal, other = make_model(name="eq-signal"), make_model(name="eq-other")
    model = make_model(name="eq-execution")
    services.model_update(
        actor=owner,
        model=model,
        changes={
            "upstream_models": [signal, other],
            "outputs_and_users": "Schedules.",
            "restrictions_on_use": "ORCL only.",
            "is_vendor_model": True,
            "vendor_name": "Acme",
        },
        reason="inventory review",
    )
    event = Event.objects.filter(action="model.updated", object_id=str(model.pk)).latest("seq")
    assert event.before["upstream_models"] == [] and event.after["upstream_models"] == sorted([signal.pk, other.pk])
    assert (event.before["restrictions_on_use"], event.after["restrictions_on_use"]) == ("", "ORCL only.")
    assert (event.before["vendor_name"], event.after["vendor_name"]) == ("", "Acme")
    assert event.reason == "inventory review"
    # Removing one link: its own event, and the model's event shows the new list.
    services.model_update(actor=owner, model=model, changes={"upstream_models": [other]})
    event = Event.objects.filter(action="model.updated", object_id=str(model.pk)).latest("seq")
    assert event.after["upstream_models"] == [other.pk]
    assert Event.objects.filter(action="model.upstream_removed").count() == 1
    assert _upstream(model) == ["eq-other"]
    # The same list again changes nothing and records nothing.
    count = Event.objects.count()
    services.model_update(actor=owner, model=model, changes={"upstream_models": [other]})
    assert Event.objects.count() == count


def test_a_vendor_model_needs_the_vendors_name(make_model, owner):
    with pytest.raises(ValidationError) as refused:
        make_model(is_vendor_model=True, vendor_name="  ")
    assert "vendor_name" in refused.value.message_dict
    assert not Model.objects.exists()
    model = make_model()
    with pytest.raises(ValidationError) as refused:
        services.model_update(actor=owner, model=model, changes={"is_vendor_model": True})
    assert "vendor_name" in refused.value.message_dict
    model.refresh_from_db()
    assert model.is_vendor_model is False


def test_the_database_refuses_a_vendor_flag_without_a_name(make_model):
    model = make_model()
    with pytest.raises(IntegrityError), transaction.atomic(), audited_change():
        Model.objects.filter(pk=model.pk).update(is_vendor_model=True, vendor_name="")
        record_event(actor=SystemActor("tests"), action="test.raw", target=model)


def test_an_in_house_model_keeps_no_vendor_name(make_model, owner):
    model = make_model(is_vendor_model=True, vendor_name="Acme")
    services.model_update(actor=owner, model=model, changes={"is_vendor_model": False})
    model.refresh_from_db()
    assert (model.is_vendor_model, model.vendor_name) == (False, "")


def test_a_model_cannot_feed_itself(make_model, owner):
    model = make_model()
    count = Event.objects.count()
    with pytest.raises(ValidationError) as refused:
        services.model_update(actor=owner, model=model, changes={"upstream_models": [model]})
    assert refused.value.message_dict["upstream_models"] == ["a model cannot feed itself"]
    assert Event.objects.count() == count and not ModelDependency.objects.exists()


def test_a_cycle_is_refused_with_its_path_and_changes_nothing(make_model, owner):
    a, b, c = make_model(name="m-a"), make_model(name="m-b"), make_model(name="m-c")
    services.model_update(actor=owner, model=b, changes={"upstream_models": [a]})  # a feeds b
    services.model_update(actor=owner, model=c, changes={"upstream_models": [b]})  # b feeds c
    links, events = ModelDependency.objects.count(), Event.objects.count()
    a.refresh_from_db()
    updated_at = a.updated_at
    with pytest.raises(ValidationError) as refused:
        # c feeding a would close a -> b -> c -> a; the description change goes nowhere either.
        services.model_update(actor=owner, model=a, changes={"upstream_models": [c], "description": "changed"})
    (message,) = refused.value.message_dict["upstream_models"]
    assert "m-c already depends on m-a" in message and "(m-a -> m-b -> m-c)" in message
    assert "cycle" in message
    assert (ModelDependency.objects.count(), Event.objects.count()) == (links, events)
    a.refresh_from_db()
    assert (a.description, a.updated_at, _upstream(a)) == ("", updated_at, [])


def test_the_database_refuses_a_self_link(make_model):
    model = make_model()
    with pytest.raises(IntegrityError), transaction.atomic(), audited_change():
        link = ModelDependency.objects.create(model=model, upstream=model)
        record_event(actor=SystemActor("tests"), action="test.raw", target=link)


def test_an_upstream_model_out_of_sight_is_refused(make_model, owner, other_desk, compliance):
    from governance import services as governance_services

    stranger = UserFactory(username="sam", roles=[Role.MODEL_OWNER])
    governance_services.membership_set(actor=compliance, user=stranger, desk=other_desk)
    theirs = make_model(name="rates-theirs", owner=stranger, desk=other_desk, actor=stranger)
    model = make_model()
    with pytest.raises(ValidationError) as refused:
        services.model_update(actor=owner, model=model, changes={"upstream_models": [theirs]})
    assert refused.value.message_dict["upstream_models"] == [f"no such model: #{theirs.pk}"]
    assert not ModelDependency.objects.exists()


# --- API ---------------------------------------------------------------------------------------


def _payload(**overrides):
    data = {
        "name": "eq-execution",
        "purpose": "execution",
        "desk": "equities",
        "model_type": "logistic_regression",
        "materiality": "1000000",
    }
    data.update(overrides)
    return data


def test_api_creates_and_shows_the_attributes(api, owner, make_model):
    make_model(name="eq-signal")
    response = api(owner).post(
        MODELS,
        _payload(
            upstream_models=["eq-signal"],
            outputs_and_users="Schedules for the execution desk.",
            restrictions_on_use="Scheduling only.",
        ),
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["upstream_models"] == ["eq-signal"]
    assert (body["is_vendor_model"], body["vendor_name"]) == (False, "")
    assert body["outputs_and_users"] == "Schedules for the execution desk."
    assert body["restrictions_on_use"] == "Scheduling only."


def test_api_vendor_flag_without_name_is_400_naming_the_field(api, owner, make_model):
    before = (Model.objects.count(), Event.objects.count())
    response = api(owner).post(MODELS, _payload(is_vendor_model=True), format="json")
    assert response.status_code == 400
    assert "vendor_name" in str(response.json())
    assert (Model.objects.count(), Event.objects.count()) == before
    model = make_model()
    response = api(owner).patch(f"{MODELS}{model.pk}/", {"is_vendor_model": True}, format="json")
    assert response.status_code == 400 and "vendor_name" in str(response.json())
    response = api(owner).patch(f"{MODELS}{model.pk}/", {"is_vendor_model": True, "vendor_name": "Acme"}, format="json")
    assert response.status_code == 200 and response.json()["vendor_name"] == "Acme"


def test_api_cycle_is_400_naming_the_field(api, owner, make_model):
    a, b = make_model(name="m-a"), make_model(name="m-b")
    client = api(owner)
    assert client.patch(f"{MODELS}{b.pk}/", {"upstream_models": ["m-a"]}, format="json").status_code == 200
    response = client.patch(f"{MODELS}{a.pk}/", {"upstream_models": ["m-b"]}, format="json")
    assert response.status_code == 400 and "upstream_models" in str(response.json())
    assert "cycle" in str(response.json())
    assert _upstream(a) == []


def test_api_names_no_upstream_model_the_caller_may_not_see(api, owner, make_model, other_desk, compliance):
    from governance import services as governance_services

    stranger = UserFactory(username="sam", roles=[Role.MODEL_OWNER])
    governance_services.membership_set(actor=compliance, user=stranger, desk=other_desk)
    theirs = make_model(name="rates-theirs", owner=stranger, desk=other_desk, actor=stranger)
    # The stranger's model feeds one of the owner's (recorded by an administrator's job).
    mine = make_model(name="eq-mine")
    services.model_update(actor=SystemActor("tests"), model=mine, changes={"upstream_models": [theirs]})
    body = api(owner).get(f"{MODELS}{mine.pk}/").json()
    assert body["upstream_models"] == []
    assert api(compliance).get(f"{MODELS}{mine.pk}/").json()["upstream_models"] == ["rates-theirs"]
    # Naming it in input is "does not exist", as for any model out of sight.
    response = api(owner).patch(f"{MODELS}{mine.pk}/", {"upstream_models": ["rates-theirs"]}, format="json")
    assert response.status_code == 400 and "upstream_models" in response.json()


# --- Admin ---------------------------------------------------------------------------------------


def test_admin_saves_the_attributes_through_the_service(client, owner, make_model):
    signal = make_model(name="eq-signal")
    model = make_model(name="eq-execution")
    client.force_login(owner)
    url = f"/admin/models_registry/model/{model.pk}/change/"
    page = client.get(url, secure=True)
    assert page.status_code == 200 and b"Upstream models" in page.content
    form = {
        "purpose": "execution",
        "desk": model.desk_id,
        "owner": owner.pk,
        "description": "",
        "objectives": "",
        "success_criteria": "",
        "constraints": "",
        "is_vendor_model": "on",
        "vendor_name": "Acme",
        "upstream": [signal.pk],
        "outputs_and_users": "Schedules.",
        "restrictions_on_use": "Scheduling only.",
        "model_type": "logistic_regression",
        "materiality": "1000000.00",
        "risk_tier_override": "",
        "risk_tier_override_justification": "",
    }
    response = client.post(url, form, secure=True)
    assert response.status_code == 302, response.content[:2000]
    model.refresh_from_db()
    assert (model.vendor_name, model.restrictions_on_use, _upstream(model)) == (
        "Acme",
        "Scheduling only.",
        ["eq-signal"],
    )
    assert Event.objects.filter(action="model.updated", object_id=str(model.pk), actor=owner).exists()
