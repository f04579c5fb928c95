"""``audit_append`` with fewer statements per call (docs/decisions/0017).

The same result, byte for byte, as 0008's version and as the Python append
(tests/audit/test_append_in_database.py); measured with pgbench at about 13% less server
time per single-event call with ``synchronous_commit=off`` and 5% with it on, where the WAL
flush takes the rest (docs/benchmarks.md):

- the previous event's timestamp is read in the statement that locks the head, not in a
  statement of its own;
- the Merkle frontier is folded in the head's own ``jsonb`` (pop and push at its end, which
  PL/pgSQL evaluates as simple expressions) instead of being unpacked into arrays by one
  query and packed back by a subquery of the head's UPDATE.

Reversed, 0008's version comes back.
"""

import importlib

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION audit_append(p_events jsonb, p_client_address inet, p_now timestamptz)
RETURNS TABLE (o_size bigint, o_timestamp timestamptz, o_leaf text[], o_prev text[], o_entry text[])
LANGUAGE plpgsql AS $$
#variable_conflict error
DECLARE
  v_count integer;
  v_event jsonb;
  v_prefix text[] := '{}';
  v_actor_id bigint[] := '{}';
  v_actor_label text[] := '{}';
  v_action text[] := '{}';
  v_object_type text[] := '{}';
  v_object_id text[] := '{}';
  v_object_repr text[] := '{}';
  v_before text[] := '{}';
  v_after text[] := '{}';
  v_reason text[] := '{}';
  v_request_id text[] := '{}';
  v_policy_set_hash text[] := '{}';
  v_size bigint;
  v_last text;
  v_frontier jsonb;
  v_depth integer;
  v_last_ts timestamptz;
  v_ts timestamptz;
  v_ts_text text;
  v_prev bytea;
  v_leaf bytea;
  v_node bytea;
  v_level integer;
  v_index bigint;
  v_texts text[] := '{}';
  v_leaves text[] := '{}';
  v_prevs text[] := '{}';
  v_entries text[] := '{}';
  v_node_levels integer[] := '{}';
  v_node_indexes bigint[] := '{}';
  v_node_hashes text[] := '{}';
  v_closed integer := 0;
