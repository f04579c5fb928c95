"""Access bugs found by the permission-matrix work in code this package does not own.

Each test states what should hold and is ``xfail(strict=True)`` until the bug is fixed, so the
fix turns it into a failure that asks for the marker to be removed. (The matrix keeps its own
list, ``KNOWN_BUGS`` in ``test_permission_matrix.py``.)
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from governance import services as org
from governance.errors import NotPermitted
from models_registry import selectors, services
from models_registry.models import Dataset, Model
from tests.access.world import World
from tests.factories import PRICE_CSV

pytestmark = pytest.mark.django_db


@pytest.mark.xfail(
    strict=True,
    reason="models_registry/api/views.py _ScopedViewSet._output re-reads the written object through the "
    "caller's selector (.get()), which raises DoesNotExist (500) when the write put it out of the caller's "
    "scope; the service has already stored the change. STYLE.md: check the scope inside the transaction "
    "and refuse the write instead.",
)
@pytest.mark.parametrize("case", ["model for another owner", "dataset handed over", "restricted dataset for another"])
def test_a_write_that_leaves_the_callers_scope_is_refused_and_not_made(world: World, case):
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(world.users["owner"])
    dataset = world.datasets["A:restricted"]
    if case == "model for another owner":
        payload = {"name": "gift", "purpose": "alpha", "desk": "rates", "owner": "owner-b"}
        payload |= {"model_type": "logistic_regression", "materiality": "1.00"}
        response = client.post("/api/models/", payload, format="json")
        made = Model.objects.filter(name="gift").exists()
    elif case == "dataset handed over":
        response = client.patch(f"/api/datasets/{dataset.pk}/", {"owner": "owner-b"}, format="json")
        dataset.refresh_from_db()
        made = dataset.owner == world.users["owner_b"]
    else:
        payload = {"name": "gift-data", "source_kind": "internal", "collection_policy": "x", "storage_location": "y"}
        payload |= {"classification": "restricted", "owner": "owner-b", "file": SimpleUploadedFile("a.csv", PRICE_CSV)}
        response = client.post("/api/datasets/", payload, format="multipart")
        made = Dataset.objects.filter(name="gift-data").exists()
    assert response.status_code == 403, response.status_code
    assert not made


@pytest.mark.xfail(
    strict=True,
    reason="models_registry/admin.py ModelVersionAdmin: the model and dataset choices of the version form "
    "come from the default managers (Django admin's get_field_queryset), so the form lists every model and "
    "dataset name, restricted ones and other desks' included; formfield_for_foreignkey should use the selectors.",
)
def test_the_admin_version_form_offers_only_what_the_user_may_see(world: World, client):
    client.force_login(world.users["owner"])
    for url in (
        "/admin/models_registry/modelversion/add/",
        f"/admin/models_registry/modelversion/{world.versions['A1.0'].pk}/change/",
    ):
        body = client.get(url).content.decode()
        for secret in (
            world.models["B"].name,
            world.datasets["B:restricted"].name,
            world.datasets["B:confidential"].name,
        ):
            assert secret not in body, (url, secret)


@pytest.mark.xfail(
    strict=True,
    reason="governance/services.py desk_access_grant does not refuse regulators, so a desk grant shares a desk's "
    "models with a regulator with no end date, around the engagement (the model and dataset grants refuse "
    "regulators since this work).",
)
def test_a_desk_grant_cannot_open_models_to_a_regulator(world: World):
    regulator = world.users["reg_none"]
    with pytest.raises(ValidationError):
        org.desk_access_grant(
            actor=world.users["admin"], user=regulator, desk=world.desks["A"], permission="view_desk_models"
        )
    assert not selectors.model_list(user=regulator).exists()


@pytest.mark.xfail(
    strict=True,
    reason="models_registry/services.py validation_assign (and so unassignment) needs only oversee_model, which "
    "the internal auditor holds (governance/roles.py); the issue: the internal auditor changes nothing. Needs a "
    "permission of its own (e.g. assign_validator for compliance officers and administrators).",
)
def test_the_internal_auditor_cannot_assign_validators(world: World):
    with pytest.raises(NotPermitted):
        services.validation_assign(
            actor=world.users["auditor"], model=world.models["B"], validator=world.users["val_una"]
        )
