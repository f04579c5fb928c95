"""RFC 9162 Merkle tree hashing, proofs and their verification (sections 2.1.1-2.1.4).

Leaf hash = SHA-256(0x00 || data); interior node = SHA-256(0x01 || left || right).
Proofs are built from the hashes of *complete* subtrees, so a tree whose complete-subtree
hashes are stored (the audit log stores them) answers any proof in O(log n) reads:
every range met by the RFC's recursion is either a complete, aligned subtree or splits
into at most log2(n) of them. ``NodeSource`` is that lookup; ``MemoryTree`` is an
in-memory implementation used by the verifier of exported bundles and by tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index) -> hash of the complete subtree covering leaves [index*2^level, (index+1)*2^level)
NodeSource = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not verify, or a request for a proof that cannot exist."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(nodes: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range met by the RFC's recursion (start aligned to the split)."""
    size = end - start
    if size <= 0:
        raise ProofError(f"empty range [{start}, {end})")
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return nodes(level, start >> level)
    k = _largest_power_of_two_below(size)
    return node_hash(range_hash(nodes, start, start + k), range_hash(nodes, start + k, end))


def root_hash(nodes: NodeSource, tree_size: int) -> bytes:
    return EMPTY_ROOT if tree_size == 0 else range_hash(nodes, 0, tree_size)


def inclusion_proof(nodes: NodeSource, index: int, tree_size: int) -> list[bytes]:
    """PATH(index, D[0:tree_size]) of RFC 9162 2.1.3.1."""
    if not 0 <= index < tree_size:
        raise ProofError(f"leaf index {index} is not in a tree of size {tree_size}")
    proof: list[bytes] = []
    start, end, m = 0, tree_size, index
    # Iterative form of the recursion; siblings are collected leaf-side first.
    stack: list[bytes] = []
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            stack.append(range_hash(nodes, start + k, end))
            end = start + k
        else:
            stack.append(range_hash(nodes, start, start + k))
            start, m = start + k, m - k
    proof.extend(reversed(stack))
    return proof


def consistency_proof(nodes: NodeSource, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[0:second]) of RFC 9162 2.1.4.1 (empty when the sizes are equal)."""
    if not 1 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == second:
        return []
    stack: list[bytes] = []
    start, end, m, whole = 0, second, first, True
    while True:
        size = end - start
        if m == size:
            if not whole:
                stack.append(range_hash(nodes, start, end))
            break
        k = _largest_power_of_two_below(size)
        if m <= k:
            stack.append(range_hash(nodes, start + k, end))
            end = start + k
        else:
            stack.append(range_hash(nodes, start, start + k))
            start, m, whole = start + k, m - k, False
    return list(reversed(stack))


def _check_hashes(*hashes: bytes) -> None:
    for value in hashes:
        if len(value) != HASH_SIZE:
            raise ProofError(f"a hash is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 2.1.3.2), or ``ProofError``."""
    if not 0 <= index < tree_size:
        raise ProofError(f"leaf index {index} is not in a tree of size {tree_size}")
    _check_hashes(leaf, *proof)
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree needs")
    return r


