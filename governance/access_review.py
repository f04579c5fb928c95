"""Access review: for every user, every object of the inventory they can reach, and why.

The periodic review compliance signs (issue 5, item 6). The rules are those of
``models_registry.selectors`` (the single source of truth of who sees what), evaluated for
all users at once: a fixed number of queries, one per kind of fact (users, roles, global
permissions, models, versions, each grant table, engagements, datasets, grant events),
whatever the number of users and objects. ``tests/governance/test_access_review.py``
checks that each user's reach here is exactly ``model_list`` / ``model_version_list`` /
``dataset_list`` for that user; change both together.

How the selectors' rules become reasons:

* models: ``superuser``; ``oversight role (<role>)`` (``oversee_model``, active users only,
  as Django's ``has_perm``); ``owner``; ``version developer`` (created one of its versions);
  ``grant: view_model|change_model|validate_model`` (a ``ModelGrant``); ``desk grant:
  view_desk_models|change_desk_models on <desk>`` (a ``DeskGrant``); ``engagement #<id> <authority> until
  <ends_at>`` (an engagement in force now). Grants say who granted them and when, from
  their ``access.granted`` audit event.
* model versions: reached through their model; the ones the user created say so.
* datasets: ``superuser``; ``owner``; ``grant: view_dataset|change_dataset``;
  ``classification public|internal with view_dataset``; for confidential ones,
  ``oversight role (<role>)`` (``oversee_dataset``) and ``desk member (confidential dataset
  of <desk>)``.

Engagements that give no access now (expired, revoked, or not started yet) are listed
apart, as ended access, so that reviewers see access end.

Generating a review is itself audited: ``access_review_record`` writes one
``access.review_generated`` event with counts (not the content).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from audit.models import Event
from audit.scope import audited_change
from audit.services import Actor, record_event
from governance.models import DeskGrant
from models_registry.choices import Classification
from models_registry.models import Dataset, DatasetGrant, EngagementModel, Model, ModelGrant, ModelVersion
from models_registry.selectors import DATASET_VIEW_GRANTS, DESK_VIEW_GRANTS, MODEL_VIEW_GRANTS

REVIEW_ACTION = "access.review_generated"
CSV_HEADER = [
    "username",
    "is_active",
    "is_staff",
    "is_superuser",
    "roles",
    "desk",
    "kind",
    "object_id",
    "object_name",
    "reason",
    "access",
]
SUPERUSER = "superuser"
OWNER = "owner"
VERSION_DEVELOPER = "version developer"
VIA_MODEL = "through its model"

# Global permissions the scope rules read (``user.has_perm("models_registry.<codename>")``).
_OVERSEE_MODEL, _OVERSEE_DATASET, _VIEW_DATASET = "oversee_model", "oversee_dataset", "view_dataset"
_OPEN_CLASSIFICATIONS = (Classification.PUBLIC, Classification.INTERNAL)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class VersionReach:
    id: int
    version: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Reach:
    """One object a user can reach, with every reason that lets them."""

    kind: str  # "model" or "dataset"
    id: int
    name: str
    reasons: tuple[str, ...]
    versions: tuple[VersionReach, ...] = ()


@dataclass(frozen=True)
class EndedAccess:
    """An engagement that gives no access now: expired, revoked, or not started yet."""

    engagement_id: int
    authority: str
    status: str  # "expired", "revoked" or "not started"
    starts_at: dt.datetime
    ends_at: dt.datetime
    revoked_at: dt.datetime | None
    models: tuple[tuple[int, str], ...]

    @property
    def reason(self) -> str:
        when = {"revoked": self.revoked_at, "not started": self.starts_at}.get(self.status, self.ends_at)
        verb = {"expired": "ended", "revoked": "revoked", "not started": "starts"}[self.status]
        return f"engagement #{self.engagement_id} {self.authority} {verb} {_iso(when)}"


@dataclass(frozen=True)
class UserReview:
    id: int
    username: str
    is_active: bool
    is_staff: bool
    is_superuser: bool
    roles: tuple[str, ...]
    desk: str | None
    reach: tuple[Reach, ...]
    ended: tuple[EndedAccess, ...]

    def reached_ids(self, kind: str) -> set[int]:
        """Primary keys reached of ``kind``: "model", "model_version" or "dataset"."""
        if kind == "model_version":
            return {v.id for r in self.reach if r.kind == "model" for v in r.versions}
        return {r.id for r in self.reach if r.kind == kind}


@dataclass(frozen=True)
class AccessReview:
    generated_at: dt.datetime
    users: tuple[UserReview, ...]
    username: str | None = None  # the filter, if the review covers one user

    def counts(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "models": sum(len(u.reached_ids("model")) for u in self.users),
            "model_versions": sum(len(u.reached_ids("model_version")) for u in self.users),
            "datasets": sum(len(u.reached_ids("dataset")) for u in self.users),
            "ended_engagements": sum(len(u.ended) for u in self.users),
        }


@dataclass
class _Facts:
    """Everything the rules read, loaded in bulk and indexed by user or object."""

    models: list[tuple[int, str]] = field(default_factory=list)
    models_of_desk: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    models_owned: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    versions: dict[int, list[tuple[int, str, int]]] = field(default_factory=lambda: defaultdict(list))
    models_developed: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    model_grants: dict[int, list[tuple[int, str, int]]] = field(default_factory=lambda: defaultdict(list))
    desk_grants: dict[int, list[tuple[int, str, int, str]]] = field(default_factory=lambda: defaultdict(list))
    engagements: dict[int, dict[int, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    datasets: list[tuple[int, str, str, int | None, int]] = field(default_factory=list)
    dataset_grants: dict[int, list[tuple[int, str, int]]] = field(default_factory=lambda: defaultdict(list))
    granted_by: dict[tuple[str, str], str] = field(default_factory=dict)
    roles: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    group_perms: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    user_perms: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))


def _load_facts(*, user_ids: list[int] | None) -> _Facts:
    """One query per kind of fact; ``user_ids`` narrows the per-user facts (None: all users)."""
    User = get_user_model()
    mine: dict[str, Any] = {} if user_ids is None else {"user_id__in": user_ids}
    facts = _Facts()
    for user_id, group in User.groups.through.objects.filter(**mine).values_list("user_id", "group__name"):
        facts.roles[user_id].append(group)
    global_codenames = (_OVERSEE_MODEL, _OVERSEE_DATASET, _VIEW_DATASET)
    on_registry = {
        "permission__content_type__app_label": "models_registry",
        "permission__codename__in": global_codenames,
    }
    for group, codename in Group.permissions.through.objects.filter(**on_registry).values_list(
        "group__name", "permission__codename"
    ):
        facts.group_perms[group].add(codename)
    for user_id, codename in User.user_permissions.through.objects.filter(**mine, **on_registry).values_list(
        "user_id", "permission__codename"
    ):
        facts.user_perms[user_id].add(codename)

    for pk, name, owner_id, desk_id in Model.objects.order_by("name", "pk").values_list(
        "pk", "name", "owner_id", "desk_id"
    ):
        facts.models.append((pk, name))
        facts.models_of_desk[desk_id].append(pk)
        facts.models_owned[owner_id].append(pk)
    for pk, model_id, label, creator_id in ModelVersion.objects.order_by("created_at", "pk").values_list(
        "pk", "model_id", "version", "created_by_id"
    ):
        facts.versions[model_id].append((pk, label, creator_id))
        facts.models_developed[creator_id].add(model_id)

    # As guardian's get_objects_for_user: the user's own object grants of the object's type.
    for grant_pk, user_id, model_id, codename in ModelGrant.objects.filter(
        **mine,
        permission__content_type__app_label="models_registry",
        permission__content_type__model="model",
        permission__codename__in=MODEL_VIEW_GRANTS,
    ).values_list("pk", "user_id", "content_object_id", "permission__codename"):
        facts.model_grants[user_id].append((model_id, codename, grant_pk))
    for grant_pk, user_id, desk_id, desk_name, codename in DeskGrant.objects.filter(
        **mine,
        permission__content_type__app_label="governance",
        permission__content_type__model="desk",
        permission__codename__in=DESK_VIEW_GRANTS,
    ).values_list("pk", "user_id", "content_object_id", "content_object__name", "permission__codename"):
        facts.desk_grants[user_id].append((desk_id, desk_name, grant_pk, codename))
    for grant_pk, user_id, dataset_id, codename in DatasetGrant.objects.filter(
        **mine,
        permission__content_type__app_label="models_registry",
        permission__content_type__model="dataset",
        permission__codename__in=DATASET_VIEW_GRANTS,
    ).values_list("pk", "user_id", "content_object_id", "permission__codename"):
        facts.dataset_grants[user_id].append((dataset_id, codename, grant_pk))

    regulator = {} if user_ids is None else {"engagement__regulator_id__in": user_ids}
    for row in (
        EngagementModel.objects.filter(**regulator)
        .order_by("engagement_id", "model__name")
        .values(
            "engagement_id",
            "engagement__regulator_id",
            "engagement__authority",
            "engagement__starts_at",
            "engagement__ends_at",
            "engagement__revoked_at",
            "model_id",
            "model__name",
        )
    ):
        engagement = facts.engagements[row["engagement__regulator_id"]].setdefault(
            row["engagement_id"],
            {
                "authority": row["engagement__authority"],
                "starts_at": row["engagement__starts_at"],
                "ends_at": row["engagement__ends_at"],
                "revoked_at": row["engagement__revoked_at"],
                "models": [],
            },
        )
        engagement["models"].append((row["model_id"], row["model__name"]))

    facts.datasets = list(
        Dataset.objects.order_by("name", "pk").values_list("pk", "name", "classification", "desk_id", "owner_id")
    )

    # Who granted each grant, and when: its access.granted event (the last one, should a
    # grant row ever be recreated under the same key). Grants made before the audit log
    # or by hand have none, and their reason says only what was granted.
    grant_types = [m._meta.label_lower for m in (ModelGrant, DeskGrant, DatasetGrant)]
    for object_type, object_id, actor, timestamp in (
        Event.objects.filter(action="access.granted", object_type__in=grant_types)
        .order_by("seq")
        .values_list("object_type", "object_id", "actor_label", "timestamp")
    ):
        facts.granted_by[(object_type, object_id)] = f" (granted by {actor} at {_iso(timestamp)})"
    return facts


def _grant_reason(facts: _Facts, grant_model: type, grant_pk: int, what: str) -> str:
    return what + facts.granted_by.get((grant_model._meta.label_lower, str(grant_pk)), "")


def _permission_sources(facts: _Facts, user: Any, codename: str) -> list[str]:
    """Why ``user.has_perm("models_registry.<codename>")`` holds (Django's ModelBackend:
    active users only, through a group or the user's own permissions); empty if it does not."""
    if not user.is_active:
        return []
    sources = [
        f"oversight role ({role})" for role in sorted(facts.roles[user.pk]) if codename in facts.group_perms[role]
    ]
    if codename in facts.user_perms[user.pk]:
        sources.append("oversight permission (granted to the user)")
    return sources


def _model_reach(facts: _Facts, user: Any, now: dt.datetime) -> tuple[list[Reach], list[EndedAccess]]:
    uid = user.pk
    specific: dict[int, list[str]] = defaultdict(list)
    for model_id in facts.models_owned[uid]:
        specific[model_id].append(OWNER)
    for model_id in facts.models_developed[uid]:
        specific[model_id].append(VERSION_DEVELOPER)
    for model_id, codename, grant_pk in sorted(facts.model_grants[uid], key=lambda g: MODEL_VIEW_GRANTS.index(g[1])):
        specific[model_id].append(_grant_reason(facts, ModelGrant, grant_pk, f"grant: {codename}"))
    for desk_id, desk_name, grant_pk, codename in facts.desk_grants[uid]:
        reason = _grant_reason(facts, DeskGrant, grant_pk, f"desk grant: {codename} on {desk_name}")
        for model_id in facts.models_of_desk[desk_id]:
            specific[model_id].append(reason)
    ended = []
    for engagement_id, e in facts.engagements[uid].items():
        if e["revoked_at"] is None and e["starts_at"] <= now < e["ends_at"]:
            reason = f"engagement #{engagement_id} {e['authority']} until {_iso(e['ends_at'])}"
            for model_id, _name in e["models"]:
                specific[model_id].append(reason)
            continue
        status = "revoked" if e["revoked_at"] is not None else ("not started" if e["starts_at"] > now else "expired")
        ended.append(
            EndedAccess(
                engagement_id=engagement_id,
                authority=e["authority"],
                status=status,
                starts_at=e["starts_at"],
                ends_at=e["ends_at"],
                revoked_at=e["revoked_at"],
                models=tuple(e["models"]),
            )
        )

    blanket = ([SUPERUSER] if user.is_superuser else []) + _permission_sources(facts, user, _OVERSEE_MODEL)
    reach = []
    for model_id, name in facts.models:
        reasons = blanket + specific.get(model_id, [])
        if not reasons:
            continue
        versions = tuple(
            VersionReach(id=pk, version=label, reasons=(VERSION_DEVELOPER,) if creator == uid else (VIA_MODEL,))
            for pk, label, creator in facts.versions[model_id]
        )
        reach.append(Reach(kind="model", id=model_id, name=name, reasons=tuple(reasons), versions=versions))
    return reach, ended


def _dataset_reach(facts: _Facts, user: Any, desk: Any) -> list[Reach]:
    uid = user.pk
    granted: dict[int, list[str]] = defaultdict(list)
    for dataset_id, codename, grant_pk in sorted(
        facts.dataset_grants[uid], key=lambda g: DATASET_VIEW_GRANTS.index(g[1])
    ):
        granted[dataset_id].append(_grant_reason(facts, DatasetGrant, grant_pk, f"grant: {codename}"))
    may_view = bool(_permission_sources(facts, user, _VIEW_DATASET))
    oversight = _permission_sources(facts, user, _OVERSEE_DATASET)
    reach = []
    for pk, name, classification, desk_id, owner_id in facts.datasets:
        reasons = [SUPERUSER] if user.is_superuser else []
        if owner_id == uid:
            reasons.append(OWNER)
        reasons += granted.get(pk, [])
        if classification in _OPEN_CLASSIFICATIONS and may_view:
            reasons.append(f"classification {classification} with {_VIEW_DATASET}")
        if classification == Classification.CONFIDENTIAL:
            reasons += oversight
            if desk is not None and desk_id == desk.pk:
                reasons.append(f"desk member (confidential dataset of {desk.name})")
        if reasons:
            reach.append(Reach(kind="dataset", id=pk, name=name, reasons=tuple(reasons)))
    return reach


def access_review(*, username: str | None = None, now: dt.datetime | None = None) -> AccessReview:
    """Every user (active or not), their roles, desk and flags, what they reach and why.

    ``username`` narrows the review to one user (an unknown name gives no users). The
    number of queries is fixed: it grows with neither users nor objects.
    """
    now = now or timezone.now()
    User = get_user_model()
    users_qs = User.objects.select_related("membership__desk").order_by(User.USERNAME_FIELD, "pk")
    if username is not None:
        users_qs = users_qs.filter(**{User.USERNAME_FIELD: username})
    users = list(users_qs)
    if not users:
        return AccessReview(generated_at=now, users=(), username=username)
    facts = _load_facts(user_ids=None if username is None else [u.pk for u in users])
    reviews = []
    for user in users:
        membership = getattr(user, "membership", None)
        desk = membership.desk if membership is not None else None
        models, ended = _model_reach(facts, user, now)
        reviews.append(
            UserReview(
                id=user.pk,
                username=user.get_username(),
                is_active=user.is_active,
                is_staff=user.is_staff,
                is_superuser=user.is_superuser,
                roles=tuple(sorted(facts.roles[user.pk])),
                desk=desk.name if desk is not None else None,
                reach=(*models, *_dataset_reach(facts, user, desk)),
                ended=tuple(ended),
            )
        )
    return AccessReview(generated_at=now, users=tuple(reviews), username=username)


# --- Output ------------------------------------------------------------------------------------


def review_rows(review: AccessReview) -> Iterator[list[Any]]:
    """CSV rows (without the header): one per (user, object, reason); ``access`` is "current"
    for what the user reaches now, else the ended engagement's status. A user who reaches
    nothing still has one row, with the object columns empty."""
    for user in review.users:
        head = [
            user.username,
            _yes_no(user.is_active),
            _yes_no(user.is_staff),
            _yes_no(user.is_superuser),
            "; ".join(user.roles),
            user.desk or "",
        ]
        rows = 0
        for item in user.reach:
            for reason in item.reasons:
                rows += 1
                yield [*head, item.kind, item.id, item.name, reason, "current"]
            for version in item.versions:
                for reason in version.reasons:
                    yield [*head, "model_version", version.id, f"{item.name} {version.version}", reason, "current"]
        for ended in user.ended:
            for model_id, name in ended.models:
                rows += 1
                yield [*head, "model", model_id, name, ended.reason, ended.status]
        if not rows:
            yield [*head, "", "", "", "", ""]


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def write_csv(review: AccessReview, stream: IO[str]) -> None:
    writer = csv.writer(stream)
    writer.writerow(CSV_HEADER)
    writer.writerows(review_rows(review))


def review_document(review: AccessReview) -> dict[str, Any]:
    """The JSON document: ``generated_at`` (UTC), counts, and one entry per user."""
    return {
        "generated_at": _iso(review.generated_at),
        "counts": review.counts(),
        "users": [
            {
                "username": user.username,
                "roles": list(user.roles),
                "desk": user.desk,
                "flags": {"active": user.is_active, "staff": user.is_staff, "superuser": user.is_superuser},
                "reach": [
                    {
                        "kind": item.kind,
                        "id": item.id,
                        "name": item.name,
                        "reasons": list(item.reasons),
                        **(
                            {
                                "versions": [
                                    {"id": v.id, "version": v.version, "reasons": list(v.reasons)}
                                    for v in item.versions
                                ]
                            }
                            if item.kind == "model"
                            else {}
                        ),
                    }
                    for item in user.reach
                ],
                "expired_access": [
                    {
                        "engagement": ended.engagement_id,
                        "authority": ended.authority,
                        "status": ended.status,
                        "starts_at": _iso(ended.starts_at),
                        "ends_at": _iso(ended.ends_at),
                        "revoked_at": _iso(ended.revoked_at),
                        "models": [{"id": pk, "name": name} for pk, name in ended.models],
                    }
                    for ended in user.ended
                ],
            }
            for user in review.users
        ],
    }


# --- The audit event -----------------------------------------------------------------------------


@audited_change()
def access_review_record(*, actor: Actor, review: AccessReview, output: str) -> Event:
    """Record that ``actor`` generated ``review`` (as ``output``: csv, json, admin page...).

    The event carries counts and the filter, not the content: the content is derived from
    rows whose every change is already in the log. Writes no governed row.
    """
    return record_event(
        actor=actor,
        action=REVIEW_ACTION,
        after={
            "generated_at": _iso(review.generated_at),
            "output": output,
            "username": review.username,
            **review.counts(),
        },
    )