BEGIN
  -- One JSON array per event, in this order (audit.services._append_in_database): one
  -- parameter instead of an array per column, which the driver would quote slowly.
  IF jsonb_typeof(p_events) IS DISTINCT FROM 'array' OR p_now IS NULL THEN
    RAISE EXCEPTION 'audit_append: the events must be a JSON array, and a time is needed';
  END IF;
  v_count := jsonb_array_length(p_events);
  IF v_count = 0 THEN
    RAISE EXCEPTION 'audit_append needs at least one event';
  END IF;
  FOR i IN 1 .. v_count LOOP
    v_event := p_events -> (i - 1);
    IF jsonb_typeof(v_event) IS DISTINCT FROM 'array' OR jsonb_array_length(v_event) <> 12
       OR jsonb_typeof(v_event -> 0) IS DISTINCT FROM 'string' THEN
      RAISE EXCEPTION 'audit_append: every event must be an array of its 12 values, starting with its text';
    END IF;
    v_prefix[i] := v_event ->> 0;
    v_actor_id[i] := (v_event ->> 1)::bigint;
    v_actor_label[i] := v_event ->> 2;
    v_action[i] := v_event ->> 3;
    v_object_type[i] := v_event ->> 4;
    v_object_id[i] := v_event ->> 5;
    v_object_repr[i] := v_event ->> 6;
    v_before[i] := v_event ->> 7;
    v_after[i] := v_event ->> 8;
    v_reason[i] := v_event ->> 9;
    v_request_id[i] := v_event ->> 10;
    v_policy_set_hash[i] := v_event ->> 11;
  END LOOP;

  -- The log's write lock: concurrent appenders queue here, so seqs are dense and commit-ordered.
  SELECT h.size, h.last_entry_hash, h.frontier,
         (SELECT e."timestamp" FROM audit_event e WHERE e.seq = h.size)
    INTO v_size, v_last, v_frontier, v_last_ts
    FROM audit_head h WHERE h.id = 1 FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;  -- no head: the caller decides whether one may be started
  END IF;

  v_ts := p_now;
  IF v_last_ts > v_ts THEN
    v_ts := v_last_ts;
  END IF;
  -- hashing.format_timestamp's form, which to_char writes alike only for four-digit years.
  IF v_ts < '1000-01-01T00:00:00Z' OR v_ts >= '10000-01-01T00:00:00Z' THEN
    RAISE EXCEPTION 'audit_append: the timestamp is outside the years 1000-9999';
  END IF;
  v_ts_text := to_char(v_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

  v_depth := jsonb_array_length(v_frontier);
  v_prev := decode(v_last, 'hex');

  FOR i IN 1 .. v_count LOOP
    v_texts[i] := v_prefix[i] || ',"seq":' || (v_size + i)::text
      || ',"timestamp":"' || v_ts_text || '","v":1}';
    v_leaf := sha256('\x00'::bytea || convert_to(v_texts[i], 'UTF8'));
    v_node := sha256(v_prev || v_leaf);
    v_leaves[i] := encode(v_leaf, 'hex');
    v_prevs[i] := encode(v_prev, 'hex');
    v_entries[i] := encode(v_node, 'hex');
    v_prev := v_node;

    -- Fold the leaf into the frontier; every complete subtree it closes is stored.
    v_level := 0;
    v_node := v_leaf;
    v_index := v_size + i - 1;
    WHILE v_depth > 0 AND (v_frontier -> (v_depth - 1) ->> 0)::integer = v_level LOOP
      v_node := sha256('\x01'::bytea || decode(v_frontier -> (v_depth - 1) ->> 1, 'hex') || v_node);
      v_frontier := v_frontier - (v_depth - 1);
      v_depth := v_depth - 1;
      v_level := v_level + 1;
      v_index := v_index >> 1;
      v_closed := v_closed + 1;
      v_node_levels[v_closed] := v_level;
      v_node_indexes[v_closed] := v_index;
      v_node_hashes[v_closed] := encode(v_node, 'hex');
    END LOOP;
    v_frontier := v_frontier || jsonb_build_array(jsonb_build_array(v_level, encode(v_node, 'hex')));
    v_depth := v_depth + 1;
  END LOOP;

  INSERT INTO audit_event (seq, "timestamp", actor_id, actor_label, action, object_type, object_id,
                           object_repr, before, after, reason, request_id, client_address,
                           policy_set_hash, leaf_hash, prev_hash, entry_hash, canonical)
  SELECT v_size + r.o, v_ts, r.actor_id, r.actor_label, r.action, r.object_type, r.object_id,
         r.object_repr, r.before::json, r.after::json, r.reason, r.request_id, p_client_address,
         r.policy_set_hash, r.leaf, r.prev, r.entry, r.canonical
    FROM unnest(v_actor_id, v_actor_label, v_action, v_object_type, v_object_id, v_object_repr,
                v_before, v_after, v_reason, v_request_id, v_policy_set_hash,
                v_leaves, v_prevs, v_entries, v_texts)
         WITH ORDINALITY AS r(actor_id, actor_label, action, object_type, object_id, object_repr,
                              before, after, reason, request_id, policy_set_hash,
                              leaf, prev, entry, canonical, o);
  IF v_closed > 0 THEN
    INSERT INTO audit_tree_node (level, "index", hash)
    SELECT n.level, n.index, n.hash
      FROM unnest(v_node_levels, v_node_indexes, v_node_hashes) AS n(level, index, hash);
  END IF;
  UPDATE audit_head h
     SET size = v_size + v_count,
         last_entry_hash = encode(v_prev, 'hex'),
         frontier = v_frontier
   WHERE h.id = 1;

  o_size := v_size;
  o_timestamp := v_ts;
  o_leaf := v_leaves;
  o_prev := v_prevs;
  o_entry := v_entries;
  RETURN NEXT;
END;
$$;
"""


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def restore_previous_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(importlib.import_module("audit.migrations.0008_append_function").FUNCTION)


class Migration(migrations.Migration):
    dependencies = [("audit", "0009_event_no_pattern_indexes")]

    operations = [migrations.RunPython(create_function, restore_previous_function)]
