"""The audit log: one row per change or decision, written in the same transaction."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models

from audit.fields import CanonicalJSONField


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit event."""


class EventQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events are append-only: update() is refused")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("audit events are append-only: delete() is refused")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events are append-only: bulk_update() is refused")


class Event(models.Model):
    """One audited change or decision.

    ``before`` and ``after`` are JSON snapshots of the governed object (``None`` for a
    create's before and a delete's after). Actors are users, or a named system actor
    (``actor`` null, ``actor_label`` such as ``system:demo``) for jobs and commands.

    ``canonical`` is the event's RFC 8785 text, exactly the bytes its leaf hash covers,
    written with it; the verifier hashes it and has the database check that the other
    columns say the same (audit/verify.py, docs/decisions/0011). On SQLite ``before`` and
    ``after`` hold their RFC 8785 text too (any JSON text reads back the same).
    """

    seq = models.BigIntegerField(primary_key=True)
    timestamp = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=100)
    # No index of its own: the (object_type, object_id, seq) index below serves it.
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    before = CanonicalJSONField(null=True, blank=True)
    after = CanonicalJSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    policy_set_hash = models.CharField(max_length=64, blank=True)
    leaf_hash = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)
    canonical = models.TextField(default="", editable=False)

    objects = EventQuerySet.as_manager()

    class Meta:
        db_table = "audit_event"
        ordering = ["seq"]
        # Declared rather than db_index=True, which on PostgreSQL adds a varchar_pattern_ops
        # copy of each that no query uses (migration 0009).
        indexes = [
            models.Index(fields=["object_type", "object_id", "seq"]),
            models.Index(fields=["action"], name="audit_event_action_71fc5cf8"),
            models.Index(fields=["object_id"], name="audit_event_object_id_5a8e2ce6"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id} by {self.actor_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only: an existing event cannot be saved again")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events are append-only: delete() is refused")


class TreeNode(models.Model):
    """Hash of a complete Merkle subtree above the leaves (level >= 1).

    Leaf hashes (level 0) live on the events. With every complete subtree stored, any
    inclusion or consistency proof is O(log n) reads (see audit/merkle.py).
    """

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    objects = EventQuerySet.as_manager()

    class Meta:
        db_table = "audit_tree_node"
        constraints = [models.UniqueConstraint(fields=["level", "index"], name="audit_tree_node_unique")]

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"


class Head(models.Model):
    """The log's single head row: the lock writers take, and the state they append to.

    ``frontier`` lists the complete subtrees that make up the tree, largest first, as
    ``[level, hex hash]`` pairs, so appending needs no reads of older nodes.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)
    last_entry_hash = models.CharField(max_length=64, default="0" * 64)
    frontier = models.JSONField(default=list)

    class Meta:
        db_table = "audit_head"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_head_single_row")]

    def __str__(self) -> str:
        return f"audit head at {self.size}"


class Checkpoint(models.Model):
    """A signed tree head: (tree size, root hash, time) signed with Ed25519.

    Also appended to a file outside the database, because a hash chain alone cannot show
    that its tail was cut.
    """

    tree_size = models.BigIntegerField()
    root_hash = models.CharField(max_length=64)
    timestamp = models.DateTimeField()
    key_id = models.CharField(max_length=64, help_text="SHA-256 of the raw Ed25519 public key.")
    signature = models.CharField(max_length=128)

    objects = EventQuerySet.as_manager()

    class Meta:
        db_table = "audit_checkpoint"
        ordering = ["tree_size", "pk"]

    def __str__(self) -> str:
        return f"checkpoint at {self.tree_size}"
