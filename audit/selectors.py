from __future__ import annotations

from django.db.models import QuerySet

from audit import merkle
from audit.models import Event, Head, TreeNode


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


def _check_size(tree_size: int) -> None:
    size = head().size
    if not 1 <= tree_size <= size:
        raise merkle.ProofError(f"tree size {tree_size} is outside the log (1..{size})")


def inclusion_proof(*, seq: int, tree_size: int | None = None) -> dict[str, object]:
    """Inclusion proof of event ``seq`` in the tree of ``tree_size`` events (default: all)."""
    tree_size = tree_size or head().size
    _check_size(tree_size)
    if not 1 <= seq <= tree_size:
        raise merkle.ProofError(f"seq {seq} is not in a tree of size {tree_size}")
    index = seq - 1
    return {
        "seq": seq,
        "leaf_index": index,
        "tree_size": tree_size,
        "leaf_hash": stored_node(0, index).hex(),
        "root_hash": merkle.root_hash(stored_node, tree_size).hex(),
        "proof": [h.hex() for h in merkle.inclusion_proof(stored_node, index, tree_size)],
    }


def consistency_proof(*, first: int, second: int) -> dict[str, object]:
    """Proof that the log at size ``first`` is a prefix of the log at size ``second``."""
    _check_size(second)
    if not 1 <= first <= second:
        raise merkle.ProofError(f"no consistency proof from size {first} to size {second}")
    return {
        "first": first,
        "second": second,
        "first_root": merkle.root_hash(stored_node, first).hex(),
        "second_root": merkle.root_hash(stored_node, second).hex(),
        "proof": [h.hex() for h in merkle.consistency_proof(stored_node, first, second)],
    }
