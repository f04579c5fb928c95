"""Store each event's canonical text (the bytes its leaf hash covers) beside its columns.

Full verification then hashes the stored text and lets the database compare the columns
with it, instead of rebuilding the text from decoded JSON (docs/decisions/0011). Existing
events get the text their columns give, exactly as the verifier computed it before (so
their hashes stay valid, and an event altered before this migration still fails); on
SQLite ``before``/``after`` are rewritten as their RFC 8785 text, which reads back as the
same values. The append-only triggers are dropped for the rewrite and recreated in the
same migration (and transaction, on both databases).
"""

from django.db import migrations, models

BATCH = 2_000

SQLITE_TRIGGERS = [f"audit_event_no_{op}" for op in ("update", "delete")]


def _triggers_module():
    from importlib import import_module

    return import_module("audit.migrations.0002_append_only_triggers")


def _drop_triggers(schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
    else:
        for name in SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


def _create_triggers(schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
    else:
        for statement in _triggers_module().SQLITE:
            if "audit_event_" in statement:
                schema_editor.execute(statement)


def fill_canonical(apps, schema_editor):
    # The verifier's own reading of a row (the same function that checked these hashes
    # until now), so what is stored is what was hashed.
    from audit import verify

    connection = schema_editor.connection
    sqlite = connection.vendor == "sqlite"
    naive_is_utc = verify.naive_timestamps_are_utc()
    _drop_triggers(schema_editor)
    last = 0
    with connection.cursor() as cursor:
        while True:
            rows = list(verify.event_rows(from_seq=last + 1, to_seq=last + BATCH, chunk_size=BATCH))
            if not rows:
                cursor.execute("SELECT 1 FROM audit_event WHERE seq > %s LIMIT 1", [last])
                if cursor.fetchone() is None:
                    break
                cursor.execute("SELECT MIN(seq) FROM audit_event WHERE seq > %s", [last])
                last = cursor.fetchone()[0] - 1
                continue
            updates = []
            for row in rows:
                try:
                    text = verify.row_canonical_bytes(row, naive_is_utc).decode("utf-8")
                except Exception:
                    text = ""  # unreadable: the verifier reports it, as before
                if sqlite:
                    before = None if row[8] is None else _fragment(row[8])
                    after = None if row[9] is None else _fragment(row[9])
                    updates.append((text, before, after, row[0]))
                else:
                    updates.append((text, row[0]))
            if sqlite:
                cursor.executemany(
                    'UPDATE audit_event SET canonical = %s, "before" = %s, "after" = %s WHERE seq = %s', updates
                )
            else:
                cursor.executemany("UPDATE audit_event SET canonical = %s WHERE seq = %s", updates)
            last = rows[-1][0]
    _create_triggers(schema_editor)


def _fragment(value):
    from audit import verify

    try:
        return verify._json_text(value)
    except Exception:
        return value  # left as it was: the verifier reports it


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_checkpoint_append_only")]

    operations = [
        # A new table on SQLite (a column with a default): the triggers go with the old one
        # and are recreated below.
        migrations.AddField(model_name="event", name="canonical", field=models.TextField(default="", editable=False)),
        migrations.RunPython(fill_canonical, migrations.RunPython.noop),
    ]
