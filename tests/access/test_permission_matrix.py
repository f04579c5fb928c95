"""The permission matrix: every role by every object by every action, through the API.

The expected outcome of each cell is the table below, kept as data and written from the
rules (issue 5, ``models_registry/selectors.py``, ``governance/roles.py``), not from what the
code happens to do. The world it runs against is ``tests/access/world.py``.

Cells: ``in`` / ``--`` (the object is / is not in the role's list, which must count only what
it shows), an HTTP status, or ``SOD-n`` (403 refused by segregation-of-duties rule n, recorded
as a ``sod.refused`` event). The API answers 404 for an object outside the caller's scope,
403 for a visible object the caller may not change, 400 when a create names a model the
caller cannot see ("does not exist", as for an id that does not exist), 405 for DELETE,
which no endpoint offers, and 409 for a change of a version that is frozen after submission.

Each cell runs in a savepoint that is rolled back, so every cell sees the same world. Every
mismatch is collected and reported in one table.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from rest_framework.test import APIClient

from audit.models import Event
from models_registry.models import Dataset, Model, ModelVersion
from tests.access.world import VERSIONS, World
from tests.factories import PRICE_CSV, skops_classifier_bytes

pytestmark = pytest.mark.django_db

COLUMNS = {
    "own": "owner",
    "dev": "developer",
    "vAsg": "val_asg",
    "vUna": "val_una",
    "risk": "risk",
    "comp": "compliance",
    "aud": "auditor",
    "rAct": "reg_active",
    "rExp": "reg_expired",
    "rRev": "reg_revoked",
    "rNone": "reg_none",
    "adm": "admin",
}

# Rows: an object key (glob patterns allowed; ``model:new``, ``version:new-on-A`` and
# ``dataset:new`` are what a create makes) and an action. Versions: 1.0 is a draft (the
# transition tried is start development), 2.0 is submitted (validate), 3.0 is validated
# (approve; it was submitted by the administrator).
EXPECTED_TABLE = """
object                action      own  dev  vAsg vUna risk comp aud  rAct rExp rRev rNone adm
*                     delete      405  405  405  405  405  405  405  405  405  405  405   405

# Models. Owners change their own; oversight roles see all and change none; the developer's
# desk grant gives change scope, but the role holds no change_model permission. The
# administrator holds change_model but changes only what is theirs or granted to them.
model:new             create      201  403  403  403  403  403  403  403  403  403  403   201
model:A               list        in   in   in   --   in   in   in   in   --   --   --    in
model:A               retrieve    200  200  200  404  200  200  200  200  404  404  404   200
model:A               update      200  403  403  404  403  403  403  403  404  404  404   403
model:B               list        --   --   --   --   in   in   in   --   --   --   --    in
model:B               retrieve    404  404  404  404  200  200  200  404  404  404  404   200
model:B               update      404  404  404  404  403  403  403  404  404  404  404   403

# Versions follow their model. A create naming an invisible model is 400 "does not exist".
# Transitions need transition_modelversion and sight of the version, then segregation of duties:
# development (1.0: start) is for who may change the model (SOD-7: not validators, compliance
# or administrators); the validation outcome (2.0) for the assigned validator (SOD-4) who did
# not develop it (SOD-1); approval (3.0) for neither its developers (SOD-2), nor its submitter
# (SOD-3, the administrator), nor whoever validated it (SOD-6, the assigned validator).
version:new-on-A      create      201  201  403  400  403  403  403  403  400  400  400   403
version:new-on-B      create      400  400  400  400  403  403  403  400  400  400  400   403
version:A*            list        in   in   in   --   in   in   in   in   --   --   --    in
version:A*            retrieve    200  200  200  404  200  200  200  200  404  404  404   200
version:A1.0          update      200  200  403  404  403  403  403  403  404  404  404   403
version:A[23].0       update      409  409  403  404  403  403  403  403  404  404  404   403
version:A1.0          transition  200  403 SOD-7 404  403 SOD-7 403  403  404  404  404  SOD-7
version:A2.0          transition  SOD-1 403 200  404  403  SOD-4 403 403  404  404  404   SOD-4
version:A3.0          transition  SOD-2 403 SOD-6 404 403  200  403  403  404  404  404   SOD-3
version:B*            list        --   --   --   --   in   in   in   --   --   --   --    in
version:B*            retrieve    404  404  404  404  200  200  200  404  404  404  404   200
version:B*            update      404  404  404  404  403  403  403  404  404  404  404   403
version:B1.0          transition  404  404  404  404  403 SOD-7 403  404  404  404  404  SOD-7
version:B2.0          transition  404  404  404  404  403  SOD-4 403 404  404  404  404   SOD-4
version:B3.0          transition  404  404  404  404  403  200  403  404  404  404  404   SOD-3

