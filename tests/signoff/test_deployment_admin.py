"""The deployments admin: a scoped, read-only list and change page showing the model's trading
permission; the kill switch, its lifting and rollback as buttons calling the services as the
logged-in user; refusals as messages that change nothing."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from audit.models import Event
from audit.services import SystemActor
from governance import selectors, services
from governance.models import Deployment
from governance.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = "/admin/governance/deployment/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _change(obj) -> str:
    return f"{LIST}{obj.pk}/change/"


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def rollbackable(deploy_newer) -> Deployment:
    """Version 1.1.0 deployed in shadow, naming the approved 1.0.0 as its rollback target."""
    return Deployment.objects.get(version=deploy_newer())


@pytest.fixture
def stranger(other_desk):
    user = UserFactory(username="sam", roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER])
    services.membership_set(actor=SystemActor("tests"), user=user, desk=other_desk)
    return user


def test_list_is_scoped_and_shows_the_columns(rollbackable, owner, stranger):
    response = _client(owner).get(LIST)
    assert response.status_code == 200
    assert [obj.pk for obj in response.context["cl"].result_list] == [rollbackable.pk]
    page = response.content.decode()
    assert "5,000,000.00 USD" in page and "NVDA" in page and "shadow" in page
    for query in ("?status__exact=active", "?phase=shadow", "?kill_switch_engaged__exact=0"):
        assert [o.pk for o in _client(owner).get(LIST + query).context["cl"].result_list] == [rollbackable.pk]
    assert _client(owner).get(LIST + "?status__exact=suspended").context["cl"].result_list.count() == 0
    # Outside the scope: not listed, and its page is not found.
    assert list(_client(stranger).get(LIST).context["cl"].result_list) == []
    assert _client(stranger).get(_change(rollbackable)).status_code == 302  # "does not exist" redirect


def test_change_page_shows_the_permission_target_and_buttons_by_permission(rollbackable, owner, compliance):
    page = _client(owner).get(_change(rollbackable)).content.decode()
    assert "deployed in phase shadow" in page  # the trading permission now
    assert "Switch off with the kill switch" in page  # the rollback plan
    assert "Pull kill switch" in page and "Roll back to 1.0.0" in page
    assert "Lift kill switch" not in page
    assert 'name="_save"' not in page  # read-only


def test_pull_lift_and_roll_back_through_the_buttons(
    rollbackable, owner, compliance, risk_manager, django_capture_on_commit_callbacks
):
    model_id = rollbackable.model_id
    assert selectors.trading_permission(model_id=model_id)["allowed"]  # cached now
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(owner).post(
            _change(rollbackable), {"_deployment": "engage", "deployment_reason": "Desk reports runaway orders."}
        )
    assert response.status_code == 302
    assert any("kill switch pulled" in m and "not allowed" in m for m in _messages(response))
    rollbackable.refresh_from_db()
    assert rollbackable.kill_switch_engaged and rollbackable.status == "suspended"
    assert not rollbackable.kill_drill  # the drill box was not ticked
    reason = selectors.trading_permission(model_id=model_id)["reason"]
    assert reason == "kill switch engaged: Desk reports runaway orders."

    # Only compliance sees (and may use) the lift button.
    assert "Lift kill switch" not in _client(owner).get(_change(rollbackable)).content.decode()
    page = _client(compliance).get(_change(rollbackable)).content.decode()
    assert "Lift kill switch" in page and "Pull kill switch" not in page
    response = _client(owner).post(_change(rollbackable), {"_deployment": "lift", "deployment_reason": "Fixed."})
    assert any("Nothing was changed" in m and "lift_killswitch" in m for m in _messages(response))
    rollbackable.refresh_from_db()
    assert rollbackable.kill_switch_engaged
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(compliance).post(
            _change(rollbackable), {"_deployment": "lift", "deployment_reason": "Root cause fixed."}
        )
    assert any("kill switch lifted" in m for m in _messages(response))
    rollbackable.refresh_from_db()
    assert not rollbackable.kill_switch_engaged and rollbackable.status == "suspended"

    # Roll back: the target's new deployment is where the admin goes next.
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(risk_manager).post(
            _change(rollbackable), {"_deployment": "rollback", "deployment_reason": "Accuracy dropped."}
        )
    restored = Deployment.objects.get(status="active")
    assert response.status_code == 302 and response["Location"] == _change(restored)
    assert any("rolled back" in m and "allowed" in m for m in _messages(response))
    assert restored.version.version == "1.0.0"
    rollbackable.refresh_from_db()
    assert rollbackable.status == "rolled_back"
    assert selectors.trading_permission(model_id=model_id)["version"] == "1.0.0"
    # The rolled-back deployment's page offers no buttons and refuses a posted one.
    page = _client(risk_manager).get(_change(rollbackable)).content.decode()
    assert "Roll back to" not in page and "Pull kill switch" not in page
    response = _client(risk_manager).post(
        _change(rollbackable), {"_deployment": "rollback", "deployment_reason": "Again."}
    )
    assert any("not live" in m for m in _messages(response))
    assert Deployment.objects.filter(status="active").get() == restored


def test_refusals_are_messages_and_change_nothing(rollbackable, owner):
    events = Event.objects.filter(object_type="governance.deployment").count()
    response = _client(owner).post(_change(rollbackable), {"_deployment": "engage", "deployment_reason": " "})
    assert any("Nothing was changed" in m and "reason is required" in m for m in _messages(response))
    response = _client(owner).post(_change(rollbackable), {"_deployment": "explode", "deployment_reason": "x"})
    assert any("Nothing was changed" in m for m in _messages(response))
    rollbackable.refresh_from_db()
    assert not rollbackable.kill_switch_engaged
    assert Event.objects.filter(object_type="governance.deployment").count() == events


def test_a_drill_through_the_button(rollbackable, owner):
    page = _client(owner).get(_change(rollbackable)).content.decode()
    assert 'name="deployment_drill"' in page
    response = _client(owner).post(
        _change(rollbackable),
        {"_deployment": "engage", "deployment_reason": "Quarterly kill switch test.", "deployment_drill": "on"},
    )
    assert response.status_code == 302
    rollbackable.refresh_from_db()
    assert rollbackable.kill_switch_engaged and rollbackable.kill_drill
