"""The one audit writer. Every service calls ``record_event`` inside its own transaction."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Required, TypedDict

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from audit import canonical, context, hashing, merkle, scope, signing
from audit.models import Checkpoint, Event, Head, TreeNode
from audit.selectors import stored_node
from audit.snapshot import json_safe


class SystemActor:
    """A non-human actor (a job, a command, the demo); recorded by its label."""

    def __init__(self, label: str) -> None:
        if not label:
            raise ValueError("a system actor needs a label")
        self.label = label if label.startswith("system:") else f"system:{label}"

    def __repr__(self) -> str:
        return f"SystemActor({self.label!r})"


Actor = AbstractBaseUser | SystemActor


def actor_label(actor: Actor | AnonymousUser | None) -> str:
    if isinstance(actor, SystemActor):
        return actor.label
    if actor is None or isinstance(actor, AnonymousUser):
        return "anonymous"
    return actor.get_username()


class EventEntry(TypedDict, total=False):
    """One event for ``record_events``: ``record_event``'s keyword arguments, less the actor."""

    action: Required[str]
    target: models.Model | None
    object_type: str | None
    object_id: str | int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str
    policy_set_hash: str


_ENTRY_KEYS = frozenset(EventEntry.__annotations__)
# A statement carries at most this many events or tree nodes: far below PostgreSQL's 65,535
# parameters and small enough that a large batch never builds one huge SQL string.
_MAX_ROWS_PER_INSERT = 500


def _content(actor: Actor | AnonymousUser | None, ctx: context.RequestContext, entry: EventEntry) -> dict[str, Any]:
    """An event's recorded content, less seq and timestamp (which need the lock), with the
    RFC 8785 text of ``before`` and ``after`` (``before_text``, ``after_text``; ``None`` for
    ``None``).

    Built before the lock is taken, so that concurrent writers queue only for the
    hashing and the statements that must be serial.
    """
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise TypeError(f"unknown event entry keys: {', '.join(sorted(unknown))}")
    target = entry.get("target")
    object_type = entry.get("object_type")
    object_id = entry.get("object_id")
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id if object_id is not None else target.pk
    scope.note_audited(object_type or "", "" if object_id is None else object_id)
    before, after = entry.get("before"), entry.get("after")
    before = json_safe(before) if before is not None else None
    after = json_safe(after) if after is not None else None
    return {
        "actor_id": actor.pk if isinstance(actor, AbstractBaseUser) else None,
        "actor_label": actor_label(actor),
        "action": entry["action"],
        "object_type": object_type or "",
        "object_id": "" if object_id is None else str(object_id),
        "object_repr": str(target)[:300] if target is not None else "",
        "before": before,
        "after": after,
        "reason": entry.get("reason", ""),
        "request_id": ctx.request_id,
        # Stored the way the column normalises it, so the hash can be recomputed from the row.
        "client_address": clean_ipv6_address(ctx.client_address)
        if ctx.client_address and ":" in ctx.client_address
        else ctx.client_address,
        "policy_set_hash": entry.get("policy_set_hash", ""),
        "before_text": None if before is None else canonical.dumps(before).decode("utf-8"),
        "after_text": None if after is None else canonical.dumps(after).decode("utf-8"),
    }


def _canonical_event_text(fields: dict[str, Any], timestamp_text: str) -> str:
    """The event's canonical text (what its leaf hash covers), from its content."""
    try:
        text = hashing.canonical_text(
            fields["seq"],
            timestamp_text,
            fields["actor_id"],
            fields["actor_label"],
            fields["action"],
            fields["object_type"],
            fields["object_id"],
            fields["object_repr"],
            fields["before_text"] or "null",
            fields["after_text"] or "null",
            fields["reason"],
            fields["request_id"],
            fields["client_address"],
            fields["policy_set_hash"],
        )
        text.encode("utf-8")  # a lone surrogate: the general path raises what RFC 8785 raises
        return text
    except (TypeError, UnicodeEncodeError):
        return hashing.canonical_bytes(fields).decode("utf-8")


def _supports_update_returning(connection: BaseDatabaseWrapper) -> bool:
    if connection.vendor == "sqlite":
        return connection.Database.sqlite_version_info >= (3, 35)
    return connection.vendor == "postgresql"


