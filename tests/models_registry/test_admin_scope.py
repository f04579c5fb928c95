"""The admin shows each role its own slice, from the same selectors as the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from audit.services import SystemActor
from governance.roles import Role
from models_registry import services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
MODELS = "/admin/models_registry/model/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def two_models(make_model, owner):
    rival = UserFactory(username="rival-owner", roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER])
    return make_model(name="mine"), make_model(name="theirs", owner=rival, actor=SystemActor("tests"))


def test_an_owner_sees_and_changes_only_their_own_models(owner, two_models):
    mine, theirs = two_models
    client = _client(owner)
    listing = client.get(MODELS, secure=True).content.decode()
    assert "mine" in listing and "theirs" not in listing
    assert client.get(f"{MODELS}{mine.pk}/change/", secure=True).status_code == 200
    response = client.get(f"{MODELS}{theirs.pk}/change/", secure=True)
    assert response.status_code == 302  # "doesn't exist" redirect, as for an unknown id
    assert "theirs" not in response.content.decode()


def test_a_view_grant_shows_a_model_read_only(owner, two_models):
    _, theirs = two_models
    services.model_access_grant(actor=SystemActor("tests"), user=owner, model=theirs, permission="view_model")
    page = _client(owner).get(f"{MODELS}{theirs.pk}/change/", secure=True)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()  # no save button: view only


def test_a_regulator_sees_engaged_models_only_and_only_while_engaged(two_models, compliance):
    _, theirs = two_models
    regulator = UserFactory(username="reg-admin", roles=[Role.REGULATOR])
    client = _client(regulator)
    assert client.get(MODELS, secure=True).status_code == 403
    now = timezone.now()
    engagement = services.engagement_create(
        actor=compliance,
        regulator=regulator,
        authority="PRA",
        purpose="review",
        starts_at=now - dt.timedelta(days=1),
        ends_at=now + dt.timedelta(days=1),
        models=[theirs],
    )
    listing = client.get(MODELS, secure=True)
    assert listing.status_code == 200
    assert "theirs" in listing.content.decode() and "mine" not in listing.content.decode()
    assert 'name="_save"' not in client.get(f"{MODELS}{theirs.pk}/change/", secure=True).content.decode()
    services.engagement_revoke(actor=compliance, engagement=engagement, reason="review closed")
    assert client.get(MODELS, secure=True).status_code == 403


def test_a_compliance_officer_sees_every_model_but_cannot_change_them(compliance, two_models):
    client = _client(compliance)
    listing = client.get(MODELS, secure=True).content.decode()
    assert "mine" in listing and "theirs" in listing
    assert 'name="_save"' not in client.get(f"{MODELS}{two_models[0].pk}/change/", secure=True).content.decode()
