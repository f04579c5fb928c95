"""Canonical bytes and hashes of audit events.

Canonical bytes are RFC 8785 (JSON Canonicalization Scheme) of the event's recorded
content (written by ``audit.canonical``, which equals ``rfc8785.dumps`` byte for byte but
is much faster); the leaf hash is RFC 9162's SHA-256(0x00 || bytes); the hash chain links each
entry to the one before: entry_hash = SHA-256(prev_hash || leaf_hash).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json.encoder
from typing import Any

from audit import canonical, merkle

GENESIS_HASH = bytes(32)
CANONICAL_VERSION = 1


def format_timestamp(value: dt.datetime) -> str:
    """UTC with microseconds and a Z, the only form the log uses."""
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_content(fields: dict[str, Any]) -> dict[str, Any]:
    """The hashed content of an event, from its stored column values."""
    return {
        "v": CANONICAL_VERSION,
        "seq": fields["seq"],
        "timestamp": format_timestamp(fields["timestamp"]),
        "actor_id": fields["actor_id"],
        "actor_label": fields["actor_label"],
        "action": fields["action"],
        "object_type": fields["object_type"],
        "object_id": fields["object_id"],
        "object_repr": fields["object_repr"],
        "before": fields["before"],
        "after": fields["after"],
        "reason": fields["reason"],
        "request_id": fields["request_id"],
        "client_address": fields["client_address"],
        "policy_set_hash": fields["policy_set_hash"],
    }


def canonical_bytes(fields: dict[str, Any]) -> bytes:
    return canonical.dumps(canonical_content(fields))


# The C string encoder json.dumps(ensure_ascii=False) uses; see audit/canonical.py for why
# its output is JCS for every string that can be encoded to UTF-8.
_string = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring


def canonical_text(
    seq: int,
    timestamp: str,
    actor_id: int | None,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    object_repr: str,
    before: str,
    after: str,
    reason: str,
    request_id: str,
    client_address: str | None,
    policy_set_hash: str,
    /,
) -> str:
    """The canonical JSON of an event as a str, from its column values in table order, with
    the timestamp already formatted (``format_timestamp``) and ``before``/``after`` already
    RFC 8785 text.

    Encoded to UTF-8 it equals ``canonical_bytes`` (the encoding raises for a lone
    surrogate, as JCS refuses those), without building and sorting the content object:
    this is the verifier's hot path. Raises ``TypeError`` for a value of a type the column
    cannot hold; callers then fall back to ``canonical_bytes``.
    """
    if not (
        type(seq) is int
        and (actor_id is None or type(actor_id) is int)
        and -canonical.MAX_INT <= seq <= canonical.MAX_INT
        and (actor_id is None or -canonical.MAX_INT <= actor_id <= canonical.MAX_INT)
        and type(timestamp) is str
        and type(actor_label) is str
        and type(action) is str
        and type(object_type) is str
        and type(object_id) is str
        and type(object_repr) is str
        and type(reason) is str
        and type(request_id) is str
        and (client_address is None or type(client_address) is str)
        and type(policy_set_hash) is str
    ):
        raise TypeError("a column holds a value of an unexpected type")
    string = _string
    # Keys in JCS order (by UTF-16 code units; all ASCII here).
    return (
        f'{{"action":{string(action)},"actor_id":{"null" if actor_id is None else actor_id},'
        f'"actor_label":{string(actor_label)},"after":{after},"before":{before},'
        f'"client_address":{"null" if client_address is None else string(client_address)},'
        f'"object_id":{string(object_id)},"object_repr":{string(object_repr)},'
        f'"object_type":{string(object_type)},"policy_set_hash":{string(policy_set_hash)},'
        f'"reason":{string(reason)},"request_id":{string(request_id)},'
        f'"seq":{seq},"timestamp":{string(timestamp)},"v":{CANONICAL_VERSION}}}'
    )


def event_leaf_hash(fields: dict[str, Any]) -> bytes:
    return merkle.leaf_hash(canonical_bytes(fields))


def chain_hash(prev_hash: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(prev_hash + leaf).digest()
