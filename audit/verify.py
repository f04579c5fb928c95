"""Full verification of the audit log from its rows: the hash chain, the Merkle tree and the head.

Written for speed (issue 4: a million events at 100,000 a second or more): rows are read as
plain tuples through one server-side cursor, with no model instances or field converters;
the canonical bytes come from ``hashing.canonical_text`` with ``before``/``after``
canonicalised straight from their stored JSON text (``canonical.document_text``); the tree
is built a level at a time and the stored nodes are compared a level at a time. What the
shortcuts must equal (the ORM's values through ``hashing.canonical_bytes``) is checked by
tests/audit/test_verify_fast.py. Measurements: docs/benchmarks.md.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit import canonical, hashing, merkle, signing
from audit.models import Checkpoint, Event, Head, TreeNode

EVENT_COLUMNS = (
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
    "canonical",
)
_LEAF, _PREV, _ENTRY, _CANONICAL = 14, 15, 16, 17


@dataclass
class Verification:
    size: int = 0
    root: str = merkle.EMPTY_ROOT.hex()
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)

    unverifiable: list[str] = field(default_factory=list)
    checkpoints_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None and not self.unverifiable

    def fail(self, seq: int, problem: str) -> None:
        if self.first_bad_seq is None or seq < self.first_bad_seq:
            self.first_bad_seq = seq
        self.problems.append(f"seq {seq}: {problem}")


def event_rows(*, from_seq: int = 1, to_seq: int | None = None, chunk_size: int = 10_000) -> Iterator[tuple[Any, ...]]:
    """Event rows by seq as tuples of raw column values, in ``EVENT_COLUMNS`` order.

    No model instances and no field converters: ``row_canonical_bytes`` turns a row into
    exactly what ``hashing.canonical_bytes`` gives for the ORM's values, much faster.
    """
    quote = connection.ops.quote_name
    columns = [quote(Event._meta.get_field(name).column) for name in EVENT_COLUMNS]
    if connection.vendor == "sqlite":
        # An expression has no declared type, so the driver does not run its "datetime"
        # converter (a Python parse per row): we get the text Django wrote.
        columns[1] = f"CAST({columns[1]} AS TEXT)"
    seq = quote("seq")
    where, params = f"{seq} >= %s", [from_seq]
    if to_seq is not None:
        where, params = f"{where} AND {seq} <= %s", [from_seq, to_seq]
    sql = f"SELECT {', '.join(columns)} FROM {quote(Event._meta.db_table)} WHERE {where} ORDER BY {seq}"
    # A server-side cursor on PostgreSQL, so a large log is never held in memory at once.
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_size):
            yield from rows


def _timestamp_text(value: object, naive_is_utc: bool) -> str:
    """``format_timestamp`` of the datetime the ORM would give for this column value.

    ``naive_is_utc``: as for ``row_canonical_bytes``.
    """
    if type(value) is str:
        # SQLite holds Django's str() of the naive UTC datetime; for a year of four digits
        # that is the canonical form but for the "T" and the "Z" (and a missing fraction).
        if naive_is_utc and value[10:11] == " " and value[:1] not in ("0", "-"):
            if len(value) == 26 and value[19] == ".":
                return f"{value[:10]}T{value[11:]}Z"
            if len(value) == 19:
                return f"{value[:10]}T{value[11:]}.000000Z"
        # As the driver's converter and the field's would (sqlite3 backend).
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError(f"{value!r} is not a timestamp")
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, connection.timezone)
        return hashing.format_timestamp(parsed)
    if isinstance(value, dt.datetime):
        if value.tzinfo is dt.UTC and value.year >= 1000:
            return value.isoformat(timespec="microseconds")[:26] + "Z"
        return hashing.format_timestamp(value)
    raise ValueError(f"{value!r} is not a timestamp")


# Short documents repeat (a transition's {"status": "validated"}, a flag's before and
# after): their canonical text is a pure function of the stored text, so remember it.
_short_document_text = functools.lru_cache(maxsize=4096)(canonical.document_text)


def _json_text(value: object) -> str:
    """RFC 8785 text of the value ``JSONField.from_db_value`` would give for this column value."""
    if value is None:
        return "null"
    if type(value) is str:
        try:
            return _short_document_text(value) if len(value) <= 200 else canonical.document_text(value)
        except json.JSONDecodeError:
            pass  # the field hands back text that is not JSON as the string itself
    return canonical.dumps(value).decode("utf-8")


def _json_value(value: object) -> Any:
    """What ``JSONField.from_db_value`` gives for this column value."""
    if type(value) is not str:
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def naive_timestamps_are_utc() -> bool:
    """Whether naive timestamps in the database are UTC (SQLite's, with Django's defaults)."""
    return connection.timezone is dt.UTC


def row_canonical_bytes(row: tuple[Any, ...], naive_is_utc: bool) -> bytes:
    """The canonical bytes of the event in ``row`` (from ``event_rows``): the same as
    ``hashing.canonical_bytes`` of the values the ORM would give for it.

    ``naive_is_utc``: ``naive_timestamps_are_utc()``, looked up once by the caller (the
    connection is a thread-local lookup).
    """
    try:
        return hashing.canonical_text(
            row[0],
            _timestamp_text(row[1], naive_is_utc),
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            row[7],
            _json_text(row[8]),
            _json_text(row[9]),
            row[10],
            row[11],
            row[12],
            row[13],
        ).encode("utf-8")
    except (TypeError, UnicodeEncodeError):
        # A column of an unexpected type, or a lone surrogate: the general path decides
        # (and raises what RFC 8785 raises).
        fields = dict(zip(EVENT_COLUMNS, row, strict=True))
        fields["timestamp"] = parse_datetime(_timestamp_text(row[1], naive_is_utc))
        fields["before"], fields["after"] = _json_value(row[8]), _json_value(row[9])
        return hashing.canonical_bytes(fields)


# --- the fast path (docs/decisions/0011) ------------------------------------------------
#
# One query per range of seqs returns, per event: seq, the stored canonical text, the three
# hashes, and whether the event's other columns say exactly what the canonical text says,
# decided by the database in C:
#
# - SQLite: the canonical text is rebuilt from the columns with ``json_quote`` (JSON string
#   literals, as RFC 8785 writes them: tests/audit/test_verify_fast.py checks the two agree)
#   and the stored ``before``/``after`` text spliced in as it is (the writer stores their
#   RFC 8785 text), then compared byte for byte. Splicing is unambiguous only if neither
#   fragment contains the separator that follows ``after``: if the text after ``"after":``
#   reads the same with other fragments, one of them must hold ``,"before":`` (a JSON
#   string cannot: its quotes are escaped), so such rows go the thorough way. SQLite lets
#   any column hold any type: ``json_quote`` writes a value of another type as another
#   JSON type (an integer as a number, text as a string, NULL as null), so the text then
#   differs; the spliced and sliced columns have their types checked.
# - PostgreSQL: the same, with PostgreSQL's own functions: ``before``/``after`` are ``json``
#   columns, which keep the RFC 8785 text the writer sent (decision 0015), and ``to_json``
#   writes a string literal as RFC 8785 does (the same escapes: \b \t \n \f \r, \", \\ and
#   \u00xx in lower case for other control characters; everything else as it is); the same
#   splice guard. The timestamp is formatted by ``to_char`` for years 1000-9999 only (the
#   form ``hashing.format_timestamp`` writes there); anything else is NULL, hence unequal.
#   The client address is written by inet's output function (``format('%s', ...)``), as
#   the driver reads it: ``10.0.0.1``, where a cast to text would say ``10.0.0.1/32``.
#
# Either way, when the flag holds and the stored text hashes to the stored leaf hash, the
# columns hold the hashed content: altering any column (the canonical text included)
# fails one or the other. Python hashes the text and checks the chain; it decodes no JSON.

_SQLITE_FAST = """
SELECT seq, canonical, leaf_hash, prev_hash, entry_hash,
  typeof("before") IN ('text', 'null') AND typeof("after") IN ('text', 'null') AND typeof("timestamp") = 'text'
  AND instr(coalesce("before", ''), ',"before":') = 0 AND instr(coalesce("after", ''), ',"before":') = 0
  AND substr("timestamp", 11, 1) = ' ' AND substr("timestamp", 1, 1) NOT IN ('0', '-')
  AND canonical = printf(
    '{"action":%%s,"actor_id":%%s,"actor_label":%%s,"after":%%s,"before":%%s,"client_address":%%s,'
    || '"object_id":%%s,"object_repr":%%s,"object_type":%%s,"policy_set_hash":%%s,"reason":%%s,'
    || '"request_id":%%s,"seq":%%d,"timestamp":%%s,"v":1}',
    json_quote(action), json_quote(actor_id), json_quote(actor_label),
    coalesce("after", 'null'), coalesce("before", 'null'), json_quote(client_address),
    json_quote(object_id), json_quote(object_repr), json_quote(object_type), json_quote(policy_set_hash),
    json_quote(reason), json_quote(request_id), seq,
    json_quote(CASE
      WHEN length("timestamp") = 26 AND substr("timestamp", 20, 1) = '.'
        THEN substr("timestamp", 1, 10) || 'T' || substr("timestamp", 12) || 'Z'
      WHEN length("timestamp") = 19
        THEN substr("timestamp", 1, 10) || 'T' || substr("timestamp", 12) || '.000000Z'
    END))
