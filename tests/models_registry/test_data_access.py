"""Reads and downloads of confidential and restricted datasets are audit events; denied attempts too."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client

from audit.models import Event
from audit.services import SystemActor
from governance import services as org_services
from governance.roles import Role
from models_registry import services
from tests.factories import PRICE_CSV, UserFactory

pytestmark = pytest.mark.django_db
DATASETS = "/api/datasets/"


@pytest.fixture
def classified(make_dataset, desk):
    return {
        level: make_dataset(name=f"{level}-prices", classification=level, desk=desk)
        for level in ("public", "internal", "confidential", "restricted")
    }


def _events(action: str, dataset) -> list[Event]:
    return list(Event.objects.filter(action=action, object_id=str(dataset.pk)))


def test_the_owner_reading_and_downloading_restricted_data_is_logged(api, owner, classified):
    client = api(owner)
    restricted = classified["restricted"]
    assert client.get(f"{DATASETS}{restricted.pk}/").status_code == 200
    response = client.get(f"{DATASETS}{restricted.pk}/download/")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == restricted.content_sha256 == response["X-Content-SHA256"]
    assert response.content == PRICE_CSV
    assert [e.actor_id for e in _events("dataset.read", restricted)] == [owner.pk]
    assert [e.actor_id for e in _events("dataset.download", restricted)] == [owner.pk]


def test_public_and_internal_reads_are_not_logged(api, owner, classified):
    for level in ("public", "internal"):
        assert api(owner).get(f"{DATASETS}{classified[level].pk}/download/").status_code == 200
        assert not Event.objects.filter(object_id=str(classified[level].pk), action__startswith="dataset.d").exists()


def test_a_denied_attempt_is_404_and_an_event(api, classified):
    developer = UserFactory(username="dev-elsewhere", roles=[Role.MODEL_DEVELOPER])
    client = api(developer)
    for level in ("confidential", "restricted"):
        dataset = classified[level]
        for url in (f"{DATASETS}{dataset.pk}/", f"{DATASETS}{dataset.pk}/download/"):
            response = client.get(url)
            assert response.status_code == 404
            assert dataset.name not in response.content.decode()
        denied = _events("dataset.access_denied", dataset)
        assert [e.after["attempted"] for e in denied] == ["read", "download"]
        assert all(e.actor_id == developer.pk for e in denied)


def test_desk_members_read_confidential_data_and_are_logged(api, classified, desk):
    member = UserFactory(username="desk-analyst", roles=[Role.MODEL_DEVELOPER])
    org_services.membership_set(actor=SystemActor("tests"), user=member, desk=desk)
    confidential = classified["confidential"]
    assert api(member).get(f"{DATASETS}{confidential.pk}/").status_code == 200
    assert api(member).get(f"{DATASETS}{classified['restricted'].pk}/").status_code == 404
    assert [e.actor_id for e in _events("dataset.read", confidential)] == [member.pk]


def test_a_grant_opens_restricted_data_and_its_revocation_closes_it(api, owner, classified):
    analyst = UserFactory(username="analyst", roles=[Role.MODEL_DEVELOPER])
    restricted = classified["restricted"]
    url = f"{DATASETS}{restricted.pk}/download/"
    assert api(analyst).get(url).status_code == 404
    services.dataset_access_grant(actor=owner, user=analyst, dataset=restricted, permission="view_dataset")
    assert api(analyst).get(url).status_code == 200
    services.dataset_access_revoke(actor=owner, user=analyst, dataset=restricted, permission="view_dataset")
    assert api(analyst).get(url).status_code == 404
    actions = [e.action for e in Event.objects.filter(object_id=str(restricted.pk)).order_by("seq")]
    assert actions[-3:] == ["dataset.access_denied", "dataset.download", "dataset.access_denied"]


def test_admin_change_view_of_restricted_data_is_logged_and_out_of_scope_is_refused(owner, classified):
    outsider = UserFactory(username="admin-outsider", roles=[Role.MODEL_DEVELOPER])
    restricted = classified["restricted"]
    url = f"/admin/models_registry/dataset/{restricted.pk}/change/"
    client = Client()
    client.force_login(owner)
    assert client.get(url, secure=True).status_code == 200
    client.force_login(outsider)
    response = client.get(url, secure=True)
    assert response.status_code in (302, 404)  # the admin redirects with "doesn't exist" or 404s
    assert restricted.name not in response.content.decode()
    assert [e.actor_id for e in _events("dataset.read", restricted)] == [owner.pk]
    assert [e.actor_id for e in _events("dataset.access_denied", restricted)] == [outsider.pk]
