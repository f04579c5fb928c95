"""Full verification of the audit log from its rows: the hash chain, the Merkle tree and the head."""

from __future__ import annotations

from dataclasses import dataclass, field

from audit import hashing, merkle
from audit.models import Event, Head, TreeNode

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

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None

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
    return result