def _lock_head(connection: BaseDatabaseWrapper, count: int) -> tuple[int, str, list[list[Any]]]:
    """Take the log's write lock, reserve ``count`` seqs, and return the head as it was.

    The UPDATE comes first: it takes PostgreSQL's row lock (and SQLite's write lock)
    before anything is read, so concurrent writers queue here and sequence numbers are
    dense and commit-ordered. One statement where the database can return the updated
    row, instead of an UPDATE and a SELECT. Rolled back with the transaction if anything
    later fails. Returns (size before, last entry hash, frontier).
    """
    qn = connection.ops.quote_name
    table = qn(Head._meta.db_table)
    size, last, frontier = qn("size"), qn("last_entry_hash"), qn("frontier")
    update = f"UPDATE {table} SET {size} = {size} + %s WHERE {qn('id')} = 1"
    returning = _supports_update_returning(connection)
    with connection.cursor() as cursor:
        for attempt in range(2):
            if returning:
                cursor.execute(f"{update} RETURNING {size}, {last}, {frontier}", [count])
                row = cursor.fetchone()
            else:
                cursor.execute(update, [count])
                row = None
                if cursor.rowcount == 1:
                    cursor.execute(f"SELECT {size}, {last}, {frontier} FROM {table} WHERE {qn('id')} = 1")
                    row = cursor.fetchone()
            if row is not None:
                new_size, last_entry_hash, raw_frontier = row
                frontier = json.loads(raw_frontier) if isinstance(raw_frontier, str | bytes) else raw_frontier
                return new_size - count, last_entry_hash, frontier
            if attempt == 0:
                _start_head()
    raise RuntimeError("the audit head row could not be locked")


def _start_head() -> None:
    """Create the head row of an empty log (a fresh or flushed database).

    A missing head beside existing events means the log was tampered with: refused.
    """
    if Event.objects.exists():
        raise RuntimeError("the audit head row is missing while events exist; run audit_verify")
    Head.objects.get_or_create(pk=1)


_EVENT_ROW = (
    "seq",
    "timestamp",
    "actor",
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
    "canonical",
)


def _event_columns(connection: BaseDatabaseWrapper) -> tuple[list[Field], list[str]]:
    """The event's fields in the writer's row order, and a placeholder for each.

    ``before`` and ``after`` are passed as their RFC 8785 text, stored as it is (text on
    SQLite, ``json`` on PostgreSQL: decision 0015); no second JSON encoding.
    """
    fields = [Event._meta.get_field(name) for name in _EVENT_ROW]
    if fields != list(Event._meta.concrete_fields):
        raise RuntimeError("audit.services._EVENT_ROW no longer matches the Event model's fields")
    placeholders = ["%s"] * len(fields)
    if connection.vendor == "postgresql":
        placeholders[8] = placeholders[9] = "%s::json"
    return fields, placeholders


def _fold_leaf(frontier: list[tuple[int, bytes]], leaf: bytes, index: int, closed: list[tuple[int, int, str]]) -> None:
    """Fold leaf ``index`` into the frontier, collecting every complete subtree it closes."""
    level, node = 0, leaf
    while frontier and frontier[-1][0] == level:
        _, left = frontier.pop()
        node = merkle.node_hash(left, node)
        level, index = level + 1, index >> 1
        closed.append((level, index, node.hex()))
    frontier.append((level, node))


Statement = tuple[str, list[Any]]


@functools.lru_cache(maxsize=256)
def _insert_sql(vendor: str, table: str, columns: tuple[str, ...], placeholders: tuple[str, ...], rows: int) -> str:
    """The text of a multi-row INSERT (built once per shape: every event writes the same)."""
    row_sql = "(" + ", ".join(placeholders) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([row_sql] * rows)


def _insert_statements(
    connection: BaseDatabaseWrapper,
    model: type[models.Model],
    fields: list[Field],
    rows: list[list[Any]],
    placeholders: list[str] | None = None,
) -> list[Statement]:
    """Multi-row INSERTs of already prepared values, in batches the backend accepts.

    Raw SQL rather than ``create``/``bulk_create``: the ORM's per-object machinery (model
    instances, signals, compiling the same INSERT again) was most of the writer's own cost.
    """
    if not rows:
        return []
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    columns = tuple(qn(f.column) for f in fields)
    shape = tuple(placeholders or ["%s"] * len(fields))
    batch = 1 if len(rows) == 1 else max(1, min(connection.ops.bulk_batch_size(fields, rows), _MAX_ROWS_PER_INSERT))
    statements = []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        sql = _insert_sql(connection.vendor, table, columns, shape, len(chunk))
        statements.append((sql, [value for row in chunk for value in row]))
    return statements


