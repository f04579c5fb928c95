"""The audit API (/api/audit/): scoped, filtered, read-only events; checkpoints; proofs as the command prints them."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json

import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audit import merkle, signing
from audit.models import Event, Head
from audit.services import SystemActor, checkpoint_create, record_event
from audit.verify import verify_log
from governance import services as governance_services
from governance.roles import Role
from models_registry import services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

EVENTS = "/api/audit/events/"
CHECKPOINT = "/api/audit/checkpoints/latest/"
INCLUSION = "/api/audit/proofs/inclusion/"
CONSISTENCY = "/api/audit/proofs/consistency/"


@pytest.fixture
def auditor(db):
    return UserFactory(username="ivan", roles=[Role.INTERNAL_AUDITOR])


@pytest.fixture
def rival(db, desk):
    """Another model owner, on the same desk (models are registered on their owner's own desk)."""
    user = UserFactory(username="rita", roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER])
    governance_services.membership_set(actor=SystemActor("tests"), user=user, desk=desk)
    return user


@pytest.fixture
def dana(db):
    """Owns a model, a version's model and a dataset, but holds no role: the inventory selectors
    show her only what she owns (the model-owner role itself may view the whole inventory)."""
    return UserFactory(username="dana", roles=[])


@pytest.fixture
def inventory(owner, rival, dana, make_model, make_version, make_dataset):
    """Events about the owner's model, version and dataset, a model of the rival's, and dana's objects
    (registered for her by a job, and her version by the owner, so she acted on none of them)."""
    mine = make_model(name="mine")
    version = make_version(model=mine)
    dataset = make_dataset()
    theirs = make_model(name="theirs", owner=rival, actor=rival)
    danas = make_model(name="danas", owner=dana, actor=SystemActor("tests"))
    # The owner registers dana's version for her, which needs a change grant on her model.
    services.model_access_grant(actor=SystemActor("tests"), user=owner, model=danas, permission="change_model")
    return {
        "model": mine,
        "version": version,
        "dataset": dataset,
        "theirs": theirs,
        "dana_model": danas,
        "dana_version": make_version(model=danas, actor=owner),
        "dana_dataset": make_dataset(name="danas-prices", owner=dana, actor=SystemActor("tests")),
    }


def _system_event(**fields) -> Event:
    with transaction.atomic():
        return record_event(actor=fields.pop("actor", SystemActor("test")), **fields)


def _seqs(body) -> list[int]:
    return [e["seq"] for e in body["results"]]


def _all(client: APIClient, **params) -> list[dict]:
    body = client.get(EVENTS, {"page_size": 500, **params}).json()
    assert body["count"] == len(body["results"]), body
    return body["results"]


def _command(*args: str) -> dict:
    out = io.StringIO()
    call_command("audit_proof", *args, stdout=out)
    return json.loads(out.getvalue())


def _hex(values):
    return [bytes.fromhex(v) for v in values]


# --- authentication ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [EVENTS, f"{EVENTS}1/", CHECKPOINT, f"{INCLUSION}?seq=1", f"{CONSISTENCY}?first=1&second=1"],
)
def test_anonymous_is_401(api, url):
    response = api().get(url)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response


# --- scope ---------------------------------------------------------------------------


@pytest.mark.parametrize("role_user", ["compliance", "auditor"])
def test_auditors_see_every_event(api, inventory, role_user, request):
    user = request.getfixturevalue(role_user)
    _system_event(action="desk.touched", object_type="governance.desk", object_id=1)
    body = api(user).get(EVENTS, {"page_size": 500}).json()
    assert body["count"] == Event.objects.count()
    assert _seqs(body) == list(Event.objects.order_by("seq").values_list("seq", flat=True))


