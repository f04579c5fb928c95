"""The trading permission's fast path (governance.permission_cache): a knox token the full path
has allowed for a model is answered from the cache, with the same bytes, and every change that
takes access away (token revoked or expired, user deactivated, role or grant removed) is refused
on the next request; the kill switch is seen at once through it too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from audit.scope import audited_change
from audit.services import SystemActor, record_event
from governance import permission_cache, services
from governance.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SYSTEM = SystemActor("tests")


def _url(ref) -> str:
    return f"/api/deployments/{ref}/permission"


@pytest.fixture
def gateway(deployed):
    """A trading-system service account that sees the model through a desk grant."""
    user = UserFactory(username="gateway", roles=[Role.TRADING_SYSTEM])
    services.desk_access_grant(actor=SYSTEM, user=user, desk=deployed.model.desk, permission="view_desk_models")
    return user


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def token(gateway):
    return services.token_issue(actor=SYSTEM, user=gateway)[1]


def _warm(client: APIClient, ref) -> None:
    assert client.get(_url(ref)).status_code == 200  # the full path, which remembers its yes


def test_a_remembered_reader_is_answered_without_a_query_and_byte_identical(deployed, token, django_assert_num_queries):
    client = _client(token)
    model = deployed.model
    for ref in (model.pk, model.name):
        full = client.get(_url(ref))
        with django_assert_num_queries(0):
            fast = client.get(_url(ref))
        assert fast.status_code == full.status_code == 200
        assert fast.content == full.content
        for header in ("Content-Type", "Vary", "Allow", "X-Frame-Options", "X-Content-Type-Options"):
            assert fast.get(header) == full.get(header), header
        assert "X-Request-ID" in fast
        assert fast.json()["allowed"] is True and fast.json()["phase"] == "shadow"
    # Another model reference is another decision: the full path decides it first.
    with django_assert_num_queries(0):
        assert client.get(_url(model.pk)).status_code == 200
    assert permission_cache.remembered_model_id(token, "no-such-model") is None


def test_what_the_fast_path_does_not_serve_goes_the_full_way(deployed, token, django_assert_max_num_queries):
    client = _client(token)
    ref = deployed.model_id
    _warm(client, ref)
    html = client.get(_url(ref), HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")  # DRF's browsable API
    assert client.head(_url(ref)).status_code == 200
    # Another token of the same user has its own decision.
    other = services.token_issue(actor=SYSTEM, user=deployed.model.owner)[1]
    assert permission_cache.remembered_model_id(other, str(ref)) is None


def test_a_revoked_token_is_refused_at_once(deployed, token, gateway, django_capture_on_commit_callbacks):
    from knox.models import AuthToken

    client = _client(token)
    _warm(client, deployed.model_id)
    with django_capture_on_commit_callbacks(execute=True):
        services.token_revoke_all(actor=SYSTEM, user=gateway, reason="Lost laptop.")
    assert not AuthToken.objects.filter(user=gateway).exists()
    assert client.get(_url(deployed.model_id)).status_code == 401


def test_a_deactivated_user_is_refused_at_once(deployed, token, gateway, django_capture_on_commit_callbacks):
    client = _client(token)
    _warm(client, deployed.model_id)
    with django_capture_on_commit_callbacks(execute=True), audited_change():
        gateway.is_active = False
        gateway.save(update_fields=["is_active"])
        record_event(actor=SYSTEM, action="test.user_deactivated", target=gateway, after={"is_active": False})
    assert client.get(_url(deployed.model_id)).status_code == 401


def test_a_removed_grant_is_404_at_once(deployed, token, gateway, django_capture_on_commit_callbacks):
    client = _client(token)
    model = deployed.model
    _warm(client, model.name)
    with django_capture_on_commit_callbacks(execute=True):
        services.desk_access_revoke(actor=SYSTEM, user=gateway, desk=model.desk, permission="view_desk_models")
    response = client.get(_url(model.name))
    assert response.status_code == 404
    assert response.json()["detail"] == f"no model {model.name!r} that you can see"


def test_a_removed_role_is_403_at_once(deployed, token, gateway, django_capture_on_commit_callbacks):
    client = _client(token)
    _warm(client, deployed.model_id)
    with django_capture_on_commit_callbacks(execute=True), audited_change():
        gateway.groups.clear()
        record_event(actor=SYSTEM, action="test.roles_removed", target=gateway, after={"groups": []})
    response = client.get(_url(deployed.model_id))
    assert response.status_code == 403
    assert "view_deployment" in response.json()["detail"]


def test_a_change_bumps_the_generation_again_when_it_commits(deployed, token, gateway):
    _warm(_client(token), deployed.model_id)
    before = permission_cache.generation()
    # Inside a transaction: bumped at once (reads in the same transaction) and once more on
    # commit (what other requests rely on); here the commit never comes.
    services.desk_access_revoke(actor=SYSTEM, user=gateway, desk=deployed.model.desk, permission="view_desk_models")
    assert permission_cache.generation() > before
    assert permission_cache.remembered_model_id(token, str(deployed.model_id)) is None


def test_the_on_commit_bump_is_registered(deployed, gateway, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        services.desk_access_revoke(actor=SYSTEM, user=gateway, desk=deployed.model.desk, permission="view_desk_models")
    assert permission_cache.bump_generation in callbacks


def test_a_decision_ends_with_the_ttl(deployed, gateway, monkeypatch):
    token = services.token_issue(actor=SYSTEM, user=gateway, ttl=timedelta(minutes=10))[1]
    _warm(_client(token), deployed.model_id)
    ref = str(deployed.model_id)
    assert permission_cache.remembered_model_id(token, ref) == deployed.model_id
    real = permission_cache.time.time
    # Past the permission TTL (2 s) the decision is gone, whatever the token's later expiry.
    monkeypatch.setattr(permission_cache.time, "time", lambda: real() + 3)
    assert permission_cache.remembered_model_id(token, ref) is None


def test_a_decision_never_outlives_a_token_expiring_before_the_ttl(deployed, gateway, settings, monkeypatch):
    settings.GOVERNANCE_TRADING_PERMISSION_TTL = 3600
    token = services.token_issue(actor=SYSTEM, user=gateway, ttl=timedelta(seconds=30))[1]
    _warm(_client(token), deployed.model_id)
    ref = str(deployed.model_id)
    real = permission_cache.time.time
    monkeypatch.setattr(permission_cache.time, "time", lambda: real() + 20)
    assert permission_cache.remembered_model_id(token, ref) == deployed.model_id
    monkeypatch.setattr(permission_cache.time, "time", lambda: real() + 31)
    assert permission_cache.remembered_model_id(token, ref) is None


def test_a_refusal_is_never_remembered(deployed, gateway, other_desk, django_capture_on_commit_callbacks):
    stranger = UserFactory(username="stranger-gw", roles=[Role.TRADING_SYSTEM])
    token = services.token_issue(actor=SYSTEM, user=stranger)[1]
    client = _client(token)
    assert client.get(_url(deployed.model_id)).status_code == 404
    assert permission_cache.remembered_model_id(token, str(deployed.model_id)) is None
    # Access given is seen at once: the next request takes the full path.
    with django_capture_on_commit_callbacks(execute=True):
        services.desk_access_grant(actor=SYSTEM, user=stranger, desk=deployed.model.desk, permission="view_desk_models")
    assert client.get(_url(deployed.model_id)).status_code == 200


def test_the_kill_switch_is_seen_at_once_through_the_fast_path(
    deployed, token, owner, api, django_capture_on_commit_callbacks, django_assert_num_queries
):
    client = _client(token)
    model = deployed.model
    _warm(client, model.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.kill_switch_engage(actor=SystemActor("monitoring"), model=model, reason="Accuracy drop.")
    fast = client.get(_url(model.pk))
    assert fast.json()["allowed"] is False
    assert fast.json()["reason"] == "kill switch engaged: Accuracy drop."
    # The fast path answered (the reader is still remembered) with the full path's bytes.
    with django_assert_num_queries(0):
        assert client.get(_url(model.pk)).content == fast.content
    assert api(owner).get(_url(model.pk)).content == fast.content


def test_a_direct_lifecycle_transition_is_seen_at_once_whatever_the_ttl(deployed, gateway, compliance, settings):
    """The TTL is a safety net: a version suspended or retired by a plain lifecycle
    transition (not a deployment service) is forgotten from the cache on commit."""
    from models_registry import services as registry

    settings.GOVERNANCE_TRADING_PERMISSION_TTL = 60
    client = APIClient()
    client.force_authenticate(gateway)
    assert client.get(_url(deployed.model_id)).json()["allowed"] is True
    registry.model_version_transition(
        actor=compliance, version=deployed, to_status="suspended", reason="Suspended pending a data incident review."
    )
    answer = client.get(_url(deployed.model_id)).json()
    assert answer["allowed"] is False and "suspended" in answer["reason"]
