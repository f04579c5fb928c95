"""The access review: who reaches what and why, exactly as the selectors decide, in a fixed number of queries."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from audit.models import Event
from audit.services import SystemActor
from governance import access_review as review_module
from governance import services as governance_services
from governance.access_review import CSV_HEADER, REVIEW_ACTION, access_review
from governance.roles import Role
from models_registry import selectors
from models_registry import services as registry_services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGE = "/admin/access-review/"
TESTS = SystemActor("tests")
# The review's whole cost: users, roles, group and user permissions, models, versions, the
# three grant tables, engagements, datasets, grant events. The same for any world size.
MAX_QUERIES = 12


@dataclass
class World:
    users: dict[str, Any]
    models: dict[str, Any]
    datasets: dict[str, Any]
    engagements: dict[str, Any]


def _days(n: int) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=n)


def _engage(compliance, regulator, models, *, start: int, end: int, authority: str = "PRA"):
    return registry_services.engagement_create(
        actor=compliance,
        regulator=regulator,
        authority=authority,
        purpose="supervisory review",
        starts_at=_days(start),
        ends_at=_days(end),
        models=models,
    )


@pytest.fixture
def world(desk, other_desk, owner, validator, outsider, compliance, make_model, make_dataset, make_version) -> World:
    """Several roles, object grants, desk grants, engagements active/expired/revoked/future,
    datasets of all four classifications, an inactive auditor and an inactive superuser."""
    User = get_user_model()
    otto = UserFactory(username="otto", roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER])
    devon = UserFactory(username="devon", roles=[Role.MODEL_DEVELOPER])
    dana = UserFactory(username="dana", roles=[Role.VALIDATOR])
    ivan = UserFactory(username="ivan", roles=[Role.INTERNAL_AUDITOR], is_active=False)
    nadia = UserFactory(username="nadia", roles=[Role.ADMINISTRATOR, Role.RISK_MANAGER])
    rita = UserFactory(username="rita", roles=[Role.REGULATOR])
    root = User.objects.create_superuser("root", "root@example.com", "correct-horse-battery")
    ghost = User.objects.create_superuser("ghost", "ghost@example.com", "correct-horse-battery", is_active=False)
    for user, user_desk in ((owner, desk), (devon, desk), (otto, other_desk), (nadia, other_desk), (dana, desk)):
        governance_services.membership_set(actor=TESTS, user=user, desk=user_desk)

    eq_direction = make_model(name="eq-direction")
    eq_vol = make_model(name="eq-vol")
    curve = make_model(name="rates-curve", desk=other_desk, owner=otto, actor=otto)
    carry = make_model(name="rates-carry", desk=other_desk, owner=otto, actor=otto)
    make_version(model=eq_direction, version="1.0.0")
    # devon builds a version with a change grant, which is then taken away: he still sees
    # the model, as the developer of one of its versions.
    registry_services.model_access_grant(actor=owner, user=devon, model=eq_direction, permission="change_model")
    make_version(model=eq_direction, version="1.1.0", actor=devon)
    registry_services.model_access_revoke(actor=owner, user=devon, model=eq_direction, permission="change_model")
    make_version(model=curve, version="2.0.0")

    registry_services.validation_assign(actor=compliance, model=eq_vol, validator=validator)
    registry_services.model_access_grant(actor=otto, user=outsider, model=carry, permission="view_model")
    governance_services.desk_access_grant(actor=TESTS, user=dana, desk=other_desk, permission="view_desk_models")
    # A change grant on a desk lets its holder see the desk's models too.
    governance_services.desk_access_grant(actor=TESTS, user=devon, desk=other_desk, permission="change_desk_models")

    active = _engage(compliance, rita, [eq_direction], start=-1, end=30)
    expired = _engage(compliance, rita, [curve], start=-60, end=-30, authority="BaFin")
    revoked = _engage(compliance, rita, [eq_vol], start=-1, end=30)
    registry_services.engagement_revoke(actor=compliance, engagement=revoked, reason="inspection closed")
    future = _engage(compliance, rita, [carry], start=10, end=40)

    datasets = {
        "public": make_dataset(name="prices-public", classification="public"),
        "internal": make_dataset(name="prices-internal", classification="internal", owner=otto, actor=otto),
        "conf-eq": make_dataset(name="book-equities", classification="confidential", desk=desk),
        "conf-rt": make_dataset(
            name="book-rates", classification="confidential", desk=other_desk, owner=otto, actor=otto
        ),
        "conf-none": make_dataset(name="book-orphan", classification="confidential", owner=otto, actor=otto),
        "restricted": make_dataset(name="client-positions", classification="restricted", desk=desk),
    }
    registry_services.dataset_access_grant(
        actor=owner, user=validator, dataset=datasets["restricted"], permission="view_dataset"
    )
    registry_services.dataset_access_grant(
        actor=otto, user=outsider, dataset=datasets["conf-rt"], permission="change_dataset"
    )
    users = {
        u.username: u
        for u in (owner, validator, outsider, compliance, otto, devon, dana, ivan, nadia, rita, root, ghost)
    }
    return World(
        users=users,
        models={"eq-direction": eq_direction, "eq-vol": eq_vol, "rates-curve": curve, "rates-carry": carry},
        datasets=datasets,
        engagements={"active": active, "expired": expired, "revoked": revoked, "future": future},
    )


def _grow(world: World, make_model, make_dataset, make_version, *, n: int) -> None:
    """More of everything: models with versions, grants, desk grants, datasets, engagements, users."""
    users = world.users
    otto, outsider, rita, compliance = users["otto"], users["oscar"], users["rita"], users["chloe"]
    rates = world.models["rates-curve"].desk
    for i in range(n):
        extra_user = UserFactory(username=f"extra{i}", roles=[Role.MODEL_DEVELOPER])
        model = make_model(name=f"rates-extra-{i}", desk=rates, owner=otto, actor=otto)
        make_version(model=model, version="1.0.0")
        registry_services.model_access_grant(actor=otto, user=extra_user, model=model, permission="view_model")
        registry_services.model_access_grant(actor=otto, user=outsider, model=model, permission="change_model")
        governance_services.desk_access_grant(actor=TESTS, user=extra_user, desk=rates, permission="view_desk_models")
        dataset = make_dataset(
            name=f"extra-{i}",
            classification=["public", "internal", "confidential", "restricted"][i % 4],
            owner=otto,
            actor=otto,
        )
        registry_services.dataset_access_grant(actor=otto, user=extra_user, dataset=dataset, permission="view_dataset")
        _engage(compliance, rita, [model], start=-1 if i % 2 else -10, end=20 if i % 2 else -5)


def _review_by_user(review) -> dict[str, Any]:
    return {u.username: u for u in review.users}


def _assert_agrees_with_selectors(review) -> None:
    by_name = _review_by_user(review)
    User = get_user_model()
    assert set(by_name) == set(User.objects.values_list("username", flat=True))
    for user in User.objects.all():
        reviewed = by_name[user.username]
        expected = {
            "model": set(selectors.model_list(user=user).values_list("pk", flat=True)),
            "model_version": set(selectors.model_version_list(user=user).values_list("pk", flat=True)),
            "dataset": set(selectors.dataset_list(user=user).values_list("pk", flat=True)),
        }
        for kind, pks in expected.items():
            assert reviewed.reached_ids(kind) == pks, (user.username, kind)


@pytest.mark.parametrize("extra", [0, 6])
def test_review_reaches_exactly_what_the_selectors_return(world, make_model, make_dataset, make_version, extra):
    _grow(world, make_model, make_dataset, make_version, n=extra)
    _assert_agrees_with_selectors(access_review())


def test_the_world_is_varied_enough_to_mean_something(world):
    """Guards the agreement test: each rule is exercised, and slices differ."""
    by_name = _review_by_user(access_review())
    model_counts = {name: len(u.reached_ids("model")) for name, u in by_name.items()}
    assert model_counts["root"] == model_counts["ghost"] == model_counts["chloe"] == 4
    assert model_counts["ivan"] == 0  # inactive: his oversight role gives nothing
    assert 0 < model_counts["devon"] < 4 and 0 < model_counts["olivia"] < 4
    dataset_counts = {name: len(u.reached_ids("dataset")) for name, u in by_name.items()}
    assert dataset_counts["root"] == 6
    assert dataset_counts["chloe"] == 5  # every dataset up to confidential, not the restricted one
    assert {u.username for u in by_name.values() if u.ended} == {"rita"}


def _reasons(review, username: str, kind: str, name: str) -> list[str]:
    user = _review_by_user(review)[username]
    return next(list(r.reasons) for r in user.reach if r.kind == kind and r.name == name)


def test_each_reason_is_named(world):
    review = access_review()
    eng = world.engagements
    assert _reasons(review, "olivia", "model", "eq-direction") == ["owner", "version developer"]
    assert _reasons(review, "devon", "model", "eq-direction") == ["version developer"]
    devon = _review_by_user(review)["devon"]
    versions = next(r.versions for r in devon.reach if r.name == "eq-direction")
    assert {v.version: v.reasons for v in versions} == {
        "1.0.0": ("through its model",),
        "1.1.0": ("version developer",),
    }
    (validate,) = _reasons(review, "victor", "model", "eq-vol")
    assert validate.startswith("grant: validate_model (granted by chloe at ")
    (view,) = _reasons(review, "oscar", "model", "rates-carry")
    assert view.startswith("grant: view_model (granted by otto at ")
    (desk_grant,) = _reasons(review, "dana", "model", "rates-curve")
    assert desk_grant.startswith("desk grant: view_desk_models on Rates (granted by system:tests at ")
    ends = eng["active"].ends_at.astimezone(dt.UTC).isoformat(timespec="seconds")
    assert _reasons(review, "rita", "model", "eq-direction") == [f"engagement #{eng['active'].pk} PRA until {ends}"]
    assert _reasons(review, "chloe", "model", "rates-carry") == ["oversight role (compliance officer)"]
    assert _reasons(review, "nadia", "model", "rates-carry") == [
        "oversight role (administrator)",
        "oversight role (risk manager)",
    ]
    assert _reasons(review, "root", "model", "eq-vol") == ["superuser"]
    assert _reasons(review, "ghost", "dataset", "client-positions") == ["superuser"]

    assert _reasons(review, "victor", "dataset", "prices-public") == ["classification public with view_dataset"]
    assert _reasons(review, "victor", "dataset", "prices-internal") == ["classification internal with view_dataset"]
    (restricted,) = _reasons(review, "victor", "dataset", "client-positions")
    assert restricted.startswith("grant: view_dataset (granted by olivia at ")
    assert _reasons(review, "olivia", "dataset", "client-positions") == ["owner"]
    assert _reasons(review, "devon", "dataset", "book-equities") == ["desk member (confidential dataset of Equities)"]
    (change,) = _reasons(review, "oscar", "dataset", "book-rates")
    assert change.startswith("grant: change_dataset (granted by otto at ")
    assert _reasons(review, "nadia", "dataset", "book-rates") == [
        "oversight role (administrator)",
        "oversight role (risk manager)",
        "desk member (confidential dataset of Rates)",
    ]


def test_ended_engagements_are_listed_apart(world):
    rita = _review_by_user(access_review())["rita"]
    eng = world.engagements
    assert rita.reached_ids("model") == {world.models["eq-direction"].pk}
    ended = {e.engagement_id: e for e in rita.ended}
    assert set(ended) == {eng["expired"].pk, eng["revoked"].pk, eng["future"].pk}
    assert ended[eng["expired"].pk].status == "expired"
    assert ended[eng["expired"].pk].models == ((world.models["rates-curve"].pk, "rates-curve"),)
    assert ended[eng["revoked"].pk].status == "revoked"
    assert ended[eng["future"].pk].status == "not started"
    assert ended[eng["expired"].pk].reason.startswith(f"engagement #{eng['expired'].pk} BaFin ended ")


def test_users_who_reach_nothing_are_still_listed(world):
    UserFactory(username="newcomer", roles=[])
    review = access_review()
    newcomer = _review_by_user(review)["newcomer"]
    assert newcomer.reach == () and newcomer.ended == ()
    rows = [row for row in review_module.review_rows(review) if row[0] == "newcomer"]
    assert rows == [["newcomer", "yes", "yes", "no", "", "", "", "", "", "", ""]]


def test_queries_do_not_grow_with_the_world(
    world, make_model, make_dataset, make_version, django_assert_max_num_queries
):
    with django_assert_max_num_queries(MAX_QUERIES):
        small = access_review()
    _grow(world, make_model, make_dataset, make_version, n=8)
    with django_assert_max_num_queries(MAX_QUERIES):
        large = access_review()
    assert len(large.users) == len(small.users) + 8
    assert large.counts()["models"] > small.counts()["models"] + 8
    assert large.counts()["datasets"] > small.counts()["datasets"] + 8
    with django_assert_max_num_queries(MAX_QUERIES):
        access_review(username="rita")


def test_review_of_one_user(world):
    review = access_review(username="rita")
    assert [u.username for u in review.users] == ["rita"]
    assert review.users[0].reached_ids("model") == {world.models["eq-direction"].pk}
    assert access_review(username="nobody").users == ()


# --- The command ---------------------------------------------------------------------------------


def _last_review_event() -> Event:
    return Event.objects.filter(action=REVIEW_ACTION).order_by("-seq").first()


def test_command_csv_one_row_per_user_object_reason(world):
    out = io.StringIO()
    call_command("access_review", stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == CSV_HEADER
    review = access_review()
    expected = {(u.username, r.kind, str(r.id), reason) for u in review.users for r in u.reach for reason in r.reasons}
    current = {(r["username"], r["kind"], r["object_id"], r["reason"]) for r in rows if r["access"] == "current"}
    assert {row for row in current if row[1] != "model_version"} == expected
    olivia = [r for r in rows if r["username"] == "olivia" and r["object_name"] == "eq-direction"]
    assert {r["reason"] for r in olivia} == {"owner", "version developer"}
    assert {r["roles"] for r in olivia} == {"model developer; model owner"}
    assert {r["desk"] for r in olivia} == {"Equities"}
    versions = [r for r in rows if r["username"] == "devon" and r["kind"] == "model_version"]
    assert {(r["object_name"], r["reason"]) for r in versions} == {
        ("eq-direction 1.0.0", "through its model"),
        ("eq-direction 1.1.0", "version developer"),
        ("rates-curve 2.0.0", "through its model"),  # his change grant on the rates desk
    }
    ended = [r for r in rows if r["username"] == "rita" and r["access"] != "current"]
    assert {r["access"] for r in ended} == {"expired", "revoked", "not started"}
    ivan = [r for r in rows if r["username"] == "ivan"]
    assert ivan == [
        dict(zip(CSV_HEADER, ["ivan", "no", "yes", "no", "internal auditor", "", "", "", "", "", ""], strict=True))
    ]
    event = _last_review_event()
    assert event.actor_label == "system:access_review"
    assert event.actor_id is None
    assert event.after["output"] == "csv"
    assert event.after["users"] == 12
    assert event.after["models"] == review.counts()["models"]
    assert "reach" not in json.dumps(event.after)


def test_command_json_document(world, tmp_path):
    target = tmp_path / "review.json"
    err = io.StringIO()
    call_command("access_review", "--format", "json", "--output", str(target), stderr=err)
    document = json.loads(target.read_text())
    generated = dt.datetime.fromisoformat(document["generated_at"])
    assert generated.utcoffset() == dt.timedelta(0)
    users = {u["username"]: u for u in document["users"]}
    assert len(users) == 12
    ghost = users["ghost"]
    assert ghost["flags"] == {"active": False, "staff": True, "superuser": True}
    olivia = users["olivia"]
    assert olivia["roles"] == ["model developer", "model owner"]
    assert olivia["desk"] == "Equities"
    model = next(r for r in olivia["reach"] if r["kind"] == "model" and r["name"] == "eq-direction")
    assert model["id"] == world.models["eq-direction"].pk
    assert model["reasons"] == ["owner", "version developer"]
    assert [v["version"] for v in model["versions"]] == ["1.0.0", "1.1.0"]
    assert {e["status"] for e in users["rita"]["expired_access"]} == {"expired", "revoked", "not started"}
    assert "written to" in err.getvalue()
    assert _last_review_event().after["output"] == "json"


def test_command_for_one_user(world):
    out = io.StringIO()
    call_command("access_review", "--format", "json", "--user", "rita", stdout=out)
    document = json.loads(out.getvalue())
    assert [u["username"] for u in document["users"]] == ["rita"]
    assert _last_review_event().after["username"] == "rita"
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("access_review", "--user", "nobody", stdout=io.StringIO())


# --- The admin page ------------------------------------------------------------------------------


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_oversight_sees_the_review_in_the_admin(world):
    compliance = world.users["chloe"]
    response = _client(compliance).get(PAGE, secure=True)
    assert response.status_code == 200
    shown = {(row["user"].username, row["kind"], row["name"]) for row in response.context["page"].object_list}
    assert ("rita", "model", "eq-direction") in shown
    assert ("olivia", "dataset", "client-positions") in shown
    body = response.content.decode()
    assert "Download CSV" in body
    assert "engagement #" in body
    event = _last_review_event()
    assert (event.actor_id, event.after["output"]) == (compliance.pk, "admin page")


def test_admin_filter_by_user_and_csv_download(world):
    client = _client(world.users["root"])
    response = client.get(PAGE, {"user": "rita"}, secure=True)
    assert {row["user"].username for row in response.context["page"].object_list} == {"rita"}
    assert "format=csv&amp;user=rita" in response.content.decode()
    download = client.get(PAGE, {"format": "csv", "user": "rita"}, secure=True)
    assert download["Content-Type"].startswith("text/csv")
    assert "attachment" in download["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert rows and {r["username"] for r in rows} == {"rita"}
    event = _last_review_event()
    assert (event.actor_label, event.after["output"], event.after["username"]) == ("root", "csv (admin)", "rita")


@pytest.mark.parametrize("username", ["oscar", "olivia", "victor", "rita"])
def test_the_review_is_forbidden_without_an_oversight_role(world, username):
    before = Event.objects.filter(action=REVIEW_ACTION).count()
    user = world.users[username]
    if not user.is_staff:  # pragma: no cover - every factory user is staff
        pytest.skip("not staff")
    assert _client(user).get(PAGE, secure=True).status_code == 403
    assert _client(user).get(PAGE, {"format": "csv"}, secure=True).status_code == 403
    assert Event.objects.filter(action=REVIEW_ACTION).count() == before


def test_anonymous_is_sent_to_the_login(db):
    response = Client().get(PAGE, secure=True)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_admin_index_links_the_review_for_oversight_only(world):
    assert "/admin/access-review/" in _client(world.users["chloe"]).get("/admin/", secure=True).content.decode()
    assert "/admin/access-review/" not in _client(world.users["olivia"]).get("/admin/", secure=True).content.decode()
