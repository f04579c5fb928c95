"""Granting, revoking, assigning validators and sharing with regulators in the admin: all through services."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import Event
from governance.roles import Role
from models_registry.models import Engagement, ModelGrant
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada", roles=[Role.ADMINISTRATOR], is_superuser=True)


def test_granting_and_revoking_in_the_admin_are_audited(admin_user, make_model):
    model = make_model()
    analyst = UserFactory(username="analyst", roles=[Role.MODEL_DEVELOPER])
    client = _client(admin_user)
    response = client.post(
        "/admin/models_registry/modelgrant/add/",
        {"user": analyst.pk, "content_object": model.pk, "grant_permission": "view_model"},
        secure=True,
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    grant = ModelGrant.objects.get(user=analyst)
    assert Event.objects.filter(action="access.granted", object_id=str(grant.pk), actor_id=admin_user.pk).exists()
    response = client.post(f"/admin/models_registry/modelgrant/{grant.pk}/delete/", {"post": "yes"}, secure=True)
    assert response.status_code == 302
    assert not ModelGrant.objects.filter(user=analyst).exists()
    assert Event.objects.filter(action="access.revoked", object_id=str(grant.pk)).exists()


def test_assigning_the_developer_as_validator_is_refused_in_the_admin(admin_user, make_model, owner):
    model = make_model()
    response = _client(admin_user).post(
        "/admin/models_registry/modelgrant/add/",
        {"user": owner.pk, "content_object": model.pk, "grant_permission": "validate_model"},
        secure=True,
        follow=True,
    )
    assert "SOD-5" in response.content.decode()
    assert not ModelGrant.objects.exists()
    assert Event.objects.filter(action="sod.refused", after__rule="SOD-5").exists()


def test_compliance_shares_models_with_a_regulator_and_ends_it(compliance, make_model):
    model = make_model()
    regulator = UserFactory(username="rex", roles=[Role.REGULATOR])
    client = _client(compliance)
    response = client.post(
        "/admin/models_registry/engagement/add/",
        {
            "regulator": regulator.pk,
            "authority": "FCA",
            "purpose": "Algorithmic trading review",
            "starts_at_0": "2026-01-01",
            "starts_at_1": "00:00:00",
            "ends_at_0": "2036-01-01",
            "ends_at_1": "00:00:00",
            "shared": [model.pk],
        },
        secure=True,
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    engagement = Engagement.objects.get()
    assert list(engagement.shared_models.all()) == [model]
    assert Event.objects.filter(action="engagement.created", actor_id=compliance.pk).exists()

    change = f"/admin/models_registry/engagement/{engagement.pk}/change/"
    form = client.get(change, secure=True)
    assert form.status_code == 200
    response = client.post(change, {"revocation_reason": "Review closed."}, secure=True)
    assert response.status_code == 302, response.content.decode()[:3000]
    engagement.refresh_from_db()
    assert engagement.revoked_at is not None
    assert Event.objects.get(action="engagement.revoked").reason == "Review closed."
