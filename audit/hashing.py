"""Canonical bytes and hashes of audit events.

Canonical bytes are RFC 8785 (JSON Canonicalization Scheme) of the event's recorded
content; the leaf hash is RFC 9162's SHA-256(0x00 || bytes); the hash chain links each
entry to the one before: entry_hash = SHA-256(prev_hash || leaf_hash).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import rfc8785

from audit import merkle

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
    return rfc8785.dumps(canonical_content(fields))


def event_leaf_hash(fields: dict[str, Any]) -> bytes:
    return merkle.leaf_hash(canonical_bytes(fields))


def chain_hash(prev_hash: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(prev_hash + leaf).digest()