def test_owner_sees_only_events_about_own_objects(api, dana, inventory):
    events = _all(api(dana))
    about = {(e["object_type"], e["object_id"]) for e in events}
    assert about == {
        ("models_registry.model", str(inventory["dana_model"].pk)),
        ("models_registry.modelversion", str(inventory["dana_version"].pk)),
        ("models_registry.dataset", str(inventory["dana_dataset"].pk)),
    }
    expected = Event.objects.filter(
        Q(object_type="models_registry.model", object_id=str(inventory["dana_model"].pk))
        | Q(object_type="models_registry.modelversion", object_id=str(inventory["dana_version"].pk))
        | Q(object_type="models_registry.dataset", object_id=str(inventory["dana_dataset"].pk))
    )
    assert [e["seq"] for e in events] == list(expected.order_by("seq").values_list("seq", flat=True))
    # The count excludes everything else: other owners' objects, role syncs, checkpoints.
    assert api(dana).get(EVENTS).json()["count"] == expected.count() < Event.objects.count()
    other = Event.objects.get(object_type="models_registry.model", object_id=str(inventory["model"].pk))
    assert api(dana).get(f"{EVENTS}{other.seq}/").status_code == 404


def test_model_owner_role_sees_events_about_the_inventory_it_may_view(api, owner, inventory):
    # The model-owner role holds view_model/view_modelversion/view_dataset, so the inventory
    # selectors show it every model; its audit scope follows them, and no further.
    _system_event(action="desk.touched", object_type="governance.desk", object_id=1)
    types = {e["object_type"] for e in _all(api(owner))}
    assert types == {"models_registry.model", "models_registry.modelversion", "models_registry.dataset"}


def test_events_the_user_acted_on_are_in_scope_even_about_unseen_objects(api, outsider, inventory):
    mine = _system_event(actor=outsider, action="desk.touched", object_type="governance.desk", object_id=1)
    events = _all(api(outsider))
    assert [e["seq"] for e in events] == [mine.seq]


def test_a_validator_sees_events_about_assigned_models_but_not_desks_or_roles(api, validator, inventory):
    services.validation_assign(actor=SystemActor("tests"), model=inventory["theirs"], validator=validator)
    desk_event = _system_event(action="desk.touched", object_type="governance.desk", object_id=1)
    events = _all(api(validator))
    types = {e["object_type"] for e in events}
    assert types == {"models_registry.model", "models_registry.dataset"}
    assert desk_event.seq not in {e["seq"] for e in events}
    model_ids = {e["object_id"] for e in events if e["object_type"].endswith(".model")}
    assert model_ids == {str(inventory["theirs"].pk)}  # assigned to this one only


def test_outsider_sees_nothing_and_gets_404_for_a_specific_seq(api, outsider, compliance, inventory):
    client = api(outsider)
    body = client.get(EVENTS).json()
    assert body["count"] == 0
    assert body["results"] == []
    seq = Event.objects.filter(object_type="models_registry.model").values_list("seq", flat=True).first()
    assert client.get(f"{EVENTS}{seq}/").status_code == 404
    # 404 is scope, not absence: an auditor sees the same seq.
    assert api(compliance).get(f"{EVENTS}{seq}/").status_code == 200
    # Filters cannot widen the scope.
    assert client.get(EVENTS, {"seq_min": seq, "seq_max": seq}).json()["count"] == 0


def test_unknown_seq_is_404(api, compliance):
    assert api(compliance).get(f"{EVENTS}99999999/").status_code == 404
    assert api(compliance).get(f"{EVENTS}abc/").status_code == 404


# --- the event's fields --------------------------------------------------------------------


def test_event_detail_shows_every_field_hashes_and_object_link(api, owner, inventory):
    model = inventory["model"]
    event = Event.objects.get(object_type="models_registry.model", object_id=str(model.pk), action="model.created")
    client = api(owner)
    body = client.get(f"{EVENTS}{event.seq}/").json()
    assert set(body) == {
        "url",
        "seq",
        "timestamp",
        "actor",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "object_url",
        "before",
        "after",
        "reason",
        "request_id",
        "client_address",
        "policy_set_hash",
        "leaf_hash",
        "prev_hash",
        "entry_hash",
    }
    assert body["seq"] == event.seq
    assert body["actor"] == owner.pk
    assert body["actor_label"] == owner.username
    assert (body["leaf_hash"], body["prev_hash"], body["entry_hash"]) == (
        event.leaf_hash,
        event.prev_hash,
        event.entry_hash,
    )
    assert body["before"] is None
    assert body["after"]["name"] == "mine"
    assert body["url"] == f"http://testserver{EVENTS}{event.seq}/"
    assert body["object_url"] == f"http://testserver/api/models/{model.pk}/"
    assert client.get(body["object_url"]).json()["name"] == "mine"
    # Event timestamps are UTC.
    assert dt.datetime.fromisoformat(body["timestamp"]) == event.timestamp


