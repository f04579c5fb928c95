"""Reads of the audit log: events scoped to the actor, checkpoints, and Merkle proofs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connection
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from audit import merkle, signing
from audit.models import Checkpoint, Event, Head, TreeNode

User = AbstractBaseUser | AnonymousUser

VIEW_ALL_PERMISSION = "audit.view_event"
# Largest 64-bit key: bigger numbers name no row, and some databases refuse them as parameters.
MAX_ID = 2**63 - 1


class ProofRequestError(merkle.ProofError):
    """A proof request outside the log; ``parameter`` names the argument at fault."""

    def __init__(self, message: str, *, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def sees_all_events(*, user: User) -> bool:
    """Holders of ``audit.view_event`` (compliance, internal audit, risk, administrators) see the whole log."""
    return bool(user.is_authenticated and user.has_perm(VIEW_ALL_PERMISSION))


def _visible_ids(queryset: QuerySet) -> QuerySet:
    # object_id is text (it holds any model's key); cast the integer keys so the subquery
    # compares like with like, which PostgreSQL insists on.
    return queryset.order_by().annotate(_audit_key=Cast("pk", output_field=CharField())).values("_audit_key")


def event_list(*, user: User) -> QuerySet[Event]:
    """Events the user may see, oldest first.

    Everything for holders of ``audit.view_event``; for anyone else, the events about
    models, versions and datasets the inventory selectors let them see, plus the events
    they acted on themselves. Nothing for anonymous users.
    """
    qs = Event.objects.order_by("seq")
    if not user.is_authenticated:
        return qs.none()
    if sees_all_events(user=user):
        return qs
    # Imported here: models_registry's models import audit modules, and audit.services
    # imports this module, so a module-level import would make the apps' imports circular.
    from models_registry import selectors as registry_selectors

    scopes = {
        "models_registry.model": registry_selectors.model_list(user=user),
        "models_registry.modelversion": registry_selectors.model_version_list(user=user),
        "models_registry.dataset": registry_selectors.dataset_list(user=user),
    }
    visible = Q(actor_id=user.pk)
    for object_type, queryset in scopes.items():
        visible |= Q(object_type=object_type, object_id__in=_visible_ids(queryset))
    return qs.filter(visible)


def actor_condition(value: str) -> Q:
    """Events by an actor named as a label (username or ``system:...``) or, for digits, also a user id.

    A digit string is ambiguous (user id 7, or a user named "7"), so it matches either.
    """
    condition = Q(actor_label=value)
    if value.isdigit() and int(value) <= MAX_ID:
        condition |= Q(actor_id=int(value))
    return condition


def may_prove_inclusion(*, user: User, seq: int) -> bool:
    """Auditors may ask about any position (and learn when it is out of range); others only about events they see."""
    return sees_all_events(user=user) or event_list(user=user).filter(seq=seq).exists()


def checkpoint_latest() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-tree_size", "-pk").first()


def checkpoint_latest_published() -> dict[str, Any] | None:
    """The latest checkpoint as a recipient checks it: the signed fields exactly as signed (the
    checkpoint file's JSON), the signed message itself, and the public key; ``None`` if there is none."""
    checkpoint = checkpoint_latest()
    if checkpoint is None:
        return None
    head = signing.SignedTreeHead(
        checkpoint.tree_size, checkpoint.root_hash, checkpoint.timestamp, checkpoint.key_id, checkpoint.signature
    )
    message = signing.signed_message(tree_size=head.tree_size, root_hash=head.root_hash, timestamp=head.timestamp)
    return {
        **head.as_json(),
        "origin": signing.ORIGIN,
        "signed_message": message.decode(),
        "public_key_pem": checkpoint_public_key_pem(key_id=head.key_id),
    }


def checkpoint_public_key_pem(*, key_id: str) -> str | None:
    """The PEM public key that checks checkpoints signed with ``key_id``, if it is this server's key.

    ``None`` when no key is configured or the checkpoint was signed with another (rotated)
    key: handing out a key that cannot check the signature would only mislead.
    """
    try:
        public_key = signing.load_private_key().public_key()
    except ImproperlyConfigured:
        return None
    if signing.key_id(public_key) != key_id:
        return None
    return signing.public_key_pem(public_key)


def existing_object_ids(pairs: set[tuple[str, str]], models: dict[str, type]) -> set[tuple[str, str]]:
    """Which ``(object_type, object_id)`` pairs still name a row: one query per object type, not per pair.

    ``models`` maps object types to their model classes; types missing from it are skipped.
    """
    found: set[tuple[str, str]] = set()
    by_type: dict[str, set[str]] = {}
    for object_type, object_id in pairs:
        if object_type in models and object_id:
            by_type.setdefault(object_type, set()).add(object_id)
    for object_type, ids in by_type.items():
        model = models[object_type]
        keys = []
        for object_id in ids:
            try:
                keys.append(model._meta.pk.to_python(object_id))
            except (ValidationError, ValueError, TypeError):
                continue  # an id of the wrong shape names no row
        existing = model._default_manager.filter(pk__in=keys).order_by().values_list("pk", flat=True)
        found.update((object_type, str(pk)) for pk in existing)
    return found


def events_for_object(*, object_type: str, object_id: str | int) -> QuerySet[Event]:
    """Events about one object, oldest first."""
    return Event.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("seq")


def head() -> Head:
    return Head.objects.get(pk=1)


def stored_node(level: int, index: int) -> bytes:
    """One complete-subtree hash from the database (leaves are the events' leaf hashes)."""
    if level == 0:
        value = Event.objects.filter(seq=index + 1).values_list("leaf_hash", flat=True).first()
    else:
        value = TreeNode.objects.filter(level=level, index=index).values_list("hash", flat=True).first()
    if value is None:
        raise merkle.ProofError(f"the log has no complete subtree at level {level}, index {index}")
    return bytes.fromhex(value)


def _dry_run(level: int, index: int, *, into: set[tuple[int, int]]) -> bytes:
    into.add((level, index))
    return bytes(merkle.HASH_SIZE)


def _fetch_nodes(keys: set[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """(level, index, hex) of the stored hashes among ``keys``, in one round trip.

    Raw SQL: building the equivalent ORM query (a Q per level) costs more than running it.
    """
    quote = connection.ops.quote_name
    parts, params = [], []
    leaves = sorted(index + 1 for level, index in keys if level == 0)
    if leaves:
        parts.append(
            f"SELECT 0, {quote('seq')} - 1, {quote('leaf_hash')} FROM {quote(Event._meta.db_table)} "
            f"WHERE {quote('seq')} IN ({', '.join(['%s'] * len(leaves))})"
        )
        params += leaves
    by_level: dict[int, list[int]] = {}
    for level, index in sorted(keys):
        if level:
            by_level.setdefault(level, []).append(index)
    if by_level:
        conditions = " OR ".join(
            f"({quote('level')} = %s AND {quote('index')} IN ({', '.join(['%s'] * len(indexes))}))"
            for indexes in by_level.values()
        )
        parts.append(
            f"SELECT {quote('level')}, {quote('index')}, {quote('hash')} "
            f"FROM {quote(TreeNode._meta.db_table)} WHERE {conditions}"
        )
        for level, indexes in by_level.items():
            params += [level, *indexes]
    if not parts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return cursor.fetchall()


def prefetched_nodes(*uses: Callable[[merkle.NodeSource], object]) -> merkle.NodeSource:
    """A ``NodeSource`` holding every stored hash that ``uses`` read, fetched in one query
    instead of one query per hash.

    Which hashes a proof or root reads depends only on the sizes and indexes, never on the
    hashes themselves, so a dry run with zero hashes names them all. At a million events a
    proof reads about 40 hashes: one round trip instead of 40 is what keeps it within the
    10 ms target (docs/benchmarks.md).
    """
    keys: set[tuple[int, int]] = set()
    for use in uses:
        use(functools.partial(_dry_run, into=keys))
    found = {(level, index): bytes.fromhex(value) for level, index, value in _fetch_nodes(keys)}

    def node(level: int, index: int) -> bytes:
        try:
            return found[level, index]
        except KeyError:
            raise merkle.ProofError(f"the log has no complete subtree at level {level}, index {index}") from None

    return node


def log_size() -> int:
    """Events in the log according to its head (0 before the first event)."""
    # Raw SQL: every proof starts here, and building the ORM query took longer than
    # running it (about 4 ms against 0.2 ms on PostgreSQL; docs/benchmarks.md).
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote('size')} FROM {quote(Head._meta.db_table)} WHERE {quote('id')} = 1")
        row = cursor.fetchone()
    return row[0] if row else 0


def inclusion_proof(*, seq: int, tree_size: int | None = None) -> dict[str, object]:
    """Inclusion proof of event ``seq`` in the tree of ``tree_size`` events (default: all).

    The ``audit_proof`` command and the API both print this dict as it is.
    """
    size = log_size()
    if tree_size is not None and not 1 <= tree_size <= size:
        raise ProofRequestError(f"tree size {tree_size} is outside the log (1..{size})", parameter="tree_size")
    tree_size = size if tree_size is None else tree_size
    if not 1 <= seq <= tree_size:
        raise ProofRequestError(f"seq {seq} is not in a tree of size {tree_size}", parameter="seq")
    index = seq - 1
    nodes = prefetched_nodes(
        lambda n: n(0, index),
        lambda n: merkle.root_hash(n, tree_size),
        lambda n: merkle.inclusion_proof(n, index, tree_size),
    )
    return {
        "seq": seq,
        "leaf_index": index,
        "tree_size": tree_size,
        "leaf_hash": nodes(0, index).hex(),
        "root_hash": merkle.root_hash(nodes, tree_size).hex(),
        "proof": [h.hex() for h in merkle.inclusion_proof(nodes, index, tree_size)],
    }


def consistency_proof(*, first: int, second: int) -> dict[str, object]:
    """Proof that the log at size ``first`` is a prefix of the log at size ``second``."""
    size = log_size()
    if not 1 <= second <= size:
        raise ProofRequestError(f"tree size {second} is outside the log (1..{size})", parameter="second")
    if not 1 <= first <= second:
        raise ProofRequestError(f"no consistency proof from size {first} to size {second}", parameter="first")
    nodes = prefetched_nodes(
        lambda n: merkle.root_hash(n, first),
        lambda n: merkle.root_hash(n, second),
        lambda n: merkle.consistency_proof(n, first, second),
    )
    return {
        "first": first,
        "second": second,
        "first_root": merkle.root_hash(nodes, first).hex(),
        "second_root": merkle.root_hash(nodes, second).hex(),
        "proof": [h.hex() for h in merkle.consistency_proof(nodes, first, second)],
    }