def verify_inclusion(index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ``ProofError`` unless ``leaf`` is at ``index`` of the tree with ``root``."""
    _check_hashes(root)
    if root_from_inclusion_proof(index, tree_size, leaf, proof) != root:
        raise ProofError("the inclusion proof does not lead to the given root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    """Raise ``ProofError`` unless the tree of size ``first`` is a prefix of the one of size ``second``
    (RFC 9162 2.1.4.2)."""
    if first < 1:
        # As in RFC 9162 and the transparency-dev verifier: an empty tree proves nothing.
        raise ProofError("a consistency proof needs a first tree of at least one entry")
    if second < first:
        raise ProofError(f"size {first} cannot be a prefix of size {second}")
    if first == second:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if first_root != second_root:
            raise ProofError("equal sizes but different roots")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    _check_hashes(first_root, second_root, *proof)
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the trees allow")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the trees need")
    if fr != first_root:
        raise ProofError("the consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("the consistency proof does not lead to the second root")


class MemoryTree:
    """An append-only Merkle tree in memory, keeping the hash of every complete subtree."""

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for leaf in leaf_hashes:
            self.append_leaf_hash(leaf)

    @classmethod
    def from_leaf_hashes(cls, leaves: Sequence[bytes]) -> MemoryTree:
        """The same tree as appending ``leaves`` one by one, built a level at a time
        (several times faster: one tight loop per level instead of Python work per node)."""
        level = list(leaves)
        if any(len(leaf) != HASH_SIZE for leaf in level):
            _check_hashes(*level)
        tree = cls()
        tree._levels = [level]
        sha256 = hashlib.sha256
        while len(level) > 1:
            # An odd last node has no pair yet: only complete subtrees are kept.
            pairs = zip(level[::2], level[1::2], strict=False)
            level = [sha256(b"\x01" + left + right).digest() for left, right in pairs]
            tree._levels.append(level)
        return tree

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append_leaf_hash(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf; returns the complete subtrees it closed as (level, index, hash)."""
        _check_hashes(leaf)
        closed = [(0, self.size, leaf)]
        self._levels[0].append(leaf)
        level, index = 0, self.size - 1
        while index & 1:
            left = self._levels[level][index - 1]
            right = self._levels[level][index]
            level, index = level + 1, index >> 1
            if len(self._levels) == level:
                self._levels.append([])
            parent = node_hash(left, right)
            self._levels[level].append(parent)
            closed.append((level, index, parent))
        return closed

    def frontier(self, tree_size: int | None = None) -> list[tuple[int, bytes]]:
        """The complete subtrees that make up the tree of ``tree_size`` leaves, largest first."""
        size = self.size if tree_size is None else tree_size
        out, start = [], 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                out.append((level, self.node(level, start >> level)))
                start += 1 << level
        return out

    def level_hashes(self, level: int) -> list[bytes]:
        """The hashes of the complete subtrees at ``level``, by index (do not modify)."""
        return self._levels[level] if level < len(self._levels) else []

    @property
    def height(self) -> int:
        """The number of levels holding complete subtrees (the leaves are level 0)."""
        return len(self._levels)

    def node(self, level: int, index: int) -> bytes:
        try:
            return self._levels[level][index]
        except IndexError as exc:
            raise ProofError(f"no complete subtree at level {level}, index {index}") from exc

    def root(self, tree_size: int | None = None) -> bytes:
        return root_hash(self.node, self.size if tree_size is None else tree_size)

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        return inclusion_proof(self.node, index, self.size if tree_size is None else tree_size)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        return consistency_proof(self.node, first, self.size if second is None else second)


class RangeTree:
    """The tree of ``tree_size`` leaves when only the leaves ``[start, start + len(leaves))``
    are at hand, the rest being supplied as complete-subtree hashes by ``outside``.

    This is how an exported range of the log is tied to a signed root: the verifier holds
    the range's leaves and the O(log n) complete subtrees around it (a multi-leaf inclusion
    proof), and recomputes the root of any size, so every leaf of the range is checked
    against every checkpoint, not only the first and the last. ``node`` is a ``NodeSource``;
    the exporter wraps ``outside`` to learn which hashes the verifier will need.
    """

    def __init__(self, start: int, leaves: Sequence[bytes], outside: NodeSource) -> None:
        self.start, self.end = start, start + len(leaves)
        self._outside = outside
        # Complete subtrees lying wholly inside the range, level by level, with the index of
        # the first one at each level.
        level, first = list(leaves), start
        if any(len(leaf) != HASH_SIZE for leaf in level):
            _check_hashes(*level)
        self._levels, self._firsts = [level], [first]
        sha256 = hashlib.sha256
        while True:
            skip = first & 1  # an odd first node pairs with one outside the range
            pairs = zip(level[skip::2], level[skip + 1 :: 2], strict=False)
            level, first = [sha256(b"\x01" + left + right).digest() for left, right in pairs], (first + skip) >> 1
            if not level:
                break
            self._levels.append(level)
            self._firsts.append(first)

    def node(self, level: int, index: int) -> bytes:
        low = index << level
        high = low + (1 << level)
        if high <= self.start or low >= self.end:
            return self._outside(level, index)
        if self.start <= low and high <= self.end:
            return self._levels[level][index - self._firsts[level]]
        # Straddles an edge of the range: one half at a time.
        return node_hash(self.node(level - 1, 2 * index), self.node(level - 1, 2 * index + 1))

    def root(self, tree_size: int) -> bytes:
        return root_hash(self.node, tree_size)