def test_object_url_for_versions_and_datasets_and_none_for_other_types(api, compliance, inventory):
    urls = {(e["object_type"], e["object_id"]): e["object_url"] for e in _all(api(compliance))}
    version, dataset = inventory["version"].pk, inventory["dataset"].pk
    assert urls[("models_registry.modelversion", str(version))] == f"http://testserver/api/versions/{version}/"
    assert urls[("models_registry.dataset", str(dataset))] == f"http://testserver/api/datasets/{dataset}/"
    assert {url for (object_type, _), url in urls.items() if object_type == "auth.group"} == {None}


# --- filters -------------------------------------------------------------------------


def test_filters(api, compliance, owner, rival, inventory):
    client = api(compliance)
    by_owner_id = _all(client, actor=owner.pk)
    assert by_owner_id
    assert {e["actor_label"] for e in by_owner_id} == {owner.username}
    assert _all(client, actor=owner.username) == by_owner_id
    assert {e["actor_label"] for e in _all(client, actor="system:roles-sync")} == {"system:roles-sync"}

    created = _all(client, action="model.created")
    assert {e["object_id"] for e in created} == {str(inventory[k].pk) for k in ("model", "theirs", "dana_model")}

    datasets = _all(client, object_type="models_registry.dataset")
    assert {e["object_id"] for e in datasets} == {str(inventory[k].pk) for k in ("dataset", "dana_dataset")}

    theirs = _all(client, object_type="models_registry.model", object_id=inventory["theirs"].pk)
    assert [e["actor_label"] for e in theirs] == [rival.username]

    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))
    low, high = seqs[1], seqs[-2]
    assert [e["seq"] for e in _all(client, seq_min=low, seq_max=high)] == seqs[1:-1]
    assert [e["seq"] for e in _all(client, seq_min=high)] == seqs[-2:]

    last = Event.objects.order_by("-seq").first()
    after = _all(client, timestamp_after=last.timestamp.isoformat())
    assert [e["seq"] for e in after] == [s for s in seqs if Event.objects.get(seq=s).timestamp >= last.timestamp]
    before = _all(client, timestamp_before=(last.timestamp - dt.timedelta(days=3650)).isoformat())
    assert before == []

    newest_first = client.get(EVENTS, {"ordering": "-seq", "page_size": 2}).json()
    assert _seqs(newest_first) == seqs[::-1][:2]


def test_filters_keep_the_scope(api, dana, rival, inventory):
    assert _all(api(dana), actor=rival.username) == []
    assert _all(api(dana), object_type="models_registry.model", object_id=inventory["theirs"].pk) == []


@pytest.mark.parametrize("param", ["seq_min", "seq_max", "timestamp_after", "timestamp_before"])
def test_bad_filter_values_are_400_naming_the_filter(api, compliance, param):
    response = api(compliance).get(EVENTS, {param: "not-a-value"})
    assert response.status_code == 400
    assert param in response.json()


def test_numbers_beyond_64_bits_are_refused_or_match_nothing(api, compliance, outsider, inventory):
    huge = "9" * 25
    for user in (compliance, outsider):
        client = api(user)
        assert client.get(f"{EVENTS}{huge}/").status_code == 404
        assert client.get(EVENTS, {"actor": huge}).json()["count"] == 0
        response = client.get(EVENTS, {"seq_min": huge})
        assert response.status_code == 400
        assert "seq_min" in response.json()


def test_list_is_paginated_like_the_other_lists(api, compliance, inventory):
    body = api(compliance).get(EVENTS, {"page_size": 2}).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert len(body["results"]) == 2
    assert body["next"] is not None


# --- checkpoints ------------------------------------------------------------------------


def test_no_checkpoint_is_404(api, owner):
    assert api(owner).get(CHECKPOINT).status_code == 404