# Datasets: public and internal to staff (regulators are not staff of the firm); confidential
# to its desk, oversight roles and grantees; restricted to its owner and grantees only. Changes:
# owner or change grant, with change_dataset. Running the rules (validate) stores a result: it
# needs validate_dataset (model owners, developers, validators) and sight of the dataset, so
# compliance, risk, audit and the administrator may not.
dataset:new           create      201  201  403  403  403  403  403  403  403  403  403   201
dataset:?:public      list        in   in   in   in   in   in   in   --   --   --   --    in
dataset:?:internal    list        in   in   in   in   in   in   in   --   --   --   --    in
dataset:?:public      retrieve    200  200  200  200  200  200  200  404  404  404  404   200
dataset:?:internal    retrieve    200  200  200  200  200  200  200  404  404  404  404   200
dataset:?:public      download    200  200  200  200  200  200  200  404  404  404  404   200
dataset:?:internal    download    200  200  200  200  200  200  200  404  404  404  404   200
dataset:?:public      validate    200  200  200  200  403  403  403  404  404  404  404   403
dataset:?:internal    validate    200  200  200  200  403  403  403  404  404  404  404   403
dataset:A:public      update      200  403  403  403  403  403  403  404  404  404  404   403
dataset:A:internal    update      200  403  403  403  403  403  403  404  404  404  404   403
dataset:B:public      update      403  403  403  403  403  403  403  404  404  404  404   403
dataset:B:internal    update      403  403  403  403  403  403  403  404  404  404  404   403

dataset:A:confidential list       in   in   in   --   in   in   in   --   --   --   --    in
dataset:A:confidential retrieve   200  200  200  404  200  200  200  404  404  404  404   200
dataset:A:confidential download   200  200  200  404  200  200  200  404  404  404  404   200
dataset:A:confidential update     200  403  403  404  403  403  403  404  404  404  404   403
dataset:A:confidential validate   200  200  200  404  403  403  403  404  404  404  404   403
dataset:B:confidential list       --   --   --   --   in   in   in   --   --   --   --    in
dataset:B:confidential retrieve   404  404  404  404  200  200  200  404  404  404  404   200
dataset:B:confidential download   404  404  404  404  200  200  200  404  404  404  404   200
dataset:B:confidential update     404  404  404  404  403  403  403  404  404  404  404   403
dataset:B:confidential validate   404  404  404  404  403  403  403  404  404  404  404   403

