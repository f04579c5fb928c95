"""The deployments API: the trading permission by model (id or name), scoped to what the caller
sees; the kill switch, its lifting and rollback as the caller, each answering with the
deployment and the permission after it; the scoped list and detail."""

from __future__ import annotations

import pytest

from audit.models import Event
from audit.services import SystemActor
from governance import services
from governance.models import Deployment
from governance.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = "/api/deployments/"


def _permission_url(ref) -> str:
    return f"{LIST}{ref}/permission"


@pytest.fixture
def stranger(other_desk):
    """A model owner on another desk: holds view_deployment, sees none of these models."""
    user = UserFactory(username="sam", roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER])
    services.membership_set(actor=SystemActor("tests"), user=user, desk=other_desk)
    return user


@pytest.fixture
def auditor(db):
    return UserFactory(username="ida", roles=[Role.INTERNAL_AUDITOR])


# --- The trading permission ---------------------------------------------------------------


def test_permission_of_a_deployed_model_by_id_or_name_with_or_without_the_slash(api, deployed, risk_manager):
    expected = {
        "allowed": True,
        "version": deployed.version,
        "phase": "shadow",
        "capital_limit": "5000000.00",
        "currency": "USD",
        "instruments": ["NVDA"],
        "reason": "deployed in phase shadow",
    }
    client = api(risk_manager)
    model = deployed.model
    for url in (
        _permission_url(model.pk),
        _permission_url(model.name),
        _permission_url(model.pk) + "/",
        _permission_url(model.name) + "/",
    ):
        response = client.get(url)
        assert response.status_code == 200, (url, response.content)
        assert response.json() == expected


def test_permission_of_a_model_that_is_not_deployed(api, approved_version, owner):
    response = api(owner).get(_permission_url(approved_version.model_id))
    assert response.status_code == 200
    assert response.json()["allowed"] is False and response.json()["reason"] == "not deployed"
    assert response.json()["version"] is None


def test_permission_unknown_out_of_scope_forbidden_anonymous(api, deployed, stranger, outsider, owner):
    model = deployed.model
    assert api(owner).get(_permission_url(987654)).status_code == 404
    assert api(owner).get(_permission_url("no-such-model")).status_code == 404
    assert api(owner).get(_permission_url("9" * 30)).status_code == 404  # not an id: a name
    # Outside the caller's scope: the same answer as a model that does not exist.
    for ref in (model.pk, model.name):
        response = api(stranger).get(_permission_url(ref))
        assert response.status_code == 404
        assert response.json() == api(stranger).get(_permission_url("no-such-model")).json() | {
            "detail": f"no model {str(ref)!r} that you can see"
        }
    developer = UserFactory(username="dev", roles=[Role.MODEL_DEVELOPER])  # sees models, not deployments
    for user in (outsider, developer):
        response = api(user).get(_permission_url(model.pk))
        assert response.status_code == 403
        assert "view_deployment" in response.json()["detail"]
    assert api().get(_permission_url(model.pk)).status_code == 401


def test_the_permission_read_is_a_few_queries_and_the_cache_answers_the_second(
    api, deployed, risk_manager, django_assert_max_num_queries
):
    client = api(risk_manager)
    url = _permission_url(deployed.model_id)
    client.get(url)  # warm: the user's permissions and the cached answer
    with django_assert_max_num_queries(4):
        assert client.get(url).json()["allowed"]


# --- Kill switch, lift, rollback ----------------------------------------------------------


def test_the_kill_switch_flips_the_permission_at_once(
    api, deployed, owner, compliance, django_capture_on_commit_callbacks
):
    client = api(owner)
    model = deployed.model
    assert client.get(_permission_url(model.pk)).json()["allowed"]  # cached now
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{LIST}{model.name}/kill-switch/", {"reason": "Fat-finger alert."}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["deployment"]["status"] == "suspended" and body["deployment"]["kill_switch_engaged"]
    assert body["deployment"]["kill_reason"] == "Fat-finger alert." and body["deployment"]["killed_by"] == "olivia"
    assert body["permission"]["allowed"] is False
    assert body["permission"]["reason"] == "kill switch engaged: Fat-finger alert."
    permission = client.get(_permission_url(model.pk)).json()
    assert permission["allowed"] is False and permission["reason"] == "kill switch engaged: Fat-finger alert."
    assert Event.objects.get(action="kill_switch.engaged").reason == "Fat-finger alert."


