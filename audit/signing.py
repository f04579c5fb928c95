"""Ed25519 keys and signed checkpoints (signed tree heads) of the audit log."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit.hashing import format_timestamp

ORIGIN = "model-risk-governance audit log"


def _key_path() -> Path:
    return Path(settings.GOVERNANCE_AUDIT_SIGNING_KEY_FILE)


def load_private_key() -> Ed25519PrivateKey:
    """The signing key from GOVERNANCE_AUDIT_SIGNING_KEY (PEM) or its file; clear error if absent."""
    pem = settings.GOVERNANCE_AUDIT_SIGNING_KEY
    if not pem:
        path = _key_path()
        if not path.exists():
            raise ImproperlyConfigured(
                f"no audit signing key: set GOVERNANCE_AUDIT_SIGNING_KEY or create {path} "
                "(python manage.py audit_keygen)"
            )
        pem = path.read_text(encoding="utf-8")
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except ValueError as exc:
        raise ImproperlyConfigured(f"the audit signing key is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("the audit signing key must be an Ed25519 key")
    return key


def generate_key_file(path: Path | None = None) -> Path:
    """Write a new Ed25519 key (mode 600) unless one exists; returns its path."""
    path = path or _key_path()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public_key(key)).hexdigest()


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key_pem(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ``ValueError`` if it is not one."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def signed_message(*, tree_size: int, root_hash: str, timestamp: dt.datetime) -> bytes:
    return rfc8785.dumps(
        {"origin": ORIGIN, "tree_size": tree_size, "root_hash": root_hash, "timestamp": format_timestamp(timestamp)}
    )


@dataclass(frozen=True)
class SignedTreeHead:
    tree_size: int
    root_hash: str
    timestamp: dt.datetime
    key_id: str
    signature: str

    @classmethod
    def from_json(cls, data: Any) -> SignedTreeHead:
        """The inverse of ``as_json``; ``ValueError`` (or ``KeyError``, ``TypeError``) if it is not one."""
        timestamp = dt.datetime.strptime(data["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        tree_size = data["tree_size"]
        if type(tree_size) is not int or tree_size < 0:
            raise ValueError(f"tree_size {tree_size!r} is not a size")
        root, key, signature = data["root_hash"], data["key_id"], data["signature"]
        if not (isinstance(root, str) and isinstance(key, str) and isinstance(signature, str)):
            raise TypeError("root_hash, key_id and signature must be strings")
        return cls(tree_size, root, timestamp, key, signature)

    def as_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": format_timestamp(self.timestamp),
            "key_id": self.key_id,
            "signature": self.signature,
        }


def sign(*, key: Ed25519PrivateKey, tree_size: int, root_hash: str, timestamp: dt.datetime) -> SignedTreeHead:
    message = signed_message(tree_size=tree_size, root_hash=root_hash, timestamp=timestamp)
    return SignedTreeHead(
        tree_size=tree_size,
        root_hash=root_hash,
        timestamp=timestamp,
        key_id=key_id(key.public_key()),
        signature=base64.b64encode(key.sign(message)).decode(),
    )


def signature_valid(public_key: Ed25519PublicKey, head: SignedTreeHead) -> bool:
    message = signed_message(tree_size=head.tree_size, root_hash=head.root_hash, timestamp=head.timestamp)
    try:
        public_key.verify(base64.b64decode(head.signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True
