"""RFC 9162 Merkle proofs: the transparency-dev test vectors, and a property check of our
O(log n) construction against the RFC's recursive definitions."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle

VECTORS = Path(__file__).parent / "merkle-testdata" / "testdata"


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _proof(values: list[str] | None) -> list[bytes]:
    return [_b64(v) for v in values or []]


def _cases(kind: str) -> list:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files, f"no {kind} test vectors found"
    return [pytest.param(f, id=str(f.relative_to(VECTORS / kind))) for f in files]


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vectors(path: Path) -> None:
    case = json.loads(path.read_text())
    args = (case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), _proof(case["proof"]), _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vectors(path: Path) -> None:
    case = json.loads(path.read_text())
    args = (case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case["proof"]))
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_the_vectors_include_both_outcomes() -> None:
    outcomes = {json.loads(p.read_text())["wantErr"] for p in VECTORS.rglob("*.json")}
    assert outcomes == {True, False}


# The RFC's definitions, written recursively over the leaves, as the reference.
def _mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return merkle.leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    if m == len(leaves):
        return [] if whole else [_mth(leaves)]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70), st.data())
def test_proofs_match_the_rfc_definitions_and_verify(leaves: list[bytes], data: st.DataObject) -> None:
    tree = merkle.MemoryTree([merkle.leaf_hash(leaf) for leaf in leaves])
    n = len(leaves)
    size = data.draw(st.integers(1, n), label="tree size")
    index = data.draw(st.integers(0, size - 1), label="leaf index")
    first = data.draw(st.integers(1, size), label="first size")

    root = tree.root(size)
    assert root == _mth(leaves[:size])
    proof = tree.inclusion_proof(index, size)
    assert proof == _path(index, leaves[:size])
    merkle.verify_inclusion(index, size, merkle.leaf_hash(leaves[index]), proof, root)

    consistency = tree.consistency_proof(first, size)
    assert consistency == ([] if first == size else _subproof(first, leaves[:size], True))
    merkle.verify_consistency(first, size, tree.root(first), root, consistency)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 200), st.data())
def test_any_altered_proof_is_refused(n: int, data: st.DataObject) -> None:
    tree = merkle.MemoryTree([merkle.leaf_hash(str(i).encode()) for i in range(n)])
    index = data.draw(st.integers(0, n - 1))
    proof = tree.inclusion_proof(index)
    leaf = merkle.leaf_hash(str(index).encode())
    position = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    altered = list(proof)
    altered[position] = bytes([altered[position][0] ^ (1 << (bit % 8))]) + altered[position][1:]
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index, n, leaf, altered, tree.root())
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion((index + 1) % n if n > 1 else index, n, leaf, proof, tree.root())


def test_proofs_read_logarithmically_many_nodes() -> None:
    n = 1_000_003
    tree = merkle.MemoryTree()
    for i in range(n):
        tree.append_leaf_hash(hashlib.sha256(i.to_bytes(8, "big")).digest())
    reads = 0

    def counting(level: int, index: int) -> bytes:
        nonlocal reads
        reads += 1
        return tree.node(level, index)

    merkle.inclusion_proof(counting, 123_456, n)
    assert reads <= 2 * n.bit_length()
    reads = 0
    merkle.consistency_proof(counting, 654_321, n)
    assert reads <= 3 * n.bit_length()
    reads = 0
    merkle.root_hash(counting, n)
    assert reads <= n.bit_length()
