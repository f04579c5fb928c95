"""Export bundles of the audit log, and their verification with no database at all.

A bundle is a directory a regulator or internal audit can check on their own machine:

- ``events.jsonl``: one event per line, ``{"seq", "event", "canonical", "leaf_hash",
  "prev_hash", "entry_hash"}``. ``event`` is the event's recorded content (the object whose
  RFC 8785 form is hashed), ``canonical`` that form as a string, the hashes as stored.
- ``checkpoints.jsonl``: every signed checkpoint of the log (database and checkpoint file),
  each with its ``source``.
- ``public-key.pem``: the Ed25519 key the checkpoints are signed with; compare its key id
  with the one published out of band, since whoever can edit a bundle can swap the key.
- ``manifest.json``: format and version, the range (``from_seq``, ``to_seq``), the log's
  ``tree_size`` and ``root_hash`` at export time and a signed tree head of them, the
  ``prev_hash`` the first event links to, and ``proof_nodes``: the complete-subtree hashes
  around the range that, with the range's own leaves, give the root of every checkpoint
  and of the export (``merkle.RangeTree``, a multi-leaf inclusion proof). So a partial
  range is checked leaf by leaf against signed roots, not only at its ends.

``verify_bundle`` recomputes every event's canonical bytes from its fields, the leaf
hashes, the chain, the roots and every signature, and reports the first seq that does not
hold, like ``audit.verify.verify_log``; a malformed bundle raises ``BundleError`` naming
the file and line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils import timezone

from audit import canonical, hashing, merkle, signing
from audit.models import Head
from audit.selectors import stored_node
from audit.verify import Verification, event_rows, naive_timestamps_are_utc, row_canonical_bytes, stored_checkpoints

FORMAT = "model-risk-governance audit bundle"
VERSION = 1
MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
CHECKPOINTS = "checkpoints.jsonl"
PUBLIC_KEY = "public-key.pem"
_HEX = re.compile(r"[0-9a-f]{64}")


class BundleError(Exception):
    """A bundle that cannot be written or read (not one whose content fails verification)."""


@dataclass
class BundleVerification(Verification):
    from_seq: int = 1
    to_seq: int = 0
    tree_size: int = 0
    key_id: str = ""


# --- export --------------------------------------------------------------------------


def _json_line(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"


def export_bundle(*, out: Path, from_seq: int | None = None, to_seq: int | None = None) -> dict[str, Any]:
    """Write a bundle of events ``from_seq``..``to_seq`` (default: the whole log) to ``out``
    (absent or empty). Returns the manifest. Needs the signing key, to sign the tree head at
    export time and to ship the public key.

    No transaction is needed for a consistent bundle, and none is held (on SQLite it would
    block writers for the whole export): everything read is append-only except the head,
    so checkpoints are read first, then the head's size N, and then only events, tree nodes
    and roots of sizes up to N, which later appends cannot change.
    """
    key = signing.load_private_key()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out} exists and is not an empty directory")
    problems = Verification()
    checkpoints = stored_checkpoints(problems)
    if problems.unverifiable:
        raise BundleError(f"the checkpoint file cannot be read: {problems.unverifiable[0]}")
    size = Head.objects.get(pk=1).size
    first = 1 if from_seq is None else from_seq
    last = size if to_seq is None else to_seq
    if size and not 1 <= first <= last <= size:
        raise BundleError(f"the range {first}..{last} is not within the log (1..{size})")
    if not size and (from_seq is not None or to_seq is not None):
        raise BundleError("the log is empty: there is no range to export")

    out.mkdir(parents=True, exist_ok=True)
    leaves: list[bytes] = []
    prev_hash = hashing.GENESIS_HASH.hex()
    naive_is_utc = naive_timestamps_are_utc()
    with (out / EVENTS).open("w", encoding="utf-8") as handle:
        for expected, row in enumerate(event_rows(from_seq=first, to_seq=last), start=first):
            seq = row[0]
            if seq != expected:
                raise BundleError(f"event {expected} is missing from the log; run audit_verify")
            try:
                text = row_canonical_bytes(row, naive_is_utc).decode("utf-8")
                leaves.append(bytes.fromhex(row[14]))
            except Exception as exc:
                raise BundleError(f"event {seq} cannot be exported ({exc}); run audit_verify") from exc
            if seq == first:
                prev_hash = row[15]
            # The canonical text is itself the event object: written twice without
            # decoding, once as JSON and once as a string.
            handle.write(
                f'{{"seq":{seq},"event":{text},"canonical":{json.dumps(text, ensure_ascii=False)},'
                f'"leaf_hash":{json.dumps(row[14])},"prev_hash":{json.dumps(row[15])},'
                f'"entry_hash":{json.dumps(row[16])}}}\n'
            )

    if len(leaves) != last - first + 1:
        raise BundleError(f"event {first + len(leaves)} is missing from the log; run audit_verify")

    # The hashes around the range a verifier needs for each root it must recompute.
    needed: dict[tuple[int, int], bytes] = {}

    def outside(level: int, index: int) -> bytes:
        needed[level, index] = stored_node(level, index)
        return needed[level, index]

    tree = merkle.RangeTree(first - 1, leaves, outside)
    try:
        root = tree.root(size).hex()
        for _, head in checkpoints:
            if 1 <= head.tree_size <= size:
                tree.root(head.tree_size)
    except merkle.ProofError as exc:
        raise BundleError(f"the stored tree is incomplete ({exc}); run audit_verify") from exc
    signed = signing.sign(key=key, tree_size=size, root_hash=root, timestamp=timezone.now())

    with (out / CHECKPOINTS).open("w", encoding="utf-8") as handle:
        for source, head in checkpoints:
            handle.write(_json_line({**head.as_json(), "source": source}))
    public_key = key.public_key()
    (out / PUBLIC_KEY).write_text(signing.public_key_pem(public_key), encoding="utf-8")
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": hashing.format_timestamp(timezone.now()),
        "from_seq": first,
        "to_seq": last,
        "event_count": last - first + 1,
        "tree_size": size,
        "root_hash": root,
        "prev_hash": prev_hash,
        "key_id": signing.key_id(public_key),
        "signed_tree_head": signed.as_json(),
        "proof_nodes": {f"{level}/{index}": value.hex() for (level, index), value in sorted(needed.items())},
        "files": {"events": EVENTS, "checkpoints": CHECKPOINTS, "public_key": PUBLIC_KEY},
    }
    # Written last: a bundle whose export was interrupted has no manifest.
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


# --- reading ---------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise BundleError(f"{path.name}: missing from the bundle") from exc
    except OSError as exc:
        raise BundleError(f"{path.name}: cannot be read ({exc})") from exc


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every line of a JSON-lines file; BundleError naming the line."""
    if not path.exists():
        raise BundleError(f"{path.name}: missing from the bundle")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue  # a blank line is no event; a missing one shows as a missing seq
            try:
                data = json.loads(raw)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
                raise BundleError(f"{path.name}:{number}: not JSON ({exc})") from exc
            if not isinstance(data, dict):
                raise BundleError(f"{path.name}:{number}: not a JSON object")
            yield number, data