FROM audit_event WHERE seq BETWEEN %s AND %s ORDER BY seq
"""

_POSTGRES_FAST = """
SELECT seq, canonical, leaf_hash, prev_hash, entry_hash,
  strpos(coalesce("before"::text, ''), ',"before":') = 0 AND strpos(coalesce("after"::text, ''), ',"before":') = 0
  AND canonical = '{"action":' || to_json(action)::text || ',"actor_id":' || coalesce(actor_id::text, 'null')
    || ',"actor_label":' || to_json(actor_label)::text
    || ',"after":' || coalesce("after"::text, 'null') || ',"before":' || coalesce("before"::text, 'null')
    || ',"client_address":'
    || CASE WHEN client_address IS NULL THEN 'null' ELSE to_json(format('%%s', client_address))::text END
    || ',"object_id":' || to_json(object_id)::text || ',"object_repr":' || to_json(object_repr)::text
    || ',"object_type":' || to_json(object_type)::text || ',"policy_set_hash":' || to_json(policy_set_hash)::text
    || ',"reason":' || to_json(reason)::text || ',"request_id":' || to_json(request_id)::text
    || ',"seq":' || seq::text
    || ',"timestamp":' || to_json(CASE
      WHEN "timestamp" >= '1000-01-01 00:00:00+00' AND "timestamp" < '10000-01-01 00:00:00+00'
        THEN to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END)::text
    || ',"v":1}'