def test_latest_checkpoint_carries_what_a_recipient_needs_to_check_it(api, owner, inventory):
    signing.generate_key_file()
    checkpoint_create(actor=SystemActor("test"))
    latest = checkpoint_create(actor=SystemActor("test"))
    body = api(owner).get(CHECKPOINT).json()
    assert {k: body[k] for k in ("tree_size", "root_hash", "key_id", "signature")} == {
        "tree_size": latest.tree_size,
        "root_hash": latest.root_hash,
        "key_id": latest.key_id,
        "signature": latest.signature,
    }
    assert body["timestamp"].endswith("Z")
    # Check it the way an outside recipient would: only the response and the cryptography package.
    public_key = serialization.load_pem_public_key(body["public_key_pem"].encode())
    message = json.loads(body["signed_message"])
    assert message == {
        "origin": body["origin"],
        "tree_size": body["tree_size"],
        "root_hash": body["root_hash"],
        "timestamp": body["timestamp"],
    }
    public_key.verify(base64.b64decode(body["signature"]), body["signed_message"].encode())
    assert body["root_hash"] == verify_log().root
    # The signed line equals the checkpoint file's format.
    head = signing.SignedTreeHead(latest.tree_size, latest.root_hash, latest.timestamp, latest.key_id, latest.signature)
    assert {k: body[k] for k in head.as_json()} == head.as_json()


def test_checkpoint_signed_with_another_key_has_no_public_key(api, owner, settings, tmp_path, inventory):
    signing.generate_key_file()
    checkpoint_create(actor=SystemActor("test"))
    settings.GOVERNANCE_AUDIT_SIGNING_KEY_FILE = tmp_path / "rotated.pem"
    signing.generate_key_file()
    body = api(owner).get(CHECKPOINT).json()
    assert body["public_key_pem"] is None


# --- proofs --------------------------------------------------------------------------------


def test_inclusion_proofs_verify_and_equal_the_command(api, compliance, inventory):
    size = Head.objects.get().size
    client = api(compliance)
    for seq, tree_size in [(1, None), (size, None), (3, size - 1), (size // 2, size // 2 + 1)]:
        params = {"seq": seq} if tree_size is None else {"seq": seq, "tree_size": tree_size}
        response = client.get(INCLUSION, params)
        assert response.status_code == 200, response.content
        proof = response.json()
        args = ["inclusion", "--seq", str(seq)] + ([] if tree_size is None else ["--tree-size", str(tree_size)])
        assert proof == _command(*args)
        assert proof["tree_size"] == (tree_size or size)
        merkle.verify_inclusion(
            proof["leaf_index"],
            proof["tree_size"],
            bytes.fromhex(proof["leaf_hash"]),
            _hex(proof["proof"]),
            bytes.fromhex(proof["root_hash"]),
        )
        assert proof["leaf_hash"] == Event.objects.get(seq=seq).leaf_hash
    assert client.get(INCLUSION, {"seq": 1}).json()["root_hash"] == verify_log().root


def test_consistency_proofs_verify_and_equal_the_command(api, owner, inventory):
    size = Head.objects.get().size
    client = api(owner)  # consistency proofs reveal only tree hashes: any authenticated user
    for first, second in [(1, size), (size - 3, size), (size, size), (2, size - 1)]:
        response = client.get(CONSISTENCY, {"first": first, "second": second})
        assert response.status_code == 200, response.content
        proof = response.json()
        assert proof == _command("consistency", "--from", str(first), "--to", str(second))
        merkle.verify_consistency(
            first, second, bytes.fromhex(proof["first_root"]), bytes.fromhex(proof["second_root"]), _hex(proof["proof"])
        )


def test_inclusion_proof_is_404_for_a_seq_out_of_the_users_scope(api, dana, outsider, inventory):
    theirs = Event.objects.get(object_type="models_registry.model", object_id=str(inventory["theirs"].pk))
    hers = Event.objects.get(object_type="models_registry.model", object_id=str(inventory["dana_model"].pk))
    assert api(dana).get(INCLUSION, {"seq": theirs.seq}).status_code == 404
    assert api(outsider).get(INCLUSION, {"seq": hers.seq}).status_code == 404
    assert api(outsider).get(INCLUSION, {"seq": 10**6}).status_code == 404
    assert api(dana).get(INCLUSION, {"seq": hers.seq}).status_code == 200


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({}, "seq"),
        ({"seq": "abc"}, "seq"),
        ({"seq": "1.5"}, "seq"),
        ({"seq": 0}, "seq"),
        ({"seq": 10**6}, "seq"),
        ({"seq": 1, "tree_size": "x"}, "tree_size"),
        ({"seq": 1, "tree_size": 10**6}, "tree_size"),
        ({"seq": "LAST", "tree_size": 1}, "seq"),
        ({"seq": 10**25}, "seq"),
    ],
)
def test_bad_inclusion_parameters_are_400_naming_the_parameter(api, compliance, inventory, params, parameter):
    if params.get("seq") == "LAST":
        params = {**params, "seq": Head.objects.get().size}
    response = api(compliance).get(INCLUSION, params)
    assert response.status_code == 400, response.content
    assert list(response.json()) == [parameter]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"second": 2}, "first"),
        ({"first": 1}, "second"),
        ({"first": "a", "second": 2}, "first"),
        ({"first": 1, "second": "b"}, "second"),
        ({"first": 0, "second": 2}, "first"),
        ({"first": 3, "second": 2}, "first"),
        ({"first": 1, "second": 10**6}, "second"),
        ({"first": 1, "second": 10**25}, "second"),
    ],
)
def test_bad_consistency_parameters_are_400_naming_the_parameter(api, owner, inventory, params, parameter):
    response = api(owner).get(CONSISTENCY, params)
    assert response.status_code == 400, response.content
    assert list(response.json()) == [parameter]


