"""The monitoring batches admin: scoped, read-only, nothing added, changed or deleted."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.services import SystemActor
from governance import services
from governance.monitoring_services import monitoring_ingest
from governance.roles import Role
from tests.factories import UserFactory
from tests.monitoring.conftest import samples

pytestmark = pytest.mark.django_db

LIST = "/admin/governance/monitoringbatch/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def batch(deployed, gateway):
    return monitoring_ingest(actor=gateway, model=deployed.model, batch_id="day-1", samples=samples(4)).batch


@pytest.fixture
def stranger(other_desk):
    user = UserFactory(username="sam", roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER])
    services.membership_set(actor=SystemActor("tests"), user=user, desk=other_desk)
    return user


def test_list_is_scoped_and_shows_the_counts(batch, owner, stranger):
    response = _client(owner).get(LIST)
    assert response.status_code == 200
    assert [obj.pk for obj in response.context["cl"].result_list] == [batch.pk]
    page = response.content.decode()
    assert "day-1" in page and "-482.00 USD" in page
    assert list(_client(stranger).get(LIST).context["cl"].result_list) == []
    assert _client(stranger).get(f"{LIST}{batch.pk}/change/").status_code == 302  # "does not exist"


def test_change_page_is_read_only_with_the_hash_and_audit_link(batch, owner):
    page = _client(owner).get(f"{LIST}{batch.pk}/change/").content.decode()
    assert batch.content_sha256 in page
    assert "audit events" in page
    assert 'name="_save"' not in page
    assert _client(owner).get(f"{LIST}add/").status_code == 403
    assert _client(owner).post(f"{LIST}{batch.pk}/delete/").status_code == 403


def test_without_view_deployment_there_is_no_page(batch, desk):
    developer = UserFactory(username="dev", roles=[Role.MODEL_DEVELOPER])
    services.desk_access_grant(actor=SystemActor("tests"), user=developer, desk=desk, permission="view_desk_models")
    assert _client(developer).get(LIST).status_code == 403