FROM audit_event WHERE seq BETWEEN %s AND %s ORDER BY seq
"""


def _fast_sql() -> str | None:
    """The fast path's query for this database, or None where there is none."""
    if connection.vendor == "postgresql":
        return _POSTGRES_FAST
    if connection.vendor == "sqlite" and naive_timestamps_are_utc():
        return _SQLITE_FAST
    return None


_NODES_SQL = (
    'SELECT "index", hash FROM audit_tree_node WHERE level = %s AND "index" >= %s AND "index" <= %s ORDER BY "index"'
)

# A range's outcome: the hashes of its complete subtrees, concatenated, one bytes object
# per level from the leaves (level 0) up; the stored prev_hash of its first event; the
# entry hash of its last.
_RangeOutcome = tuple[list[bytes], str, str]


def _fast_range(first: int, last: int, height: int) -> _RangeOutcome | None:
    """Check the events ``first``..``last`` (``first - 1`` a multiple of ``2**height``, at
    most ``2**height`` events) and the stored subtrees within them the fast way. Returns a
    ``_RangeOutcome``, or None if anything at all does not hold (the caller then checks the
    thorough way).

    Every seq must be there, the database's flag must hold for every row, every stored
    text must hash to its leaf hash, every entry hash must be SHA-256(prev_hash || leaf),
    every prev_hash must be the entry hash before it, and every complete subtree of up to
    ``2**height`` leaves inside the range must be stored with the hash its leaves give.
    Runs in the worker processes too, on their own connections.
    """
    sql = _fast_sql()
    if sql is None:
        return None
    sha256 = hashlib.sha256
    try:
        # A savepoint inside a transaction: text that is not JSON makes PostgreSQL's cast
        # fail, which must not abort the caller's transaction.
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                # Read the file through a memory map rather than a read() per page: a
                # third less time per row on a large log. This connection only.
                cursor.execute("PRAGMA mmap_size = 2147418112")
            cursor.execute(sql, [first, last])
            rows = cursor.fetchall()
            if len(rows) != last - first + 1 or rows[0][0] != first or rows[-1][0] != last:
                return None  # seqs are unique and ordered: the right count and ends means all of them
            _, texts, leaf_hexes, prev_hexes, entry_hexes, flags = zip(*rows, strict=True)
            del rows
            if not all(flags):
                return None
            leaves = [sha256(b"\x00" + text.encode("utf-8")).digest() for text in texts]
            del texts
            if list(map(bytes.hex, leaves)) != list(leaf_hexes):
                return None
            pairs = zip(prev_hexes, leaves, strict=True)
            entries = [sha256(bytes.fromhex(prev) + leaf).digest() for prev, leaf in pairs]
            if list(map(bytes.hex, entries)) != list(entry_hexes) or prev_hexes[1:] != entry_hexes[:-1]:
                return None
            levels = [b"".join(leaves)]
            level, offset = leaves, first - 1
            for number in range(1, height + 1):
                # An odd last node has no pair within the range yet: not a complete subtree.
                pairs = zip(level[::2], level[1::2], strict=False)
                level = [sha256(b"\x01" + left + right).digest() for left, right in pairs]
                if not level:
                    break
                low = offset >> number
                cursor.execute(_NODES_SQL, [number, low, low + len(level) - 1])
                stored = cursor.fetchall()
                if [index for index, _ in stored] != list(range(low, low + len(level))):
                    return None
                if [value for _, value in stored] != list(map(bytes.hex, level)):
                    return None
                levels.append(b"".join(level))
        return levels, prev_hexes[0], entry_hexes[-1]
    except Exception:  # a type the checks did not expect, text that is not JSON, ...
        return None


