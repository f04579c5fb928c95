"""Full verification of the audit log from its rows: the hash chain, the Merkle tree and the head."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit import hashing, merkle, signing
from audit.models import Checkpoint, Event, Head, TreeNode

_FIELDS = (
    "seq",
    "timestamp",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "reason",
    "request_id",
    "client_address",
    "policy_set_hash",
    "leaf_hash",
    "prev_hash",
    "entry_hash",
)


@dataclass
class Verification:
    size: int = 0
    root: str = merkle.EMPTY_ROOT.hex()
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)

    unverifiable: list[str] = field(default_factory=list)
    checkpoints_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None and not self.unverifiable

    def fail(self, seq: int, problem: str) -> None:
        if self.first_bad_seq is None or seq < self.first_bad_seq:
            self.first_bad_seq = seq
        self.problems.append(f"seq {seq}: {problem}")


def verify_log(*, chunk_size: int = 5000) -> Verification:
    """Recompute every leaf, the chain and the tree; report the first seq that does not hold."""
    result = Verification()
    tree = merkle.MemoryTree()
    prev = hashing.GENESIS_HASH
    expected = 1
    for row in Event.objects.order_by("seq").values(*_FIELDS).iterator(chunk_size=chunk_size):
        seq = row["seq"]
        if seq != expected:
            result.fail(expected, f"sequence jumps from {expected - 1} to {seq}: events missing or inserted")
            break
        leaf = hashing.event_leaf_hash(row)
        if leaf.hex() != row["leaf_hash"]:
            result.fail(seq, "content does not match its leaf hash (event altered)")
        if row["prev_hash"] != prev.hex():
            result.fail(seq, "prev_hash does not link to the previous entry")
        entry = hashing.chain_hash(prev, leaf)
        if row["entry_hash"] != entry.hex():
            result.fail(seq, "entry_hash does not match the chain")
        tree.append_leaf_hash(leaf)
        prev = entry
        expected += 1
        if result.first_bad_seq is not None:
            break
    if result.first_bad_seq is not None:
        return result
    result.size = tree.size
    result.root = tree.root().hex()

    head = Head.objects.get(pk=1)
    if head.size != tree.size:
        result.fail(min(head.size, tree.size) + 1, f"the head counts {head.size} events but {tree.size} are stored")
    elif head.last_entry_hash != prev.hex():
        result.fail(tree.size, "the head's last entry hash does not match the chain")
    elif head.frontier != [[level, h.hex()] for level, h in tree.frontier()]:
        result.fail(tree.size, "the head's Merkle frontier does not match the events")

    expected_nodes = sum(tree.size >> level for level in range(1, tree.size.bit_length()))
    stored = 0
    for level, index, value in TreeNode.objects.order_by("level", "index").values_list("level", "index", "hash"):
        stored += 1
        try:
            good = tree.node(level, index).hex() == value
        except merkle.ProofError:
            good = False
        if not good:
            result.fail((index << level) + 1, f"stored tree node {level}/{index} does not match the events")
    if stored != expected_nodes:
        result.fail(tree.size, f"{stored} tree nodes stored, {expected_nodes} expected")
    _verify_checkpoints(result, tree)
    return result


def _stored_checkpoints(result: Verification) -> list[tuple[str, signing.SignedTreeHead]]:
    heads = [
        (
            "database",
            signing.SignedTreeHead(c.tree_size, c.root_hash, c.timestamp, c.key_id, c.signature),
        )
        for c in Checkpoint.objects.order_by("tree_size", "pk")
    ]
    path = Path(settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE)
    if path.exists():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                timestamp = dt.datetime.strptime(data["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
                head = signing.SignedTreeHead(
                    int(data["tree_size"]), data["root_hash"], timestamp, data["key_id"], data["signature"]
                )
            except (ValueError, KeyError, TypeError) as exc:
                result.unverifiable.append(f"{path}:{number}: not a checkpoint ({exc})")
                continue
            heads.append((f"{path.name}:{number}", head))
    return heads


def _verify_checkpoints(result: Verification, tree: merkle.MemoryTree) -> None:
    """Every checkpoint must be signed by our key and describe a prefix of the current tree."""
    heads = _stored_checkpoints(result)
    if not heads:
        return
    try:
        public_key = signing.load_private_key().public_key()
    except ImproperlyConfigured as exc:
        result.unverifiable.append(f"checkpoint signatures cannot be checked: {exc}")
        public_key = None
    matching_sizes = [0]
    for source, head in sorted(heads, key=lambda item: item[1].tree_size):
        result.checkpoints_checked += 1
        if public_key is not None and (
            head.key_id != signing.key_id(public_key) or not signing.signature_valid(public_key, head)
        ):
            result.fail(max(1, min(head.tree_size, tree.size)), f"checkpoint {source} has an invalid signature")
            continue
        if head.tree_size > tree.size:
            result.fail(
                tree.size + 1,
                f"checkpoint {source} signed {head.tree_size} events but the log holds {tree.size}: the log was cut",
            )
        elif head.tree_size and tree.root(head.tree_size).hex() != head.root_hash:
            result.fail(
                max(matching_sizes) + 1,
                f"checkpoint {source} at size {head.tree_size} has a different root: events up to there were rewritten",
            )
        else:
            matching_sizes.append(head.tree_size)
