"""The active policy set and compiled sets, cached by content hash. Reads only.

The set in force is the one activated in the database (``PolicySet.is_active``), compiled
from the files stored with it, not whatever is on disk now: editing or breaking a file
changes nothing until a compliance officer activates the directory again, and then only
if it loads. Compiling is done once per process and set; a stored set whose files no
longer compile to its recorded hash is refused (``PolicyIntegrityError``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

from governance.errors import Conflict
from governance.models import PolicySet
from governance.policy.engine import CompiledPolicySet, SourceFile
from governance.policy.loader import compile_files

_CACHE_SIZE = 16
_cache: OrderedDict[str, CompiledPolicySet] = OrderedDict()
_lock = threading.Lock()


class PolicyIntegrityError(Exception):
    """A stored policy set does not compile to the hash it was stored under."""


class NoActivePolicySet(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "no policy set is active: a compliance officer activates one with "
            "`manage.py policy_activate --user NAME` (docs/policies.md)"
        )


def remember(compiled: CompiledPolicySet) -> CompiledPolicySet:
    with _lock:
        _cache[compiled.content_hash] = compiled
        _cache.move_to_end(compiled.content_hash)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def stored_files(compiled: CompiledPolicySet) -> list[dict[str, Any]]:
    """The files of a set as ``PolicySet.files`` keeps them."""
    return [
        {
            "directory": source.directory,
            "name": source.name,
            "sha256": hashlib.sha256(source.text.encode("utf-8")).hexdigest(),
            "text": source.text,
        }
        for source in compiled.files
    ]


def compile_stored(files: list[dict[str, Any]], content_hash: str, *, use_cache: bool = True) -> CompiledPolicySet:
    """Compile stored files and check they still make the set ``content_hash``."""
    if use_cache:
        with _lock:
            cached = _cache.get(content_hash)
        if cached is not None:
            return cached
    compiled = compile_files([SourceFile(f["directory"], f["name"], f["text"]) for f in files])
    if compiled.content_hash != content_hash:
        raise PolicyIntegrityError(
            f"the stored files of policy set {content_hash} compile to {compiled.content_hash}: "
            "the stored set was altered"
        )
    return remember(compiled)


def compiled_set(policy_set: PolicySet, *, verify: bool = False) -> CompiledPolicySet:
    """The compiled form of a stored set: from the cache when possible, unless ``verify``,
    which compiles the stored files again and checks their hash (what a replay does)."""
    if not verify:
        with _lock:
            cached = _cache.get(policy_set.content_hash)
        if cached is not None:
            return cached
    files = PolicySet.objects.filter(pk=policy_set.pk).values_list("files", flat=True).get()
    return compile_stored(files, policy_set.content_hash, use_cache=not verify)


def active_policy_set() -> tuple[PolicySet, CompiledPolicySet] | None:
    """The set in force and its compiled form, or None when none was ever activated.

    One query for the row (without its files) when the set is already compiled in this
    process.
    """
    row = PolicySet.objects.filter(is_active=True).defer("files").first()
    if row is None:
        return None
    return row, compiled_set(row)


def require_active_policy_set() -> tuple[PolicySet, CompiledPolicySet]:
    active = active_policy_set()
    if active is None:
        raise NoActivePolicySet()
    return active