def _fast_range_task(bounds: tuple[int, int, int]) -> _RangeOutcome | None:
    return _fast_range(*bounds)


def _reads_in_other_processes() -> bool:
    """Whether forked processes with connections of their own see what this one sees:
    not inside a transaction (uncommitted rows), not an in-memory SQLite database."""
    if connection.in_atomic_block:
        return False
    return not (connection.vendor == "sqlite" and connection.is_in_memory_db())


class _StitchedTree:
    """The log's tree from the ranges' subtrees (levels up to ``height``) and the tree
    above them, built from the ranges' roots; the part of ``merkle.MemoryTree`` that the
    head and checkpoint checks use."""

    def __init__(self, outcomes: list[list[bytes]], height: int) -> None:
        self._ranges = outcomes
        self._height = height
        self.size = sum(len(levels[0]) for levels in outcomes) // merkle.HASH_SIZE
        full = [levels[height] for levels in outcomes if len(levels) > height and len(levels[height])]
        self._upper = merkle.MemoryTree.from_leaf_hashes(full)

    def node(self, level: int, index: int) -> bytes:
        if level > self._height:
            return self._upper.node(level - self._height, index)
        shift = self._height - level
        levels = self._ranges[index >> shift]
        offset = (index - ((index >> shift) << shift)) * merkle.HASH_SIZE
        value = levels[level][offset : offset + merkle.HASH_SIZE] if level < len(levels) else b""
        if len(value) != merkle.HASH_SIZE:
            raise merkle.ProofError(f"no complete subtree at level {level}, index {index}")
        return value

    def root(self, tree_size: int | None = None) -> bytes:
        return merkle.root_hash(self.node, self.size if tree_size is None else tree_size)

    def frontier(self) -> list[tuple[int, bytes]]:
        out, start = [], 0
        for level in reversed(range(self.size.bit_length())):
            if self.size >> level & 1:
                out.append((level, self.node(level, start >> level)))
                start += 1 << level
        return out

    def upper_levels(self) -> Iterator[tuple[int, list[bytes]]]:
        """The levels above the ranges' own, as (level, hashes by index)."""
        for number in range(1, self._upper.height):
            yield self._height + number, self._upper.level_hashes(number)


def default_workers() -> int:
    """Worker processes for a large log: one per CPU (at most 4); on PostgreSQL one more,
    because each worker waits for the server's share of its range, which runs on the
    same CPUs (docs/benchmarks.md)."""
    cpus = os.cpu_count() or 1
    extra = 1 if connection.vendor == "postgresql" else 0
    return min(4, cpus) + extra


