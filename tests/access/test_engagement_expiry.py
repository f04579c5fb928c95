"""Regulators see what an engagement shares between its start and its end, until it is revoked,
and never anything else. The clock is moved with time-machine; the selectors read it on every
request, so nothing has to be recomputed when an engagement starts or ends."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from governance.roles import Role
from models_registry import services
from tests.access.world import World
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _view(client, world: World) -> dict[str, object]:
    """What the regulator reaches: each model and version by id, and the lists."""
    seen: dict[str, object] = {}
    for key, model in world.models.items():
        seen[f"model:{key}"] = client.get(f"/api/models/{model.pk}/").status_code
    for key, version in world.versions.items():
        seen[f"version:{key}"] = client.get(f"/api/versions/{version.pk}/").status_code
    models = client.get("/api/models/").json()
    versions = client.get("/api/versions/").json()
    datasets = client.get("/api/datasets/").json()
    seen["model list"] = (models["count"], sorted(row["id"] for row in models["results"]))
    seen["version list"] = (versions["count"], sorted(row["id"] for row in versions["results"]))
    seen["dataset list"] = (datasets["count"], datasets["results"])
    return seen


def _expected(world: World, *, engaged: bool) -> dict[str, object]:
    a_versions = sorted(v.pk for k, v in world.versions.items() if k.startswith("A"))
    return {
        **{f"model:{key}": 200 if engaged and key == "A" else 404 for key in world.models},
        **{f"version:{key}": 200 if engaged and key.startswith("A") else 404 for key in world.versions},
        "model list": (1, [world.models["A"].pk]) if engaged else (0, []),
        "version list": (len(a_versions), a_versions) if engaged else (0, []),
        "dataset list": (0, []),  # engagements share models, not the firm's data
    }


def test_the_engagement_window_opens_and_closes_access(world: World, api):
    regulator = UserFactory(username="reg-window", roles=[Role.REGULATOR])
    now = timezone.now()
    starts_at, ends_at = now + dt.timedelta(days=1), now + dt.timedelta(days=11)
    services.engagement_create(
        actor=world.users["compliance"],
        regulator=regulator,
        authority="BaFin",
        purpose="On-site inspection.",
        starts_at=starts_at,
        ends_at=ends_at,
        models=[world.models["A"]],
    )
    client = api(regulator)
    moments = {
        "now, before the start": (now, False),
        "a second before the start": (starts_at - dt.timedelta(seconds=1), False),
        "at the start": (starts_at, True),
        "mid-way": (starts_at + dt.timedelta(days=5), True),
        "a second before the end": (ends_at - dt.timedelta(seconds=1), True),
        "at the end": (ends_at, False),
        "a month later": (ends_at + dt.timedelta(days=30), False),
    }
    failures = {}
    for label, (moment, engaged) in moments.items():
        with time_machine.travel(moment, tick=False):
            seen = _view(client, world)
        if seen != (expected := _expected(world, engaged=engaged)):
            failures[label] = {k: (seen[k], expected[k]) for k in expected if seen[k] != expected[k]}
    assert not failures, failures


def test_revocation_ends_access_at_once_and_for_the_rest_of_the_window(world: World, api):
    regulator = world.users["reg_active"]
    client = api(regulator)
    assert _view(client, world) == _expected(world, engaged=True)

    services.engagement_revoke(
        actor=world.users["compliance"], engagement=world.engagements["reg_active"], reason="Inspection closed."
    )
    assert _view(client, world) == _expected(world, engaged=False)
    with time_machine.travel(timezone.now() + dt.timedelta(days=10), tick=False):
        assert _view(client, world) == _expected(world, engaged=False)


@pytest.mark.parametrize("key", ["reg_expired", "reg_revoked", "reg_none"])
def test_expired_revoked_or_no_engagement_sees_nothing(world: World, api, key):
    assert _view(api(world.users[key]), world) == _expected(world, engaged=False)


def test_an_engagement_of_another_regulator_opens_nothing_to_this_one(world: World, api):
    other = UserFactory(username="reg-other", roles=[Role.REGULATOR])
    services.engagement_create(
        actor=world.users["compliance"],
        regulator=other,
        authority="PRA",
        purpose="Review.",
        starts_at=timezone.now() - dt.timedelta(days=1),
        ends_at=timezone.now() + dt.timedelta(days=1),
        models=[world.models["B"]],
    )
    # reg_active still sees model A only; the other regulator model B only.
    assert _view(api(world.users["reg_active"]), world) == _expected(world, engaged=True)
    seen = _view(api(other), world)
    assert seen["model list"] == (1, [world.models["B"].pk])
    assert seen["model:A"] == 404
    assert seen["version:A1.0"] == 404