def _hex(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise BundleError(f"{where}: not a 32-byte lowercase hex hash")
    return value


def _int(value: Any, where: str) -> int:
    if type(value) is not int or value < 0:
        raise BundleError(f"{where}: not a non-negative integer")
    return value


@dataclass
class _Manifest:
    from_seq: int
    to_seq: int
    tree_size: int
    root_hash: str
    prev_hash: str
    signed_tree_head: signing.SignedTreeHead
    proof_nodes: dict[tuple[int, int], bytes]


def _manifest(path: Path) -> _Manifest:
    try:
        data = json.loads(_read(path))
    except ValueError as exc:
        raise BundleError(f"{MANIFEST}: not JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(f"{MANIFEST}: not an audit bundle manifest (format should be {FORMAT!r})")
    if data.get("version") != VERSION:
        raise BundleError(
            f"{MANIFEST}: bundle format version {data.get('version')!r} is not supported (only {VERSION})"
        )
    try:
        first = _int(data["from_seq"], f"{MANIFEST}: from_seq")
        last = _int(data["to_seq"], f"{MANIFEST}: to_seq")
        size = _int(data["tree_size"], f"{MANIFEST}: tree_size")
        root = _hex(data["root_hash"], f"{MANIFEST}: root_hash")
        prev = _hex(data["prev_hash"], f"{MANIFEST}: prev_hash")
        head = signing.SignedTreeHead.from_json(data["signed_tree_head"])
        nodes = {}
        for name, value in data["proof_nodes"].items():
            level, _, index = name.partition("/")
            nodes[int(level), int(index)] = bytes.fromhex(_hex(value, f"{MANIFEST}: proof node {name}"))
    except KeyError as exc:
        raise BundleError(f"{MANIFEST}: {exc.args[0]} is missing") from exc
    except (ValueError, TypeError, AttributeError) as exc:
        raise BundleError(f"{MANIFEST}: malformed ({exc})") from exc
    if not (1 <= first <= last + 1 and last <= size):
        raise BundleError(f"{MANIFEST}: the range {first}..{last} does not fit a log of {size} events")
    return _Manifest(first, last, size, root, prev, head, nodes)


def _checkpoints(path: Path) -> list[tuple[str, signing.SignedTreeHead]]:
    heads = []
    for number, data in _lines(path):
        try:
            head = signing.SignedTreeHead.from_json(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{CHECKPOINTS}:{number}: not a checkpoint ({exc})") from exc
        heads.append((f"{CHECKPOINTS}:{number} ({data.get('source', 'unknown source')})", head))
    return heads


def _event_line(number: int, data: dict[str, Any]) -> tuple[int, Any, bytes, str, str, str]:
    where = f"{EVENTS}:{number}"
    try:
        seq = _int(data["seq"], f"{where}: seq")
        text = data["canonical"]
        if not isinstance(text, str):
            raise BundleError(f"{where}: canonical is not a string")
        return (
            seq,
            data["event"],
            text.encode("utf-8"),
            _hex(data["leaf_hash"], f"{where}: leaf_hash"),
            _hex(data["prev_hash"], f"{where}: prev_hash"),
            _hex(data["entry_hash"], f"{where}: entry_hash"),
        )
    except KeyError as exc:
        raise BundleError(f"{where}: {exc.args[0]} is missing") from exc
    except UnicodeEncodeError as exc:
        raise BundleError(f"{where}: canonical is not valid text ({exc})") from exc


# --- verification ----------------------------------------------------------------------


def verify_bundle(path: Path) -> BundleVerification:
    """Check a bundle from its files alone (no database): see the module docstring."""
    manifest = _manifest(path / MANIFEST)
    try:
        public_key = signing.load_public_key_pem(_read(path / PUBLIC_KEY))
    except ValueError as exc:
        raise BundleError(f"{PUBLIC_KEY}: not an Ed25519 public key in PEM ({exc})") from exc
    heads = _checkpoints(path / CHECKPOINTS)
    heads.append((MANIFEST, manifest.signed_tree_head))
    result = BundleVerification(
        from_seq=manifest.from_seq,
        to_seq=manifest.to_seq,
        tree_size=manifest.tree_size,
        key_id=signing.key_id(public_key),
    )

    leaves = _verify_events(result, path / EVENTS, manifest)
    if result.first_bad_seq is not None:
        return result

    def outside(level: int, index: int) -> bytes:
        try:
            return manifest.proof_nodes[level, index]
        except KeyError:
            raise BundleError(f"{MANIFEST}: proof node {level}/{index} is missing") from None

    tree = merkle.RangeTree(manifest.from_seq - 1, leaves, outside)
    result.size = len(leaves)
    result.root = tree.root(manifest.tree_size).hex()
    if result.root != manifest.root_hash:
        result.fail(max(1, manifest.to_seq), "the manifest's root hash does not match the events")
    _verify_bundle_checkpoints(result, tree, heads, public_key)
    return result


def _verify_events(result: BundleVerification, path: Path, manifest: _Manifest) -> list[bytes]:
    """Check every event line; return the leaf hashes (empty once something failed)."""
    sha256 = hashlib.sha256
    leaves: list[bytes] = []
    prev_hex = manifest.prev_hash
    prev = bytes.fromhex(prev_hex)
    if manifest.from_seq == 1 and prev != hashing.GENESIS_HASH:
        result.fail(1, "the first event must link to the genesis hash (32 zero bytes)")
        return []
    expected = manifest.from_seq
    for number, data in _lines(path):
        seq, event, exported, leaf_hex, row_prev, entry_hex = _event_line(number, data)
        if seq != expected:
            if seq < expected:
                result.fail(seq, f"seq {seq} appears again at {EVENTS}:{number}: an event was inserted")
            elif seq > manifest.to_seq:
                result.fail(seq, f"seq {seq} is beyond the manifest's range: an event was inserted")
            else:
                result.fail(expected, f"sequence jumps from {expected - 1} to {seq}: events missing or inserted")
            return []
        if not isinstance(event, dict) or event.get("seq") != seq:
            result.fail(seq, "the line's event does not carry its seq")
            return []
        try:
            recomputed = canonical.dumps(event)
        except ValueError as exc:
            result.fail(seq, f"its fields have no canonical form ({exc})")
            return []
        if recomputed != exported:
            result.fail(seq, "its fields do not match its canonical bytes (event altered)")
        leaf = sha256(b"\x00" + recomputed).digest()
        entry = sha256(prev + leaf).digest()
        if leaf.hex() != leaf_hex:
            result.fail(seq, "content does not match its leaf hash (event altered)")
        if row_prev != prev_hex:
            result.fail(seq, "prev_hash does not link to the previous entry")
        if entry.hex() != entry_hex:
            result.fail(seq, "entry_hash does not match the chain")
        if result.first_bad_seq is not None:
            return []
        leaves.append(leaf)
        prev, prev_hex = entry, entry_hex
        expected += 1
    if expected <= manifest.to_seq:
        result.fail(expected, f"the bundle ends at seq {expected - 1} but its manifest says {manifest.to_seq}")
        return []
    return leaves


def _verify_bundle_checkpoints(
    result: BundleVerification,
    tree: merkle.RangeTree,
    heads: list[tuple[str, signing.SignedTreeHead]],
    public_key: Any,
) -> None:
    """Every checkpoint must be signed by the bundled key and have the root the events give."""
    own_key = signing.key_id(public_key)
    size = result.tree_size
    matching = [result.from_seq - 1]
    for source, head in sorted(heads, key=lambda item: item[1].tree_size):
        result.checkpoints_checked += 1
        if head.key_id != own_key or not _signature_valid(public_key, head):
            result.fail(max(1, min(head.tree_size, result.to_seq)), f"checkpoint {source} has an invalid signature")
            continue
        if head.tree_size > size:
            result.fail(
                size + 1,
                f"checkpoint {source} signed {head.tree_size} events but the log held {size}: the log was cut",
            )
        elif head.tree_size and tree.root(head.tree_size).hex() != head.root_hash:
            result.fail(
                max(result.from_seq, max(matching) + 1),
                f"checkpoint {source} at size {head.tree_size} has a different root: events up to there were rewritten",
            )
        else:
            matching.append(head.tree_size)


def _signature_valid(public_key: Any, head: signing.SignedTreeHead) -> bool:
    try:
        base64.b64decode(head.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return signing.signature_valid(public_key, head)