def verify_log_fast(*, chunk_size: int = 8192, workers: int = 1) -> Verification | None:
    """The whole verification the fast way, or None if anything does not hold there."""
    if _fast_sql() is None:
        return None
    table = connection.ops.quote_name(Event._meta.db_table)
    nodes_table = connection.ops.quote_name(TreeNode._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(seq), MAX(seq) FROM {table}")
        low, high = cursor.fetchone()
    if low is None:
        high = 0
    elif low != 1:
        return None
    # Ranges of 2**height events, aligned so that each holds whole subtrees.
    height = max(1, chunk_size).bit_length() - 1
    span = 1 << height
    ranges = [(first, min(first + span - 1, high), height) for first in range(1, high + 1, span)]
    outcomes: list[list[bytes]] = []
    prev_hex = hashing.GENESIS_HASH.hex()

    def take(outcome: _RangeOutcome | None) -> bool:
        nonlocal prev_hex
        if outcome is None or outcome[1] != prev_hex:
            return False
        outcomes.append(outcome[0])
        prev_hex = outcome[2]
        return True

    parallel = workers > 1 and len(ranges) > 1 and "fork" in multiprocessing.get_all_start_methods()
    if parallel and _reads_in_other_processes():
        # Each worker opens its own connection: none may inherit this one.
        connections.close_all()
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for outcome in pool.imap(_fast_range_task, ranges):
                if not take(outcome):
                    pool.terminate()
                    return None
    else:
        for bounds in ranges:
            if not take(_fast_range(*bounds)):
                return None

    result = Verification()
    tree = _StitchedTree(outcomes, height)
    result.size = tree.size
    result.root = tree.root().hex()
    # The stored subtrees above the ranges' own, and no stored node anywhere else: the
    # ranges checked theirs, so the total count settles it.
    with connection.cursor() as cursor:
        for level, hashes in tree.upper_levels():
            cursor.execute(_NODES_SQL, [level, 0, len(hashes) - 1])
            stored = cursor.fetchall()
            if [index for index, _ in stored] != list(range(len(hashes))):
                return None
            if [value for _, value in stored] != list(map(bytes.hex, hashes)):
                return None
        cursor.execute(f"SELECT COUNT(*) FROM {nodes_table}")
        if cursor.fetchone()[0] != sum(tree.size >> level for level in range(1, tree.size.bit_length())):
            return None
    _verify_head(result, tree, prev_hex)
    _verify_checkpoints(result, tree)
    return result


# (leaf hashes concatenated, last entry hash, first failing seq or None, its problems)
_Checked = tuple[bytes, str, int | None, list[str]]


def _check_rows(
    rows: list[tuple[Any, ...]], prev_hex: str, naive_is_utc: bool
) -> tuple[bytes, str, int | None, list[str]]:
    """Check consecutive rows whose first should link to ``prev_hex``: each row's canonical
    bytes against its leaf hash, and the chain. Returns the leaf hashes (concatenated), the
    last entry hash, and the first failing seq with its problems (``None, []`` if none).

    A pure function of its arguments, so chunks can be checked in worker processes. The
    ``prev_hex`` the caller passes is the stored entry hash of the row before; if that row
    turns out intact it equals the computed one, and if not, the failure there comes first.
    """
    sha256 = hashlib.sha256
    leaves: list[bytes] = []
    try:
        prev = bytes.fromhex(prev_hex)
    except ValueError:
        return b"", prev_hex, rows[0][0], ["the previous entry hash is not a hash"]
    for row in rows:
        seq = row[0]
        try:
            data = row_canonical_bytes(row, naive_is_utc)
        except Exception as exc:  # any column the ORM could not have read either
            return b"".join(leaves), prev_hex, seq, [f"content cannot be read or canonicalised ({exc!r})"]
        leaf = sha256(b"\x00" + data).digest()
        entry = sha256(prev + leaf).digest()
        entry_hex = entry.hex()
        problems = []
        if leaf.hex() != row[_LEAF]:
            problems.append("content does not match its leaf hash (event altered)")
        stored = row[_CANONICAL]
        if type(stored) is not str or stored.encode("utf-8", "surrogatepass") != data:
            problems.append("the stored canonical text does not match the event's columns (event altered)")
        if row[_PREV] != prev_hex:
            problems.append("prev_hash does not link to the previous entry")
        if row[_ENTRY] != entry_hex:
            problems.append("entry_hash does not match the chain")
        if problems:
            return b"".join(leaves), prev_hex, seq, problems
        leaves.append(leaf)
        prev, prev_hex = entry, entry_hex
    return b"".join(leaves), prev_hex, None, []


def _chunks(chunk_size: int, gap: list[tuple[int, int]]) -> Iterator[tuple[list[tuple[Any, ...]], str]]:
    """Runs of consecutive rows from seq 1, each with the stored entry hash before it; stops
    at the first missing or extra seq, noted in ``gap`` as (expected, found)."""
    rows: list[tuple[Any, ...]] = []
    prev_hex = hashing.GENESIS_HASH.hex()
    expected = 1
    for row in event_rows(chunk_size=chunk_size):
        if row[0] != expected:
            gap.append((expected, row[0]))
            break
        rows.append(row)
        expected += 1
        if len(rows) == chunk_size:
            yield rows, prev_hex
            prev_hex, rows = rows[-1][_ENTRY], []
    if rows:
        yield rows, prev_hex


def verify_log(*, chunk_size: int = 8192, workers: int = 1) -> Verification:
    """Recompute every leaf, the chain and the tree; report the first seq that does not hold.

    First the fast path (``verify_log_fast``): each event's stored canonical text is
    hashed, and the database checks in the same query that the event's columns say exactly
    what that text says; the stored subtrees are checked range by range; with ``workers``
    > 1 (and a database other processes can read: not inside a transaction, not SQLite in
    memory) the ranges are checked by that many forked processes, each with its own
    connection. If anything at all does not hold
    there, the log is checked again the thorough way (``_verify_rows``: every canonical text
    rebuilt from the columns' decoded values, as before decision 0011), which finds and
    words the first problem; so the outcome of a failing log is the same as before, and
    the fast path only ever has to say "all of these rows are intact".
    """
    fast = verify_log_fast(chunk_size=chunk_size, workers=workers)
    return fast if fast is not None else _verify_rows(chunk_size=chunk_size, workers=workers)


def _verify_rows(*, chunk_size: int = 10_000, workers: int = 1) -> Verification:
    """The thorough path: rebuild every event's canonical text from its columns' decoded
    values, check it against the stored text, the leaf hash and the chain.

    ``workers`` > 1 canonicalises and hashes chunks of rows in that many forked processes
    while this one reads the database (the workers never touch it). Rows are checked in
    the same way and the results taken in order, so the outcome is the same as with one.
    """
    result = Verification()
    naive_is_utc = naive_timestamps_are_utc()
    gap: list[tuple[int, int]] = []
    blobs: list[bytes] = []
    prev_hex = hashing.GENESIS_HASH.hex()

    def take(outcome: _Checked) -> bool:
        nonlocal prev_hex
        blob, prev_hex, bad_seq, problems = outcome
        blobs.append(blob)
        for problem in problems:
            result.fail(bad_seq or 0, problem)
        return bad_seq is None

    chunks = _chunks(chunk_size, gap)
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        # Forked: the workers inherit the loaded code and settings. Bounded look-ahead keeps
        # memory flat; reading stays in this thread (Django connections are per thread).
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pending: collections.deque[Any] = collections.deque()
            for rows, before in chunks:
                pending.append(pool.apply_async(_check_rows, (rows, before, naive_is_utc)))
                if len(pending) > 2 * workers and not take(pending.popleft().get()):
                    break
            while pending and result.first_bad_seq is None:
                take(pending.popleft().get())
    else:
        for rows, before in chunks:
            if not take(_check_rows(rows, before, naive_is_utc)):
                break
    chunks.close()
    if result.first_bad_seq is None and gap:
        expected, found = gap[0]
        result.fail(expected, f"sequence jumps from {expected - 1} to {found}: events missing or inserted")
    if result.first_bad_seq is not None:
        return result
    _verify_tree_and_head(result, blobs, prev_hex, chunk_size)
    return result


def _verify_tree_and_head(result: Verification, blobs: list[bytes], prev_hex: str, chunk_size: int) -> None:
    """With the leaves and the chain intact: the tree, the head, the stored subtrees and the checkpoints."""
    blob = b"".join(blobs)
    leaves = [blob[i : i + merkle.HASH_SIZE] for i in range(0, len(blob), merkle.HASH_SIZE)]
    blobs.clear()
    del blob
    tree = merkle.MemoryTree.from_leaf_hashes(leaves)
    del leaves
    result.size = tree.size
    result.root = tree.root().hex()

    _verify_head(result, tree, prev_hex)

    _verify_tree_nodes(result, tree, chunk_size)
    _verify_checkpoints(result, tree)


def _verify_head(result: Verification, tree: merkle.MemoryTree | _StitchedTree, prev_hex: str) -> None:
    head = Head.objects.get(pk=1)
    if head.size != tree.size:
        result.fail(min(head.size, tree.size) + 1, f"the head counts {head.size} events but {tree.size} are stored")
    elif head.last_entry_hash != prev_hex:
        result.fail(tree.size, "the head's last entry hash does not match the chain")
    elif head.frontier != [[level, h.hex()] for level, h in tree.frontier()]:
        result.fail(tree.size, "the head's Merkle frontier does not match the events")


def _node_rows(where: str, params: list[int], chunk_size: int) -> Iterator[tuple[int, int, str]]:
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quote('level')}, {quote('index')}, {quote('hash')} FROM {quote(TreeNode._meta.db_table)} "
        f"WHERE {where} ORDER BY {quote('level')}, {quote('index')}"
    )
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_size):
            yield from rows