def test_a_kill_switch_drill_stops_the_model_and_is_recorded_as_one(api, deployed, owner):
    url = f"{LIST}{deployed.model.pk}/kill-switch/"
    bad = api(owner).post(url, {"reason": "Quarterly test.", "drill": "sometimes"}, format="json")
    assert bad.status_code == 400 and "drill" in bad.json()
    assert not Deployment.objects.get().kill_switch_engaged
    response = api(owner).post(url, {"reason": "Quarterly test.", "drill": True}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["deployment"]["kill_drill"] is True and body["deployment"]["status"] == "suspended"
    assert body["permission"]["allowed"] is False  # a drill stops the model all the same
    event = Event.objects.get(action="kill_switch.engaged")
    assert event.after["kill_drill"] is True and event.before["kill_drill"] is False


def test_kill_switch_refusals_change_nothing(api, deployed, stranger, auditor, owner):
    model = deployed.model
    url = f"{LIST}{model.pk}/kill-switch/"
    events = Event.objects.count()
    response = api(owner).post(url, {"reason": "  "}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    assert api(owner).post(url, {}, format="json").status_code == 400
    assert api(stranger).post(url, {"reason": "x"}, format="json").status_code == 404
    response = api(auditor).post(url, {"reason": "x"}, format="json")  # sees deployments, may not pull
    assert response.status_code == 403 and "engage_killswitch" in response.json()["detail"]
    assert api(owner).post(f"{LIST}no-such-model/kill-switch/", {"reason": "x"}, format="json").status_code == 404
    assert not Deployment.objects.get().kill_switch_engaged
    assert Event.objects.count() == events


def test_only_compliance_lifts_and_the_model_stays_suspended(
    api, deployed, owner, risk_manager, compliance, django_capture_on_commit_callbacks
):
    model = deployed.model
    lift = f"{LIST}{model.pk}/lift-kill-switch/"
    assert api(compliance).post(lift, {"reason": "Nothing to lift."}, format="json").status_code == 409
    with django_capture_on_commit_callbacks(execute=True):
        api(owner).post(f"{LIST}{model.pk}/kill-switch/", {"reason": "Limit breach."}, format="json")
    for user in (owner, risk_manager):
        response = api(user).post(lift, {"reason": "Resolved."}, format="json")
        assert response.status_code == 403 and "lift_killswitch" in response.json()["detail"]
    assert Deployment.objects.get().kill_switch_engaged
    with django_capture_on_commit_callbacks(execute=True):
        response = api(compliance).post(lift, {"reason": "Root cause fixed."}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["deployment"]["kill_switch_engaged"] is False and body["deployment"]["status"] == "suspended"
    assert body["permission"]["allowed"] is False
    assert body["permission"]["reason"] == "deployment suspended (version suspended)"
    assert Event.objects.get(action="kill_switch.lifted").reason == "Root cause fixed."


def test_rollback_returns_to_the_target_and_answers_with_the_restored_deployment(
    api, approved_version, risk_manager, deploy_newer, django_capture_on_commit_callbacks
):
    newer = deploy_newer()
    client = api(risk_manager)
    url = f"{LIST}{newer.model_id}/rollback/"
    assert client.get(_permission_url(newer.model_id)).json()["version"] == "1.1.0"  # cached now
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"reason": "Accuracy dropped."}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["deployment"]["version_label"] == approved_version.version
    assert body["deployment"]["status"] == "active" and body["deployment"]["phase"] == "shadow"
    assert body["permission"]["allowed"] and body["permission"]["version"] == approved_version.version
    assert client.get(_permission_url(newer.model_id)).json()["version"] == approved_version.version
    assert Deployment.objects.get(version=newer).status == "rolled_back"
    # The restored deployment names no target: refused, nothing changed.
    response = client.post(url, {"reason": "Again."}, format="json")
    assert response.status_code == 409 and "no rollback target" in response.json()["detail"]
    assert Deployment.objects.filter(status="active").count() == 1


# --- List and detail ----------------------------------------------------------------------


def test_list_and_detail_are_scoped_and_filtered(api, deployed, owner, stranger, outsider):
    live = Deployment.objects.get()
    client = api(owner)
    rows = client.get(LIST).json()["results"]
    assert [row["id"] for row in rows] == [live.pk]
    row = rows[0]
    assert (row["model_name"], row["version_label"], row["status"], row["phase"]) == (
        deployed.model.name,
        deployed.version,
        "active",
        "shadow",
    )
    assert (row["capital_limit"], row["currency"], row["instruments"]) == ("5000000.00", "USD", ["NVDA"])
    assert client.get(LIST, {"status": "active", "phase": "shadow", "model": deployed.model_id}).json()["count"] == 1
    assert client.get(LIST, {"status": "suspended"}).json()["count"] == 0
    assert client.get(LIST, {"phase": "pilot"}).json()["count"] == 0
    assert client.get(LIST, {"phase": "moon"}).status_code == 400
    assert client.get(f"{LIST}{live.pk}/").json()["id"] == live.pk
    for user in (stranger, outsider):
        assert api(user).get(LIST).json()["count"] == 0
        assert api(user).get(f"{LIST}{live.pk}/").status_code == 404
    assert api(stranger).get(LIST, {"model": deployed.model_id}).status_code == 400  # not a model they can see