dataset:A:restricted  list        in   --   --   --   --   --   --   --   --   --   --    --
dataset:A:restricted  retrieve    200  404  404  404  404  404  404  404  404  404  404   404
dataset:A:restricted  download    200  404  404  404  404  404  404  404  404  404  404   404
dataset:A:restricted  update      200  404  404  404  404  404  404  404  404  404  404   404
dataset:A:restricted  validate    200  404  404  404  404  404  404  404  404  404  404   404
dataset:B:restricted  list        --   in   --   --   --   --   --   --   --   --   --    --
dataset:B:restricted  retrieve    404  200  404  404  404  404  404  404  404  404  404   404
dataset:B:restricted  download    404  200  404  404  404  404  404  404  404  404  404   404
dataset:B:restricted  update      404  403  404  404  404  404  404  404  404  404  404   404
dataset:B:restricted  validate    404  200  404  404  404  404  404  404  404  404  404   404
"""

# Cells where the code is known to differ from the table, each with the bug it shows. The test
# fails on any other mismatch, and also when one of these starts to match (remove it then).
# None now: read-only roles running dataset rules (validate) was the last, fixed with the
# validate_dataset permission.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}

ACTIONS = {
    "model": ("list", "retrieve", "update", "delete"),
    "version": ("list", "retrieve", "update", "transition", "delete"),
    "dataset": ("list", "retrieve", "update", "download", "validate", "delete"),
}
CREATES = ("model:new", "version:new-on-A", "version:new-on-B", "dataset:new")
WRITES = frozenset({"create", "update", "transition", "validate"})
URLS = {"model": "/api/models/", "version": "/api/versions/", "dataset": "/api/datasets/"}
KINDS = {"model": Model, "version": ModelVersion, "dataset": Dataset}


def parse_table(text: str, objects: list[str]) -> dict[tuple[str, str, str], str]:
    """(role, object, action) -> expected cell; every cell of the matrix exactly once."""
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    header = lines[0].split()
    assert header[:2] == ["object", "action"], header
    roles = [COLUMNS[column] for column in header[2:]]
    expected: dict[tuple[str, str, str], str] = {}
    for line in lines[1:]:
        pattern, action, *cells = line.split()
        assert len(cells) == len(roles), f"row {pattern} {action}: {len(cells)} cells for {len(roles)} roles"
        matched = [key for key in objects if fnmatch.fnmatchcase(key, pattern)]
        assert matched, f"row {pattern} {action} matches no object"
        for key in matched:
            kind = key.split(":")[0]
            applicable = ("create",) if key in CREATES else ("delete",) if pattern == "*" else ACTIONS[kind]
            if action not in applicable:
                continue
            for role, cell in zip(roles, cells, strict=True):
                assert (role, key, action) not in expected, f"{key} {action} is in the table twice"
                expected[(role, key, action)] = cell
    wanted = {
        (role, key, action)
        for role in COLUMNS.values()
        for key in objects
        for action in (("create",) if key in CREATES else ACTIONS[key.split(":")[0]])
    }
    missing = sorted(wanted - set(expected))
    assert not missing, f"the table leaves cells out: {missing[:10]}"
    return expected


@dataclass
class Outcome:
    actual: str
    detail: str = ""


def _upload_model_payload() -> dict[str, Any]:
    return {
        "name": "model-new",
        "purpose": "alpha",
        "desk": "equities",
        "model_type": "logistic_regression",
        "materiality": "1000.00",
    }


def _dataset_payload() -> dict[str, Any]:
    return {
        "name": "dataset-new",
        "source_kind": "market_data_feed",
        "collection_policy": "Vendor file.",
        "storage_location": "s3://bucket/new.csv",
        "classification": "internal",
        "desk": "equities",
        "file": SimpleUploadedFile("new.csv", PRICE_CSV, content_type="text/csv"),
    }


def _version_payload(model: Model) -> dict[str, Any]:
    return {
        "model": model.pk,
        "version": "9.0",
        "artifact": SimpleUploadedFile("m.skops", skops_classifier_bytes(), content_type="application/octet-stream"),
    }


UPDATES = {
    "model": {"description": "changed by the matrix"},
    "version": {"code_commit": "abcdef1"},
    "dataset": {"description": "changed by the matrix"},
}


def _secret(obj: Any) -> str:
    """A string the object's own answer carries and a refusal must not."""
    return obj.model.name if isinstance(obj, ModelVersion) else obj.name


def _fingerprint(obj: Any) -> Any:
    """What a write changes: the object's row, or (for a create) how many rows there are."""
    if obj is None:
        return (Model.objects.count(), ModelVersion.objects.count(), Dataset.objects.count())
    return type(obj).objects.filter(pk=obj.pk).values().first()