def _verify_tree_nodes(result: Verification, tree: merkle.MemoryTree, chunk_size: int) -> None:
    """Every complete subtree above the leaves must be stored, once, with the hash the events give."""
    level_column = connection.ops.quote_name("level")
    stored = 0
    for level in range(1, tree.height):
        rows = list(_node_rows(f"{level_column} = %s", [level], chunk_size))
        stored += len(rows)
        expected = [h.hex() for h in tree.level_hashes(level)]
        # One comparison of whole lists in C when all is well; row by row only to say where not.
        if [index for _, index, _ in rows] == list(range(len(expected))) and [h for _, _, h in rows] == expected:
            continue
        present = set()
        for _, index, value in rows:
            present.add(index)
            if not (0 <= index < len(expected) and expected[index] == value):
                result.fail((index << level) + 1, f"stored tree node {level}/{index} does not match the events")
        for index in sorted(set(range(len(expected))) - present):
            result.fail((index << level) + 1, f"tree node {level}/{index} is not stored")
    # Nodes where the tree has none (above its height, or at level 0 which lives on the events).
    for level, index, _ in _node_rows(f"{level_column} >= %s OR {level_column} < 1", [tree.height], chunk_size):
        stored += 1
        result.fail((index << level) + 1, f"stored tree node {level}/{index} does not match the events")
    expected_nodes = sum(tree.size >> level for level in range(1, tree.size.bit_length()))
    if stored != expected_nodes:
        result.fail(tree.size, f"{stored} tree nodes stored, {expected_nodes} expected")