def _execute_writes(connection: BaseDatabaseWrapper, inserts: list[list[Statement]], update: Statement) -> None:
    """Run the INSERTs and the head UPDATE, in as few round trips as the backend allows.

    On PostgreSQL the last INSERTs ride along with the UPDATE as data-modifying CTEs, so a
    single event costs two round trips in all (lock, then this). SQLite runs in-process,
    where a statement costs little, and has no data-modifying CTEs.
    """
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            for sql, params in [*(s for per_table in inserts for s in per_table), update]:
                cursor.execute(sql, params)
            return
        # Only the last INSERT of each table joins the UPDATE, which keeps any one statement small.
        joined = []
        for per_table in inserts:
            for sql, params in per_table[:-1]:
                cursor.execute(sql, params)
            if per_table:
                joined.append(per_table[-1])
        ctes = [(f"w{i} AS ({sql})", params) for i, (sql, params) in enumerate(joined)]
        prefix = ("WITH " + ", ".join(cte for cte, _ in ctes) + " ") if ctes else ""
        cursor.execute(prefix + update[0], [p for _, params in ctes for p in params] + update[1])


def _append(actor: Actor | AnonymousUser | None, entries: Sequence[EventEntry]) -> list[Event]:
    """Append ``entries`` in order under one head lock.

    Everything that does not depend on the head is prepared before the lock is taken. On
    PostgreSQL the server appends them in one call (``audit_append``, migration 0008); elsewhere
    ``_append_in_python`` does the same work in the application.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("record_event must be called inside the transaction that makes the change")
    if not entries:
        return []
    ctx = context.current()
    contents = [_content(actor, ctx, entry) for entry in entries]
    if _appends_in_database(connection):
        return _append_in_database(connection, contents)
    return _append_in_python(connection, contents)


def _event_values(
    seq: int,
    timestamp: dt.datetime,
    content: dict[str, Any],
    leaf_hex: str,
    prev_hex: str,
    entry_hex: str,
    text: str,
) -> list[Any]:
    """An event's values in the order of Event's concrete fields (``_event_columns`` checks it),
    as Python holds them: for ``Event.from_db``, which builds the returned event positionally
    (much cheaper than keyword arguments) and marks it as saved in this database."""
    return [
        seq,
        timestamp,
        content["actor_id"],
        content["actor_label"],
        content["action"],
        content["object_type"],
        content["object_id"],
        content["object_repr"],
        content["before"],
        content["after"],
        content["reason"],
        content["request_id"],
        content["client_address"],
        content["policy_set_hash"],
        leaf_hex,
        prev_hex,
        entry_hex,
        text,
    ]


def _append_in_python(connection: BaseDatabaseWrapper, contents: list[dict[str, Any]]) -> list[Event]:
    """The append in the application: the reference implementation, and SQLite's.

    Statements: one UPDATE that locks and reads the head, multi-row INSERTs of the events and
    of the subtrees they close, one UPDATE of the head (on PostgreSQL the INSERTs travel with
    it).
    """
    event_fields, placeholders = _event_columns(connection)
    # Every entry shares the request's client address: adapted for the column once.
    address = contents[0]["client_address"]
    address_db = Event._meta.get_field("client_address").get_db_prep_save(address, connection)

    size, last_entry_hash, stored_frontier = _lock_head(connection, len(contents))
    timestamp = timezone.now()
    timestamp_text = hashing.format_timestamp(timestamp)
    timestamp_db = Event._meta.get_field("timestamp").get_db_prep_save(timestamp, connection)
    frontier = [(level, bytes.fromhex(h)) for level, h in stored_frontier]
    prev = bytes.fromhex(last_entry_hash)
    sha256 = hashlib.sha256
    events: list[Event] = []
    event_rows: list[list[Any]] = []
    closed: list[tuple[int, int, str]] = []
    for offset, content in enumerate(contents):
        seq = size + offset + 1
        fields: dict[str, Any] = {"seq": seq, "timestamp": timestamp, **content}
        text = _canonical_event_text(fields, timestamp_text)
        leaf = sha256(b"\x00" + text.encode("utf-8")).digest()
        entry_hash = sha256(prev + leaf).digest()
        leaf_hex, prev_hex, entry_hex = leaf.hex(), prev.hex(), entry_hash.hex()
        values = _event_values(seq, timestamp, content, leaf_hex, prev_hex, entry_hex, text)
        events.append(Event.from_db(connection.alias, None, values))
        # ... and as the database takes them: the timestamp and address adapted, the
        # snapshots as their RFC 8785 text.
        values[1], values[8], values[9], values[12] = (
            timestamp_db,
            content["before_text"],
            content["after_text"],
            address_db,
        )
        event_rows.append(values)
        _fold_leaf(frontier, leaf, seq - 1, closed)
        prev = entry_hash

    node_fields = [TreeNode._meta.get_field(name) for name in ("level", "index", "hash")]
    inserts = [
        _insert_statements(connection, Event, event_fields, event_rows, placeholders),
        _insert_statements(connection, TreeNode, node_fields, [list(node) for node in closed]),
    ]
    qn = connection.ops.quote_name
    new_frontier = [[level, node.hex()] for level, node in frontier]
    head_update = (
        f"UPDATE {qn(Head._meta.db_table)} SET {qn('last_entry_hash')} = %s, {qn('frontier')} = %s "
        f"WHERE {qn('id')} = 1",
        [prev.hex(), Head._meta.get_field("frontier").get_db_prep_save(new_frontier, connection)],
    )
    _execute_writes(connection, inserts, head_update)
    return events


# The database append finishes each event's canonical text from "seq" on (seq, timestamp and
# version are its last three keys in RFC 8785's order); it writes version 1.
_DATABASE_APPEND_VERSION = 1
_PROBE_TIMESTAMP = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_PROBE_TIMESTAMP_TEXT = hashing.format_timestamp(_PROBE_TIMESTAMP)
_PROBE_TAIL = f',"seq":0,"timestamp":"{_PROBE_TIMESTAMP_TEXT}","v":{_DATABASE_APPEND_VERSION}}}'
_APPEND_FUNCTION = "audit_append(jsonb, inet, timestamptz)"
_APPEND_SQL = "SELECT o_size, o_timestamp, o_leaf, o_prev, o_entry FROM audit_append(%s::jsonb, %s::inet, %s)"
# The content keys of an event's array for ``audit_append``, after its canonical prefix.
_DATABASE_COLUMNS = (
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "before_text",
    "after_text",
    "reason",
    "request_id",
    "policy_set_hash",
)
# JSON text of the events for the server: one string parameter, cheap to send.
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def _appends_in_database(connection: BaseDatabaseWrapper) -> bool:
    """Whether this database appends events itself: PostgreSQL with ``audit_append`` installed
    and UTF-8 text (the server hashes the text's UTF-8 bytes).

    Asked once per connection wrapper once the answer is yes; until then (a database being
    migrated) on every append, which keeps to the Python append.
    """
    if connection.vendor != "postgresql" or hashing.CANONICAL_VERSION != _DATABASE_APPEND_VERSION:
        return False
    if getattr(connection, "_audit_appends_in_database", False):
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regprocedure(%s) IS NOT NULL AND current_setting('server_encoding') = 'UTF8'",
            [_APPEND_FUNCTION],
        )
        available = bool(cursor.fetchone()[0])
    if available:
        connection._audit_appends_in_database = True
    return available


def _canonical_prefix(content: dict[str, Any]) -> str:
    """The event's canonical text up to ``,"seq":``, for the database to finish.

    Written by the same code as the whole text (and so refused for the same inputs), with a
    probe seq and timestamp that are then cut off.
    """
    text = _canonical_event_text({"seq": 0, "timestamp": _PROBE_TIMESTAMP, **content}, _PROBE_TIMESTAMP_TEXT)
    if not text.endswith(_PROBE_TAIL):
        raise RuntimeError("an event's canonical text does not end with its seq, timestamp and version")
    return text[: -len(_PROBE_TAIL)]


def _append_in_database(connection: BaseDatabaseWrapper, contents: list[dict[str, Any]]) -> list[Event]:
    """The append as one call of the server's ``audit_append`` per batch of up to 500 events.

    One round trip per event instead of two: the head is locked, and the seqs, timestamp,
    hashes, subtrees and new head computed, where the data is. The returned events are built
    from what the server says it wrote.
    """
    prefixes = [_canonical_prefix(content) for content in contents]
    address = contents[0]["client_address"]
    address_db = Event._meta.get_field("client_address").get_db_prep_save(address, connection)
    now = timezone.now()
    events: list[Event] = []
    with connection.cursor() as cursor:
        for start in range(0, len(contents), _MAX_ROWS_PER_INSERT):
            chunk = contents[start : start + _MAX_ROWS_PER_INSERT]
            payload = _to_json(
                [
                    [prefix, *(content[key] for key in _DATABASE_COLUMNS)]
                    for prefix, content in zip(prefixes[start : start + _MAX_ROWS_PER_INSERT], chunk, strict=True)
                ]
            )
            params = [payload, address_db, now]
            cursor.execute(_APPEND_SQL, params)
            row = cursor.fetchone()
            if row is None:
                _start_head()
                cursor.execute(_APPEND_SQL, params)
                row = cursor.fetchone()
                if row is None:
                    raise RuntimeError("the audit head row could not be locked")
            size, timestamp, leaves, prevs, entries = row
            tail = f'","v":{_DATABASE_APPEND_VERSION}}}'
            timestamp_text = hashing.format_timestamp(timestamp)
            for offset, content in enumerate(chunk):
                seq = size + offset + 1
                text = f'{prefixes[start + offset]},"seq":{seq},"timestamp":"{timestamp_text}{tail}'
                values = _event_values(seq, timestamp, content, leaves[offset], prevs[offset], entries[offset], text)
                events.append(Event.from_db(connection.alias, None, values))
    return events


def record_event(
    *,
    actor: Actor | AnonymousUser | None,
    action: str,
    target: models.Model | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    policy_set_hash: str = "",
) -> Event:
    """Append one event. Must run inside the caller's transaction (the change's own)."""
    entry: EventEntry = {
        "action": action,
        "target": target,
        "object_type": object_type,
        "object_id": object_id,
        "before": before,
        "after": after,
        "reason": reason,
        "policy_set_hash": policy_set_hash,
    }
    return _append(actor, [entry])[0]


def record_events(*, actor: Actor | AnonymousUser | None, entries: Sequence[EventEntry]) -> list[Event]:
    """Append many events, in order, under one head lock; for per-row auditing of bulk changes.

    The events are exactly those that as many ``record_event`` calls would write (same
    content, chain and tree), except that they share one timestamp: they are one change.
    Must run inside the caller's transaction, like ``record_event``.
    """
    return _append(actor, entries)


def _append_checkpoint_file(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()


@transaction.atomic
def checkpoint_create(*, actor: Actor) -> Checkpoint:
    """Sign the current tree head, store it, and append it to the checkpoint file.

    The checkpoint's own audit event is written first, so the signed tree includes it.
    The file line is appended once the transaction has committed.
    """
    key = signing.load_private_key()
    record_event(actor=actor, action="audit.checkpoint", object_type="audit.checkpoint")
    head = Head.objects.get(pk=1)
    root = merkle.root_hash(stored_node, head.size).hex()
    signed = signing.sign(key=key, tree_size=head.size, root_hash=root, timestamp=timezone.now())
    checkpoint = Checkpoint.objects.create(
        tree_size=signed.tree_size,
        root_hash=signed.root_hash,
        timestamp=signed.timestamp,
        key_id=signed.key_id,
        signature=signed.signature,
    )
    line = json.dumps(signed.as_json(), sort_keys=True)
    path = Path(settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE)
    transaction.on_commit(lambda: _append_checkpoint_file(path, line))
    return checkpoint


def checkpoint_if_grown(*, actor: Actor) -> Checkpoint | None:
    """A new checkpoint if events were appended since the latest one, else None.

    A checkpoint's own event is inside the tree it signs, so an idle log stays at the
    latest checkpoint's size and periodic runs add nothing to it.
    """
    latest = Checkpoint.objects.order_by("-tree_size", "-pk").values_list("tree_size", flat=True).first()
    size = Head.objects.filter(pk=1).values_list("size", flat=True).first() or 0
    if latest is not None and size <= latest:
        return None
    return checkpoint_create(actor=actor)
