"""IDOR probes: a user of desk A guessing the ids of other desks' objects (and ids past the end).

Every detail, update, transition and action URL must answer exactly as for an id that does
not exist (404, nothing of the object in the body), change nothing, and record nothing but
the denied dataset reads the data-access log is for. Where input names another object (a new
version's model, a version's datasets), an out-of-scope id reads as "does not exist", in the
same words as an id that does not exist.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Event
from models_registry.models import Dataset, Model, ModelVersion
from tests.access.world import World
from tests.factories import skops_classifier_bytes

pytestmark = pytest.mark.django_db

# Out of scope for each prober (desk A people): desk B's model and versions, the confidential
# dataset of desk B, and the restricted dataset each was not granted.
OUT_OF_SCOPE = {
    "owner": [
        "model:B",
        "version:B1.0",
        "version:B2.0",
        "version:B3.0",
        "dataset:B:confidential",
        "dataset:B:restricted",
    ],
    "developer": [
        "model:B",
        "version:B1.0",
        "version:B2.0",
        "version:B3.0",
        "dataset:B:confidential",
        "dataset:A:restricted",
    ],
}
KINDS = {"model": Model, "version": ModelVersion, "dataset": Dataset}
URLS = {"model": "/api/models/", "version": "/api/versions/", "dataset": "/api/datasets/"}
# (method, suffix, payload) per kind: every URL that names one object.
PROBES: dict[str, list[tuple[str, str, dict[str, Any] | None]]] = {
    "model": [("get", "", None), ("head", "", None), ("patch", "", {"description": "pwned"})],
    "version": [
        ("get", "", None),
        ("patch", "", {"code_commit": "abcdef1"}),
        ("post", "transition/", {"to": "in_development"}),
        ("post", "transition/", {"to": "validated"}),
        ("post", "transition/", {"to": "approved"}),
        ("post", "transition/", {"to": "retired"}),
    ],
    "dataset": [
        ("get", "", None),
        ("patch", "", {"description": "pwned", "classification": "public"}),
        ("get", "download/", None),
        ("post", "validate/", None),
    ],
}
# Answers that do not depend on the id at all, for any id: these must match too.
SAME_FOR_ANY_ID = [("delete", "", None), ("put", "", {"description": "pwned"}), ("options", "", None)]


def _secrets(obj: Any) -> list[str]:
    if isinstance(obj, ModelVersion):
        return [obj.model.name, obj.artifact_sha256]
    if isinstance(obj, Dataset):
        return [obj.name, obj.content_sha256, obj.storage_location]
    return [obj.name, obj.description]


def _state() -> dict[str, list[dict[str, Any]]]:
    return {name: list(kind.objects.order_by("pk").values()) for name, kind in KINDS.items()}


def _call(client, method: str, url: str, payload: dict[str, Any] | None):
    if payload is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, payload, format="json")


@pytest.mark.parametrize("prober", sorted(OUT_OF_SCOPE))
def test_guessed_ids_answer_as_ids_that_do_not_exist(world: World, api, prober):
    client = api(world.users[prober])
    objects = world.objects()
    before = _state()
    last_seq = Event.objects.order_by("-seq").values_list("seq", flat=True).first()

    failures = []
    for kind, kind_model in KINDS.items():
        top = kind_model.objects.order_by("-pk").values_list("pk", flat=True).first()
        missing = {pk: [] for pk in (top + 1, top + 2, top + 1000, 2**63)}
        guessed = {objects[key].pk: _secrets(objects[key]) for key in OUT_OF_SCOPE[prober] if key.startswith(kind)}
        for method, suffix, payload in PROBES[kind] + SAME_FOR_ANY_ID:
            reference = _call(client, method, f"{URLS[kind]}{top + 1}/{suffix}", payload)
            for pk, secrets in {**guessed, **missing}.items():
                response = _call(client, method, f"{URLS[kind]}{pk}/{suffix}", payload)
                body = response.content.decode(errors="replace")
                where = f"{method.upper()} {URLS[kind]}{pk}/{suffix}"
                if (method, suffix, payload) not in SAME_FOR_ANY_ID and response.status_code != 404:
                    failures.append(f"{where}: {response.status_code}, not 404")
                if (response.status_code, body) != (reference.status_code, reference.content.decode(errors="replace")):
                    failures.append(f"{where}: answers unlike an id that does not exist: {response.status_code} {body}")
                failures.extend(f"{where}: the answer contains {s!r}" for s in secrets if s and s in body)

    assert not failures, "\n".join(failures)
    assert _state() == before, "a probe changed an object"
    recorded = set(Event.objects.filter(seq__gt=last_seq or 0).values_list("action", flat=True))
    assert recorded <= {"dataset.access_denied"}, recorded


def _without(body: bytes, pk: int) -> str:
    return body.decode().replace(str(pk), "<id>")


def test_a_new_version_of_an_invisible_model_reads_as_one_that_does_not_exist(world: World, api):
    client = api(world.users["owner"])
    theirs = world.models["B"].pk
    nowhere = Model.objects.order_by("-pk").first().pk + 1
    answers = {}
    for pk in (theirs, nowhere):
        artifact = SimpleUploadedFile("m.skops", skops_classifier_bytes(), content_type="application/octet-stream")
        answers[pk] = client.post("/api/versions/", {"model": pk, "version": "9.0", "artifact": artifact})
    assert answers[theirs].status_code == answers[nowhere].status_code == 400
    assert _without(answers[theirs].content, theirs) == _without(answers[nowhere].content, nowhere)
    assert world.models["B"].name not in answers[theirs].content.decode()
    assert not ModelVersion.objects.filter(version="9.0").exists()


@pytest.mark.parametrize("field", ["training_dataset", "validation_dataset", "test_dataset"])
def test_naming_an_invisible_dataset_on_a_version_reads_as_one_that_does_not_exist(world: World, api, field):
    client = api(world.users["owner"])
    version = world.versions["A1.0"]
    theirs = world.datasets["B:restricted"].pk
    nowhere = Dataset.objects.order_by("-pk").first().pk + 1
    answers = {pk: client.patch(f"/api/versions/{version.pk}/", {field: pk}, format="json") for pk in (theirs, nowhere)}
    assert answers[theirs].status_code == answers[nowhere].status_code == 400
    assert _without(answers[theirs].content, theirs) == _without(answers[nowhere].content, nowhere)
    version.refresh_from_db()
    assert getattr(version, f"{field}_id") is None


@pytest.mark.parametrize("prober", sorted(OUT_OF_SCOPE))
def test_lists_aimed_at_other_desks_objects_show_and_count_none_of_them(world: World, api, prober):
    client = api(world.users[prober])
    objects = world.objects()
    hidden = {kind: {objects[k].pk for k in OUT_OF_SCOPE[prober] if k.startswith(f"{kind}:")} for kind in URLS}
    # Names only: every version has the same artifact and every dataset the same bytes here.
    names = {
        objects[key].model.name if key.startswith("version") else objects[key].name for key in OUT_OF_SCOPE[prober]
    }
    model_b = world.models["B"]
    queries = {
        "model": [{"search": model_b.name}, {"search": "secret description"}, {"desk": "rates"}, {"owner": "owner-b"}],
        "version": [{"model_name": model_b.name}, {"status": "validated"}, {"ordering": "-created_at"}],
        "dataset": [{"search": "secret"}, {"classification": "confidential"}, {"classification": "restricted"}],
    }
    for kind, params in queries.items():
        for query in params:
            body = client.get(URLS[kind], {**query, "page_size": 500}).json()
            ids = {row["id"] for row in body["results"]}
            assert body["count"] == len(ids), (kind, query, body["count"])
            assert not ids & hidden[kind], (kind, query)
            text = json.dumps(body)
            assert not [name for name in names if name in text], (kind, query)


def test_filtering_versions_by_an_invisible_model_reads_as_one_that_does_not_exist(world: World, api):
    client = api(world.users["owner"])
    theirs = world.models["B"].pk
    nowhere = Model.objects.order_by("-pk").first().pk + 1
    answers = {pk: client.get("/api/versions/", {"model": pk}) for pk in (theirs, nowhere)}
    assert answers[theirs].status_code == answers[nowhere].status_code
    assert _without(answers[theirs].content, theirs) == _without(answers[nowhere].content, nowhere)
    assert answers[theirs].status_code == 400
    # A visible model still filters.
    mine = client.get("/api/versions/", {"model": world.models["A"].pk}).json()
    assert {row["id"] for row in mine["results"]} == {world.versions[f"A{v}"].pk for v in ("1.0", "2.0", "3.0")}
