"""The audit admin: read-only for everyone, filters, object links without N+1, the last verification on show."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import signing, status
from audit.models import Checkpoint, Event
from audit.services import SystemActor, checkpoint_create, record_event
from audit.verify import Verification, verify_log
from models_registry import services
from tests.audit.test_log import _without_triggers

pytestmark = pytest.mark.django_db

EVENTS = "/admin/audit/event/"
CHECKPOINTS = "/admin/audit/checkpoint/"


@pytest.fixture(autouse=True)
def _no_recorded_verification():
    # The status lives in the cache (per test process) and a file (per test, see conftest).
    cache.delete(status.CACHE_KEY)
    yield
    cache.delete(status.CACHE_KEY)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "correct-horse-battery")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _event(**fields) -> Event:
    with transaction.atomic():
        return record_event(actor=fields.pop("actor", SystemActor("test")), **fields)


def _shown(response) -> list[int]:
    return [e.seq for e in response.context["cl"].result_list]


def _banner(response) -> str:
    return response.context["audit_status"]["text"]


# --- verification status ---------------------------------------------------------------


def test_changelist_says_not_verified_yet(superuser):
    response = _client(superuser).get(EVENTS)
    assert response.status_code == 200
    assert _banner(response).startswith("Not verified yet")
    assert response.context["audit_status"]["level"] == "warning"
    assert b"Not verified yet" in response.content


def test_changelist_shows_the_last_verification_and_what_was_appended_since(superuser, make_model):
    make_model()
    client = _client(superuser)  # logging in may itself be audited: before the verification
    recorded = status.run_verification()
    result = verify_log()
    assert recorded.ok
    page = client.get(EVENTS)
    text = _banner(page)
    assert text.startswith(f"Verified: {result.size} events, root {result.root}, at ")
    assert "appended since" not in text
    assert page.context["audit_status"]["level"] == "success"
    assert html.escape(text).encode() in page.content

    make_model(name="another")
    text = _banner(client.get(EVENTS))
    assert text.startswith(f"Verified: {result.size} events")
    assert "1 event appended since, not yet verified" in text


def test_changelist_shows_the_first_bad_seq_after_tampering(superuser, make_model):
    make_model()
    target = Event.objects.order_by("seq").values_list("seq", flat=True)[1]
    _without_triggers(f"UPDATE audit_event SET reason = 'rewritten' WHERE seq = {target}")
    recorded = status.run_verification()
    assert not recorded.ok
    page = _client(superuser).get(EVENTS)
    assert _banner(page).startswith(f"FAILED: first bad seq {target}")
    assert page.context["audit_status"]["level"] == "error"
    assert f"FAILED: first bad seq {target}".encode() in page.content
    assert page.context["audit_status"]["problems"]


def test_the_newest_record_wins_and_survives_a_cold_cache(superuser):
    old = Verification(size=3, root="ab" * 32)
    status.record(old, checked_at=timezone.now() - dt.timedelta(hours=1), duration_seconds=1)
    bad = Verification(size=0)
    bad.fail(2, "altered")
    status.record(bad, checked_at=timezone.now(), duration_seconds=1)
    assert status.last_verification().first_bad_seq == 2
    # Another process (a command) with its own local-memory cache: the file still has it.
    cache.delete(status.CACHE_KEY)
    assert status.last_verification().first_bad_seq == 2


def test_a_verifier_that_crashes_is_recorded_as_a_failure(superuser, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(status, "verify_log", boom)
    recorded = status.run_verification()
    assert not recorded.ok
    assert _banner(_client(superuser).get(EVENTS)).startswith("FAILED: verification could not finish")


def test_verify_now_runs_and_records_a_verification(superuser, make_model):
    make_model()
    client = _client(superuser)
    assert client.get(f"{EVENTS}verify/").status_code == 405
    response = client.post(f"{EVENTS}verify/")
    assert response.status_code == 302
    assert response["Location"] == EVENTS
    assert status.last_verification().size == verify_log().size
    assert _banner(client.get(EVENTS)).startswith("Verified:")


def test_verify_now_needs_the_audit_permission(owner):
    response = _client(owner).post(f"{EVENTS}verify/")
    assert response.status_code == 302
    assert status.last_verification() is None


# --- who may see it --------------------------------------------------------------------------


def test_compliance_officer_sees_the_log_and_an_owner_does_not(compliance, owner, make_model):
    make_model()
    page = _client(compliance).get(EVENTS)
    assert page.status_code == 200
    assert page.context["cl"].result_count == Event.objects.count()
    assert _client(owner).get(EVENTS).status_code == 403


# --- links -------------------------------------------------------------------------------------


def test_rows_link_to_their_objects_admin_page_where_it_still_exists(superuser, make_model, make_version):
    version = make_version()
    model = version.model
    gone = _event(action="model.created", object_type="models_registry.model", object_id=999999, after={})
    unlinked = _event(action="test.event", object_type="x", object_id=1)
    page = _client(superuser).get(EVENTS, {"all": ""})
    body = page.content.decode()
    assert f'href="/admin/models_registry/model/{model.pk}/change/"' in body
    assert f'href="/admin/models_registry/modelversion/{version.pk}/change/"' in body
    assert "/admin/models_registry/model/999999/change/" not in body
    rows = {e.seq: e for e in page.context["cl"].result_list}
    assert rows[gone.seq].admin_object_url is None
    assert rows[unlinked.seq].admin_object_url is None
    # Each object id links to that object's history in the log.
    assert f"?object_type=models_registry.model&amp;object_id={model.pk}" in body


def _changelist_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(EVENTS)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_changelist_query_count_does_not_grow_with_rows(superuser, make_model, make_version, make_dataset):
    client = _client(superuser)
    make_version(model=make_model(name="m0"))
    make_dataset(name="d0")
    status.run_verification()
    few = _changelist_queries(client)
    for i in range(1, 15):
        make_version(model=make_model(name=f"m{i}"))
        make_dataset(name=f"d{i}")
    many = _changelist_queries(client)
    assert Event.objects.count() > 40
    # One existence query per object type on the page, never one per row.
    assert many == few


def test_changelist_queries_are_bounded(superuser, make_model, make_version, django_assert_max_num_queries):
    for i in range(10):
        make_version(model=make_model(name=f"m{i}"))
    status.run_verification()
    client = _client(superuser)
    with django_assert_max_num_queries(20):
        response = client.get(EVENTS)
    assert len(response.context["cl"].result_list) > 20


# --- filters ---------------------------------------------------------------------------------


def test_filters_by_actor_object_action_and_date(superuser, owner, make_model):
    model = make_model()
    services.model_update(actor=owner, model=model, changes={"description": "Changed."}, reason="clarify")
    other = make_model(name="other")
    system = _event(action="test.event", object_type="x", object_id=1)
    client = _client(superuser)
    owners = set(Event.objects.filter(actor=owner).values_list("seq", flat=True))

    assert set(_shown(client.get(EVENTS, {"actor": owner.username}))) == owners
    assert set(_shown(client.get(EVENTS, {"actor": str(owner.pk)}))) == owners
    assert _shown(client.get(EVENTS, {"actor": "system:test"})) == [system.seq]

    about_model = client.get(EVENTS, {"object_type": "models_registry.model", "object_id": str(model.pk)})
    assert {Event.objects.get(seq=s).action for s in _shown(about_model)} == {"model.created", "model.updated"}
    assert other.pk not in {int(Event.objects.get(seq=s).object_id) for s in _shown(about_model)}

    updated = _shown(client.get(EVENTS, {"action": "model.updated"}))
    assert [Event.objects.get(seq=s).object_id for s in updated] == [str(model.pk)]

    # The date filter's own links ("Today", "Past 7 days", ...), as the page offers them.
    date_spec = next(f for f in client.get(EVENTS).context["cl"].filter_specs if f.title == "timestamp")
    links = {c["display"]: c["query_string"] for c in date_spec.choices(client.get(EVENTS).context["cl"])}
    today = client.get(f"{EVENTS}{links['Today']}")
    assert sorted(_shown(today)) == sorted(Event.objects.values_list("seq", flat=True))
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    assert _shown(client.get(EVENTS, {"timestamp__gte": f"{tomorrow} 00:00:00+00:00"})) == []
    # The filters are offered on the page.
    titles = [spec.title for spec in client.get(EVENTS).context["cl"].filter_specs]
    assert {"actor", "action", "object type", "object id", "timestamp"} <= set(titles)


# --- change view -------------------------------------------------------------------------------


def test_change_view_shows_before_after_as_json_and_the_diff(superuser, owner, make_model):
    model = make_model()
    services.model_update(actor=owner, model=model, changes={"description": "Changed."}, reason="clarify")
    event = Event.objects.get(action="model.updated")
    page = _client(superuser).get(f"{EVENTS}{event.seq}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "<pre" in body
    assert "&quot;description&quot;: &quot;Changed.&quot;" in body  # pretty JSON, indented, escaped
    assert "<th>description</th>" in body  # the diff names the changed field
    assert event.entry_hash in body
    assert f'href="/admin/models_registry/model/{model.pk}/change/"' in body
    assert f"/api/audit/proofs/inclusion/?seq={event.seq}" in body
    # Nothing to save on this page.
    assert 'name="_save"' not in body


# --- read-only, even for a superuser ---------------------------------------------------------


@pytest.mark.parametrize(("model", "url"), [(Event, EVENTS), (Checkpoint, CHECKPOINTS)])
def test_admin_refuses_add_change_and_delete_even_to_a_superuser(superuser, make_model, model, url):
    make_model()
    signing.generate_key_file()
    checkpoint_create(actor=SystemActor("test"))
    pk = model.objects.order_by("pk").values_list("pk", flat=True).first()
    client = _client(superuser)
    before = (Event.objects.count(), Checkpoint.objects.count())

    assert client.get(f"{url}add/").status_code == 403
    assert client.post(f"{url}add/", {}).status_code == 403
    assert client.post(f"{url}{pk}/change/", {"reason": "rewritten"}).status_code == 403
    assert client.get(f"{url}{pk}/delete/").status_code == 403
    assert client.post(f"{url}{pk}/delete/", {"post": "yes"}).status_code == 403
    changelist = client.get(url)
    assert changelist.status_code == 200
    assert "delete_selected" not in (changelist.context["cl"].model_admin.get_actions(changelist.wsgi_request))
    client.post(url, {"action": "delete_selected", "_selected_action": [pk], "post": "yes"})

    request = RequestFactory().get(url)
    request.user = superuser
    model_admin = admin.site.get_model_admin(model)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)
    assert (Event.objects.count(), Checkpoint.objects.count()) == before
    assert model.objects.filter(pk=pk).exists()


def test_checkpoint_admin_lists_checkpoints(superuser, make_model):
    make_model()
    signing.generate_key_file()
    checkpoint = checkpoint_create(actor=SystemActor("test"))
    page = _client(superuser).get(CHECKPOINTS)
    assert page.status_code == 200
    assert checkpoint.root_hash in page.content.decode()
    detail = _client(superuser).get(f"{CHECKPOINTS}{checkpoint.pk}/change/")
    assert detail.status_code == 200
    assert checkpoint.signature in detail.content.decode()