def test_out_of_range_message_matches_the_command(api, compliance, inventory):
    from django.core.management import CommandError

    response = api(compliance).get(INCLUSION, {"seq": 1, "tree_size": 10**6})
    with pytest.raises(CommandError) as command_error:
        _command("inclusion", "--seq", "1", "--tree-size", str(10**6))
    assert response.json()["tree_size"] == [str(command_error.value)]


# --- read-only -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_write_methods_are_405(api, compliance, inventory, method):
    seq = Event.objects.values_list("seq", flat=True).first()
    before = (Event.objects.count(), Head.objects.get().size)
    client = api(compliance)
    for url in (EVENTS, f"{EVENTS}{seq}/", CHECKPOINT, f"{INCLUSION}?seq=1", f"{CONSISTENCY}?first=1&second=1"):
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 405, (method, url)
    assert (Event.objects.count(), Head.objects.get().size) == before


def test_openapi_schema_describes_the_audit_api_as_read_only(api):
    document = api().get("/api/schema/", {"format": "json"}).json()
    paths = {p: ops for p, ops in document["paths"].items() if p.startswith("/api/audit/")}
    assert set(paths) == {
        "/api/audit/events/",
        "/api/audit/events/{seq}/",
        "/api/audit/checkpoints/latest/",
        "/api/audit/proofs/inclusion/",
        "/api/audit/proofs/consistency/",
    }
    for operations in paths.values():
        assert set(operations) - {"parameters"} == {"get"}
    list_parameters = {p["name"] for p in paths["/api/audit/events/"]["get"]["parameters"]}
    assert {"actor", "action", "object_type", "object_id", "seq_min", "seq_max", "timestamp_after"} <= list_parameters
    inclusion = paths["/api/audit/proofs/inclusion/"]["get"]
    assert {p["name"]: p.get("required", False) for p in inclusion["parameters"]} == {"seq": True, "tree_size": False}
    schema = inclusion["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(document["components"]["schemas"][schema]["properties"]) == {
        "seq",
        "leaf_index",
        "tree_size",
        "leaf_hash",
        "root_hash",
        "proof",
    }


# --- query count ---------------------------------------------------------------------------


def _list_queries(user_pk: int) -> tuple[int, int]:
    # A fresh user object each time, so permission caches do not differ between requests.
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(pk=user_pk))
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(EVENTS)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()["count"]


@pytest.mark.parametrize("who", ["dana", "owner", "compliance"])
def test_list_query_count_does_not_grow_with_events(request, who, make_model, make_version, dana, owner):
    user = request.getfixturevalue(who)

    def danas_version(i: int) -> None:
        model = make_model(name=f"m{i}", owner=dana, actor=SystemActor("tests"))
        services.model_access_grant(actor=SystemActor("tests"), user=owner, model=model, permission="change_model")
        make_version(model=model, actor=owner)

    for i in range(2):
        danas_version(i)
    _list_queries(user.pk)  # warms the content-type cache that guardian's scope queries use
    few, few_count = _list_queries(user.pk)
    for i in range(2, 12):
        danas_version(i)
    many, many_count = _list_queries(user.pk)
    assert many_count > few_count
    assert many == few
    assert many <= 8