class Matrix:
    def __init__(self, world: World) -> None:
        self.world = world
        self.objects = world.objects()
        self.clients: dict[str, APIClient] = {}
        self.lists: dict[tuple[str, str], dict[str, Any]] = {}

    def client(self, role: str) -> APIClient:
        if role not in self.clients:
            client = APIClient()
            client.force_authenticate(self.world.users[role])
            self.clients[role] = client
        return self.clients[role]

    def request(self, role: str, key: str, action: str) -> Any:
        client = self.client(role)
        kind = key.split(":")[0]
        if action == "create":
            if kind == "model":
                return client.post(URLS[kind], _upload_model_payload(), format="json")
            if kind == "dataset":
                return client.post(URLS[kind], _dataset_payload(), format="multipart")
            side = key.rsplit("-", 1)[-1]
            return client.post(URLS[kind], _version_payload(self.world.models[side]), format="multipart")
        detail = f"{URLS[kind]}{self.objects[key].pk}/"
        calls: dict[str, Callable[[], Any]] = {
            "retrieve": lambda: client.get(detail),
            "update": lambda: client.patch(detail, UPDATES[kind], format="json"),
            "delete": lambda: client.delete(detail),
            "download": lambda: client.get(f"{detail}download/"),
            "validate": lambda: client.post(f"{detail}validate/"),
            "transition": lambda: client.post(
                f"{detail}transition/", {"to": VERSIONS[self.objects[key].version][1]}, format="json"
            ),
        }
        return calls[action]()

    def listed(self, role: str, kind: str) -> Outcome | dict[str, Any]:
        if (role, kind) not in self.lists:
            response = self.client(role).get(URLS[kind], {"page_size": 500})
            self.lists[(role, kind)] = {"status": response.status_code, "body": response.json()}
        return self.lists[(role, kind)]

    def run_list(self, role: str, key: str) -> Outcome:
        kind = key.split(":")[0]
        answer = self.listed(role, kind)
        if answer["status"] != 200:
            return Outcome(str(answer["status"]), str(answer["body"])[:80])
        ids = [row["id"] for row in answer["body"]["results"]]
        return Outcome("in" if self.objects[key].pk in ids else "--")

    def run_write_or_read(self, role: str, key: str, action: str, expected: str) -> Outcome:
        user = self.world.users[role]
        obj = self.objects.get(key)
        write = action in WRITES
        before = _fingerprint(obj) if write else None
        events_before = Event.objects.order_by("-seq").values_list("seq", flat=True).first() if write else None
        response = self.request(role, key, action)
        status = response.status_code
        body = response.content.decode(errors="replace")
        actual = str(status)
        problems = []
        if status == 403 and "rule" in (data := _json(response)):
            actual = data["rule"]
            refused = Event.objects.filter(
                seq__gt=events_before, action="sod.refused", actor=user, object_id=str(obj.pk), after__rule=data["rule"]
            )
            if not refused.exists():
                problems.append(f"no sod.refused event for {data['rule']}")
        if status == 404 and obj is not None and _secret(obj) in body:
            problems.append("the 404 names the object")
        if write:
            changed = _fingerprint(obj) != before
            if status < 300 and not changed:
                problems.append("answered success but changed nothing")
            if status >= 300 and changed:
                problems.append("refused but the change was made")
        detail = "; ".join(problems) or (body[:80] if actual != expected else "")
        if problems:
            actual = f"{actual}!"
        return Outcome(actual, detail)

    def run(self, role: str, key: str, action: str, expected: str) -> Outcome:
        if action == "list":
            return self.run_list(role, key)
        try:
            with transaction.atomic():
                outcome = self.run_write_or_read(role, key, action, expected)
                transaction.set_rollback(True)
        except Exception as exc:  # a 500 in the making: report it with the other cells
            return Outcome("raised", f"{type(exc).__name__}: {exc}"[:120])
        return outcome

    def list_problems(self) -> list[str]:
        """Lists count exactly what they show, and show nothing but the world's objects."""
        problems = []
        for (role, kind), answer in sorted(self.lists.items()):
            if answer["status"] != 200:
                continue
            body = answer["body"]
            ids = {row["id"] for row in body["results"]}
            known = {obj.pk for key, obj in self.objects.items() if key.startswith(f"{kind}:")}
            if body["count"] != len(body["results"]):
                problems.append(f"{role} {kind} list: count {body['count']} but {len(body['results'])} results")
            if ids - known:
                problems.append(f"{role} {kind} list: unknown ids {sorted(ids - known)}")
        return problems


def _json(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _format(rows: list[tuple[str, ...]]) -> str:
    header = ("role", "object", "action", "expected", "actual", "detail")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return "\n".join(lines)


def test_permission_matrix(world, monkeypatch):
    matrix = Matrix(world)
    expected = parse_table(EXPECTED_TABLE, [*matrix.objects, *CREATES])
    # Hundreds of refusals are the point here; their warning lines would bury a failure's table.
    monkeypatch.setattr(logging.getLogger("django.request"), "level", logging.ERROR)

    unexpected: list[tuple[str, ...]] = []
    still_known: set[tuple[str, str, str]] = set()
    for (role, key, action), cell in expected.items():
        outcome = matrix.run(role, key, action, cell)
        if outcome.actual == cell:
            continue
        if (role, key, action) in KNOWN_BUGS:
            still_known.add((role, key, action))
            continue
        allowed = {"200", "201", "in"}
        kind = (
            "unexpected allow"
            if outcome.actual in allowed
            else "unexpected deny"
            if cell in allowed
            else "other refusal than expected"
        )
        unexpected.append((role, key, action, cell, outcome.actual, f"{kind}: {outcome.detail}"))

    report = []
    if unexpected:
        report.append(f"{len(unexpected)} of {len(expected)} cells differ from the table:\n{_format(unexpected)}")
    if problems := matrix.list_problems():
        report.append("lists:\n" + "\n".join(problems))
    if fixed := sorted(set(KNOWN_BUGS) - still_known):
        report.append("known bugs no longer seen (remove them from KNOWN_BUGS):\n" + "\n".join(map(str, fixed)))
    if report:
        pytest.fail("\n\n".join(report), pytrace=False)
