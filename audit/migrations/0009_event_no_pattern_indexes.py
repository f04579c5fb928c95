"""On PostgreSQL, drop the ``varchar_pattern_ops`` copies of the indexes on
``audit_event.action`` and ``audit_event.object_id``.

Django adds a ``_like`` index beside every ``db_index=True`` text column on PostgreSQL so
that ``LIKE 'prefix%'`` can use an index. Nothing reads the log that way: the admin, the API,
the reports and the selectors filter on these columns by equality or ``IN``, and the
admin's search (``icontains``) cannot use such an index. The two indexes only cost every
append two more B-tree inserts and their WAL (docs/decisions/0011, as 0006 did for
``object_type``).

The plain indexes stay, under the names they already have, now declared in ``Meta.indexes``
(which makes no ``_like`` copy). Only Django's state changes on SQLite, which never had
the copies. No ``AlterField`` on the database: on SQLite it would rebuild the table and
lose the append-only triggers.
"""

from django.db import migrations, models

# The names Django gave the plain indexes (and their _like copies) in 0001.
_INDEXES = {"action": "audit_event_action_71fc5cf8", "object_id": "audit_event_object_id_5a8e2ce6"}


def _pattern_indexes(schema_editor, model):
    """The single-column ``*_pattern_ops`` indexes on the columns above (PostgreSQL only)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT index_class.relname
              FROM pg_index i
              JOIN pg_class index_class ON index_class.oid = i.indexrelid
              JOIN pg_class table_class ON table_class.oid = i.indrelid
              JOIN pg_opclass opclass ON opclass.oid = i.indclass[0]
              JOIN pg_attribute a ON a.attrelid = table_class.oid AND a.attnum = i.indkey[0]
             WHERE table_class.relname = %s AND pg_table_is_visible(table_class.oid)
               AND i.indnatts = 1 AND opclass.opcname LIKE '%%pattern_ops' AND a.attname = ANY(%s)
             ORDER BY 1
            """,
            [model._meta.db_table, list(_INDEXES)],
        )
        return [name for (name,) in cursor.fetchall()]


def drop_pattern_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("audit", "Event")
    for name in _pattern_indexes(schema_editor, model):
        schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_pattern_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("audit", "Event")
    if _pattern_indexes(schema_editor, model):
        return
    for column, name in _INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX {schema_editor.quote_name(name + '_like')} "
            f"ON {schema_editor.quote_name(model._meta.db_table)} ({schema_editor.quote_name(column)} varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_append_function")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="event", name="action", field=models.CharField(max_length=100)),
                migrations.AlterField(
                    model_name="event", name="object_id", field=models.CharField(blank=True, max_length=64)
                ),
                migrations.AddIndex(model_name="event", index=models.Index(fields=["action"], name=_INDEXES["action"])),
                migrations.AddIndex(
                    model_name="event", index=models.Index(fields=["object_id"], name=_INDEXES["object_id"])
                ),
            ],
            database_operations=[migrations.RunPython(drop_pattern_indexes, create_pattern_indexes)],
        )
    ]
