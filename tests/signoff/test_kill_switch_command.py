"""python manage.py kill_switch: pulls the switch as a system actor (the command and the OS
user) or as --user, lifts it as a compliance officer, rolls back; prints the deployment and the
trading permission; exit 0 done, 1 refused, 2 bad input or unknown model."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import Event
from governance import selectors
from governance.models import Deployment

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("kill_switch", *args, stdout=out)
    return out.getvalue()


def _fails(*args: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        _run(*args)
    return caught.value


def test_pulled_from_a_terminal_as_a_system_actor(deployed, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr("getpass.getuser", lambda: "ops-oncall")
    model = deployed.model
    assert selectors.trading_permission(model_id=model.pk)["allowed"]  # cached now
    with django_capture_on_commit_callbacks(execute=True):
        out = _run(model.name, "--reason", "Runaway orders on the desk.")
    assert f"{model.name}: kill switch engaged." in out
    assert "suspended (kill switch), kill switch engaged" in out
    assert "trading permission: NOT allowed (kill switch engaged: Runaway orders on the desk.)" in out
    assert "capital limit 5000000.00 USD, instruments NVDA" in out
    assert not selectors.trading_permission(model_id=model.pk)["allowed"]
    event = Event.objects.get(action="kill_switch.engaged")
    assert event.actor_id is None and event.actor_label == "system:manage.py kill_switch by ops-oncall"
    assert Deployment.objects.get().killed_by_label == "system:manage.py kill_switch by ops-oncall"


def test_as_a_user_and_lifted_by_compliance(deployed, owner, compliance, django_capture_on_commit_callbacks):
    model_id = str(deployed.model_id)
    with django_capture_on_commit_callbacks(execute=True):
        _run(model_id, "--reason", "Limit breach.", "--user", owner.username)
    assert Event.objects.get(action="kill_switch.engaged").actor_id == owner.pk
    error = _fails(model_id, "--reason", "Fixed.", "--user", owner.username, "--lift")
    assert error.returncode == 1 and "lift_killswitch" in str(error)
    assert Deployment.objects.get().kill_switch_engaged
    with django_capture_on_commit_callbacks(execute=True):
        out = _run(model_id, "--reason", "Root cause fixed.", "--user", compliance.username, "--lift")
    assert "kill switch lifted" in out and "kill switch not engaged" in out
    assert "NOT allowed (deployment suspended (version suspended))" in out


def test_rollback(approved_version, deploy_newer, monkeypatch, django_capture_on_commit_callbacks):
    newer = deploy_newer()
    with django_capture_on_commit_callbacks(execute=True):
        out = _run(newer.model.name, "--reason", "Accuracy dropped.", "--rollback")
    assert "rolled back" in out and f"version {approved_version.version}, phase shadow, active" in out
    assert "trading permission: allowed (deployed in phase shadow)" in out
    assert Deployment.objects.get(version=newer).status == "rolled_back"
    error = _fails(newer.model.name, "--reason", "Again.", "--rollback")
    assert error.returncode == 1 and "no rollback target" in str(error)


def test_refusals_and_bad_input(approved_version, owner):
    name = approved_version.model.name
    cases = [
        ((name, "--reason", "x"), 1, "no live deployment"),  # nothing to stop
        (("no-such-model", "--reason", "x"), 2, "no model 'no-such-model'"),
        (("987654", "--reason", "x"), 2, "no model"),
        ((name,), 2, "--reason is required"),
        ((name, "--reason", "   "), 2, "--reason is required"),
        ((name, "--reason", "x", "--lift"), 2, "--lift needs --user"),
        ((name, "--reason", "x", "--user", "nobody"), 2, "no active user 'nobody'"),
    ]
    for args, code, message in cases:
        error = _fails(*args)
        assert (error.returncode, message in str(error)) == (code, True), (args, str(error))
    assert not Event.objects.filter(action__startswith="kill_switch").exists()


def test_a_drill_from_the_terminal(deployed, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "ops-oncall")
    out = _run(deployed.model.name, "--reason", "Quarterly kill switch test.", "--drill")
    assert f"{deployed.model.name}: kill switch engaged (drill)." in out
    deployment = Deployment.objects.get()
    assert deployment.kill_switch_engaged and deployment.kill_drill
    assert Event.objects.get(action="kill_switch.engaged").after["kill_drill"] is True
    error = _fails(deployed.model.name, "--reason", "x", "--drill", "--lift", "--user", "chloe")
    assert "--drill" in str(error) and error.returncode == 2
