"""On PostgreSQL, store ``before``/``after`` as ``json`` (their text as written) instead of
``jsonb`` (docs/decisions/0015).

The writer already sends each snapshot's RFC 8785 text; kept as text, the verifier's
server-side check compares the columns with the event's canonical text as text instead of
parsing every canonical text into ``jsonb``. Nothing changes on SQLite, where the columns
are text already (only Django's state: the field class).

Existing events get, for each snapshot, the fragment of their own canonical text that says
the same as the column (exactly the RFC 8785 text the writer hashed), found by the columns
that precede and follow the snapshots in the canonical text. Where no fragment says the
same (a column altered since it was written, a canonical text that does not match its
columns, a snapshot whose text holds ``,"before":``), the column keeps its own value (as
``jsonb`` writes it), so the verifier still sees exactly what it saw before and reports the
same event. One rewrite of the table by ``ALTER TABLE``: no UPDATE, so the append-only
triggers stay in place.
"""

from django.db import migrations

import audit.fields

# The canonical text's fragments before "after" and after "before", from the columns
# (hashing.canonical_text); frozen here as this migration's own.
_PREFIX = """('{"action":' || to_json(action)::text || ',"actor_id":' || coalesce(actor_id::text, 'null')
  || ',"actor_label":' || to_json(actor_label)::text || ',"after":')"""
_SUFFIX = """(',"client_address":'
  || CASE WHEN client_address IS NULL THEN 'null' ELSE to_json(format('%%s', client_address))::text END
  || ',"object_id":' || to_json(object_id)::text || ',"object_repr":' || to_json(object_repr)::text
  || ',"object_type":' || to_json(object_type)::text || ',"policy_set_hash":' || to_json(policy_set_hash)::text
  || ',"reason":' || to_json(reason)::text || ',"request_id":' || to_json(request_id)::text
  || ',"seq":' || seq::text || ',"timestamp":'
  || to_json(to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text || ',"v":1}')"""

_FRAGMENT_FUNCTION = """
CREATE FUNCTION pg_temp.audit_snapshot_text(canonical text, prefix text, suffix text, value jsonb, is_after boolean)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  middle text;
  split integer;
  piece text;
  parsed jsonb;
BEGIN
  IF value IS NULL THEN
    RETURN NULL;
  END IF;
  IF canonical IS NULL OR prefix IS NULL OR suffix IS NULL
     OR length(canonical) < length(prefix) + length(suffix)
     OR left(canonical, length(prefix)) <> prefix OR right(canonical, length(suffix)) <> suffix THEN
    RETURN value::json;
  END IF;
  middle := substr(canonical, length(prefix) + 1, length(canonical) - length(prefix) - length(suffix));
  split := strpos(middle, ',"before":');
  IF split = 0 OR strpos(substr(middle, split + 1), ',"before":') <> 0 THEN
    RETURN value::json;
  END IF;
  piece := CASE WHEN is_after THEN left(middle, split - 1) ELSE substr(middle, split + 10) END;
  BEGIN
    parsed := piece::jsonb;
  EXCEPTION WHEN others THEN
    RETURN value::json;
  END;
  IF parsed = value THEN
    RETURN piece::json;
  END IF;
  RETURN value::json;
END
$$
"""


def to_json_text(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(_FRAGMENT_FUNCTION)
    using = "pg_temp.audit_snapshot_text(canonical, {prefix}, {suffix}, {column}, {is_after})"
    schema_editor.execute(
        'ALTER TABLE audit_event ALTER COLUMN "after" TYPE json USING '
        + using.format(prefix=_PREFIX, suffix=_SUFFIX, column='"after"', is_after="true")
        + ', ALTER COLUMN "before" TYPE json USING '
        + using.format(prefix=_PREFIX, suffix=_SUFFIX, column='"before"', is_after="false")
    )
    schema_editor.execute("DROP FUNCTION pg_temp.audit_snapshot_text(text, text, text, jsonb, boolean)")


def to_jsonb(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        'ALTER TABLE audit_event ALTER COLUMN "after" TYPE jsonb USING "after"::jsonb, '
        'ALTER COLUMN "before" TYPE jsonb USING "before"::jsonb'
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_event_object_type_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="after",
                    field=audit.fields.CanonicalJSONField(blank=True, null=True),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="before",
                    field=audit.fields.CanonicalJSONField(blank=True, null=True),
                ),
            ],
            database_operations=[migrations.RunPython(to_json_text, to_jsonb)],
        )
    ]