def stored_checkpoints(result: Verification) -> list[tuple[str, signing.SignedTreeHead]]:
    """Checkpoints from the database and the checkpoint file, with where each came from;
    unreadable file lines go to ``result.unverifiable``."""
    heads = [
        (
            "database",
            signing.SignedTreeHead(c.tree_size, c.root_hash, c.timestamp, c.key_id, c.signature),
        )
        for c in Checkpoint.objects.order_by("tree_size", "pk")
    ]
    path = Path(settings.GOVERNANCE_AUDIT_CHECKPOINT_FILE)
    if path.exists():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                head = signing.SignedTreeHead.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                result.unverifiable.append(f"{path}:{number}: not a checkpoint ({exc})")
                continue
            heads.append((f"{path.name}:{number}", head))
    return heads


def _verify_checkpoints(result: Verification, tree: merkle.MemoryTree | _StitchedTree) -> None:
    """Every checkpoint must be signed by our key and describe a prefix of the current tree."""
    heads = stored_checkpoints(result)
    if not heads:
        return
    try:
        public_key = signing.load_private_key().public_key()
    except ImproperlyConfigured as exc:
        result.unverifiable.append(f"checkpoint signatures cannot be checked: {exc}")
        public_key = None
    matching_sizes = [0]
    for source, head in sorted(heads, key=lambda item: item[1].tree_size):
        result.checkpoints_checked += 1
        if public_key is not None and (
            head.key_id != signing.key_id(public_key) or not signing.signature_valid(public_key, head)
        ):
            result.fail(max(1, min(head.tree_size, tree.size)), f"checkpoint {source} has an invalid signature")
            continue
        if head.tree_size > tree.size:
            result.fail(
                tree.size + 1,
                f"checkpoint {source} signed {head.tree_size} events but the log holds {tree.size}: the log was cut",
            )
        elif head.tree_size and tree.root(head.tree_size).hex() != head.root_hash:
            result.fail(
                max(matching_sizes) + 1,
                f"checkpoint {source} at size {head.tree_size} has a different root: events up to there were rewritten",
            )
        else:
            matching_sizes.append(head.tree_size)
