"""The scope's object grants read the grant tables directly (``models_registry.selectors._granted``):
the same rows as django-guardian's ``get_objects_for_user`` with the options the scope used
(any of the permissions, the user's own grants only, no global permissions), for every user,
kind of object and set of permissions the selectors ask about, including grants that must not
count (another permission, a group's grant, a global permission)."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm, get_objects_for_user

from audit.scope import audited_change
from audit.services import SystemActor, record_event
from governance.models import Desk
from models_registry import selectors
from models_registry.models import Dataset, Model
from tests.access.world import World

pytestmark = pytest.mark.django_db

ASKED = [
    (Model, selectors.MODEL_VIEW_GRANTS),
    (Model, selectors.MODEL_CHANGE_GRANTS),
    (Desk, selectors.DESK_VIEW_GRANTS),
    (Desk, selectors.DESK_CHANGE_GRANTS),
    (Dataset, selectors.DATASET_VIEW_GRANTS),
    (Dataset, selectors.DATASET_CHANGE_GRANTS),
]


def _guardian(user, codenames, klass) -> set[int]:
    label = klass._meta.app_label
    return set(
        get_objects_for_user(
            user,
            [f"{label}.{codename}" for codename in codenames],
            klass=klass,
            any_perm=True,
            use_groups=False,
            with_superuser=False,
            accept_global_perms=False,
        ).values_list("pk", flat=True)
    )


def test_the_direct_grant_subquery_matches_guardian_for_every_user(world: World):
    owner_b, developer = world.users["owner_b"], world.users["developer"]
    group = developer.groups.first()
    # Grants that must not open anything through this path: a global permission, a group's
    # object grant, and an object grant of another permission.
    with audited_change():  # test set-up: rows no service writes, each with its event
        assign_perm("models_registry.change_model", owner_b)
        record_event(actor=SystemActor("tests"), action="test.state_forced", target=owner_b, after={"global": True})
        for row in (
            assign_perm("models_registry.view_model", group, world.models["B"]),
            assign_perm("models_registry.delete_model", owner_b, world.models["A"]),
        ):
            record_event(actor=SystemActor("tests"), action="test.state_forced", target=row, after={"pk": row.pk})
    seen_any = False
    for user in world.users.values():
        for klass, codenames in ASKED:
            direct = set(
                klass.objects.filter(pk__in=selectors._granted(user, codenames, klass)).values_list("pk", flat=True)
            )
            assert direct == _guardian(user, codenames, klass), (user.username, klass.__name__, codenames)
            seen_any |= bool(direct)
    assert seen_any  # the world has grants of each kind, so the comparison is not of empty sets
    assert world.models["A"].pk not in {
        pk
        for pk in Model.objects.filter(
            pk__in=selectors._granted(owner_b, selectors.MODEL_VIEW_GRANTS, Model)
        ).values_list("pk", flat=True)
    }
