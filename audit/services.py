"""The one audit writer. Every service calls ``record_event`` inside its own transaction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from audit import context, hashing, merkle, scope, signing
from audit.models import Checkpoint, Event, Head, TreeNode
from audit.selectors import stored_node
from audit.snapshot import json_safe


class SystemActor:
    """A non-human actor (a job, a command, the demo); recorded by its label."""

    def __init__(self, label: str) -> None:
        if not label:
            raise ValueError("a system actor needs a label")
        self.label = label if label.startswith("system:") else f"system:{label}"

    def __repr__(self) -> str:
        return f"SystemActor({self.label!r})"


Actor = AbstractBaseUser | SystemActor


def actor_label(actor: Actor | AnonymousUser | None) -> str:
    if isinstance(actor, SystemActor):
        return actor.label
    if actor is None or isinstance(actor, AnonymousUser):
        return "anonymous"
    return actor.get_username()


def _lock_head() -> Head:
    """Take the log's write lock and return the head.

    The UPDATE comes first: it takes PostgreSQL's row lock (and SQLite's write lock)
    before anything is read, so concurrent writers queue here and sequence numbers are
    dense and commit-ordered. Rolled back with the transaction if anything later fails.
    """
    locked = Head.objects.filter(pk=1).update(size=F("size") + 1)
    if locked != 1:
        # Only an empty log may start a head (a fresh or flushed database); a missing
        # head beside existing events means the log was tampered with.
        if Event.objects.exists():
            raise RuntimeError("the audit head row is missing while events exist; run audit_verify")
        Head.objects.get_or_create(pk=1)
        Head.objects.filter(pk=1).update(size=F("size") + 1)
    return Head.objects.get(pk=1)


def _append_to_tree(head: Head, leaf: bytes) -> None:
    """Fold the new leaf into the frontier, storing every complete subtree it closes."""
    frontier = [(level, bytes.fromhex(h)) for level, h in head.frontier]
    level, node = 0, leaf
    index = head.size - 1  # the new leaf's index; head.size already counts it
    new_nodes = []
    while frontier and frontier[-1][0] == level:
        _, left = frontier.pop()
        node = merkle.node_hash(left, node)
        level, index = level + 1, index >> 1
        new_nodes.append(TreeNode(level=level, index=index, hash=node.hex()))
    frontier.append((level, node))
    if new_nodes:
        TreeNode.objects.bulk_create(new_nodes)
    head.frontier = [[lvl, h.hex()] for lvl, h in frontier]


def record_event(
    *,
    actor: Actor | AnonymousUser | None,
    action: str,
    target: models.Model | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    policy_set_hash: str = "",
) -> Event:
    """Append one event. Must run inside the caller's transaction (the change's own)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_event must be called inside the transaction that makes the change")
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id if object_id is not None else target.pk
    ctx = context.current()
    user = actor if isinstance(actor, AbstractBaseUser) else None
    scope.note_audited(object_type or "", "" if object_id is None else object_id)
    head = _lock_head()
    fields: dict[str, Any] = {
        "seq": head.size,
        "timestamp": timezone.now(),
        "actor_id": user.pk if user is not None else None,
        "actor_label": actor_label(actor),
        "action": action,
        "object_type": object_type or "",
        "object_id": "" if object_id is None else str(object_id),
        "object_repr": str(target)[:300] if target is not None else "",
        "before": json_safe(before) if before is not None else None,
        "after": json_safe(after) if after is not None else None,
        "reason": reason,
        "request_id": ctx.request_id,
        # Stored the way the column normalises it, so the hash can be recomputed from the row.
        "client_address": clean_ipv6_address(ctx.client_address)
        if ctx.client_address and ":" in ctx.client_address
        else ctx.client_address,
        "policy_set_hash": policy_set_hash,
    }
    leaf = hashing.event_leaf_hash(fields)
    prev = bytes.fromhex(head.last_entry_hash)
    entry = hashing.chain_hash(prev, leaf)
    event = Event.objects.create(**fields, leaf_hash=leaf.hex(), prev_hash=prev.hex(), entry_hash=entry.hex())
    _append_to_tree(head, leaf)
    head.last_entry_hash = entry.hex()
    head.save(update_fields=["last_entry_hash", "frontier"])
    return event


def _append_checkpoint_file(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()


@transaction.atomic
def checkpoint_create(*, actor: Actor) -> Checkpoint:
    """Sign the current tree head, store it, and append it to the checkpoint file.

    The checkpoint's own audit event is written first, so the signed tree includes it.
    The file line is appended once the transaction has committed.
    """
    key = signing.load_private_key()
    record_event(actor=actor, action="audit.checkpoint", object_type="audit.checkpoint")
    head = Head.objects.get(pk=1)
    root = merkle.root_hash(stored_node, head.size).hex()
    signed = signing.sign(key=key, tree_size=head.size, root_hash=root, timestamp=timezone.now())
    checkpoint = Checkpoint.objects.create(
        tree_size=signed.tree_size,
        root_hash=signed.root_hash,
        timestamp=signed.timestamp,
        key_id=signed.key_id,
        signature=signed.signature,
    )
    line = json.dumps(signed.as_json(), sort_keys=True)
    path = Path(settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE)
    transaction.on_commit(lambda: _append_checkpoint_file(path, line))
    return checkpoint
