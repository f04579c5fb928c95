"""Logins and Django's own user and group admin write audit events."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse

from audit.models import Event
from audit.scope import UnauditedWriteError
from audit.services import SystemActor
from audit.verify import verify_log
from governance import services
from governance.roles import Role
from tests.factories import UserFactory

User = get_user_model()
pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery"


def test_a_successful_admin_login_is_an_event_and_stamps_last_login(client):
    user = UserFactory(username="lena")
    response = client.post(reverse("admin:login"), {"username": "lena", "password": PASSWORD}, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302
    event = Event.objects.get(action="auth.login_succeeded")
    assert (event.actor_id, event.object_id, event.client_address) == (user.pk, str(user.pk), "10.1.2.3")
    user.refresh_from_db()
    assert user.last_login is not None
    # Django's own last_login write is replaced, not duplicated as an unexplained update.
    assert not Event.objects.filter(action="auth.user.updated", object_id=str(user.pk), seq__gt=event.seq).exists()


def test_a_failed_login_is_an_event_naming_the_account_but_never_the_password(client):
    user = UserFactory(username="mallory-target")
    client.post(reverse("admin:login"), {"username": "mallory-target", "password": "guess-123"})
    client.post(reverse("admin:login"), {"username": "nobody-here", "password": "guess-456"})
    failed = list(Event.objects.filter(action="auth.login_failed").order_by("seq"))
    assert [e.after["username"] for e in failed] == ["mallory-target", "nobody-here"]
    assert [e.after["account_exists"] for e in failed] == [True, False]
    assert failed[0].object_id == str(user.pk) and failed[1].object_id == ""
    assert all(e.actor_label == "anonymous" for e in failed)
    assert "guess" not in str([(e.before, e.after, e.reason) for e in failed])
    assert verify_log().ok


def test_a_failed_api_token_login_is_an_event(client):
    UserFactory(username="apiuser")
    response = client.post(
        "/api/auth/token/", {"username": "apiuser", "password": "wrong-password"}, content_type="application/json"
    )
    assert response.status_code == 401
    event = Event.objects.get(action="auth.login_failed", after__username="apiuser")
    assert event.after["account_exists"] is True
    assert "wrong-password" not in str([event.before, event.after, event.reason])


def test_http_basic_authentication_is_not_accepted(client):
    """The API takes tokens (and admin sessions), not a password with every request."""
    UserFactory(username="apiuser")
    token = base64.b64encode(f"apiuser:{PASSWORD}".encode()).decode()
    response = client.get("/api/models/", HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_changing_a_users_roles_in_the_django_admin_is_recorded_with_the_admin_as_actor(client):
    admin = UserFactory(username="root", is_superuser=True)
    target = UserFactory(username="tina", roles=[Role.MODEL_DEVELOPER])
    validators = Group.objects.get(name=Role.VALIDATOR.value)
    client.force_login(admin)
    url = reverse("admin:auth_user_change", args=[target.pk])
    form = {
        "username": "tina",
        "first_name": "Tina",
        "last_name": "",
        "email": "tina@example.com",
        "is_active": "on",
        "is_staff": "on",
        "groups": [validators.pk],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    events = Event.objects.filter(object_type="auth.user", object_id=str(target.pk), actor_id=admin.pk)
    actions = set(events.values_list("action", flat=True))
    assert {"auth.user.updated", "auth.user.groups.added", "auth.user.groups.removed"} <= actions
    updated = events.get(action="auth.user.updated")
    assert updated.before["first_name"] == "" and updated.after["first_name"] == "Tina"
    assert verify_log().ok


def test_deleting_a_user_who_is_on_a_desk_outside_a_service_is_refused(desk):
    user = UserFactory(username="desk-member")
    services.membership_set(actor=SystemActor("tests"), user=user, desk=desk)
    with pytest.raises(UnauditedWriteError, match="Membership"), transaction.atomic():
        user.delete()
    assert User.objects.filter(pk=user.pk).exists()
