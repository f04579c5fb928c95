"""Drop the single-column index on ``audit_event.object_type``.

The index on (object_type, object_id, seq) serves every query that filters on the object
type (its leading column), so the single-column one only cost every append an extra B-tree
insert (docs/decisions/0011). Dropped by name rather than by ``AlterField``, which on SQLite
rebuilds the table and with it would lose the append-only triggers.
"""

from django.db import migrations, models


def _object_type_indexes(schema_editor, model):
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, model._meta.db_table)
    return [
        name
        for name, info in constraints.items()
        if info["index"] and not info["primary_key"] and not info["unique"] and info["columns"] == ["object_type"]
    ]


def drop_index(apps, schema_editor):
    model = apps.get_model("audit", "Event")
    for name in _object_type_indexes(schema_editor, model):
        schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_index(apps, schema_editor):
    model = apps.get_model("audit", "Event")
    if not _object_type_indexes(schema_editor, model):
        schema_editor.execute(
            schema_editor._create_index_sql(model, fields=[model._meta.get_field("object_type")], suffix="_idx")
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_event_canonical")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="event", name="object_type", field=models.CharField(max_length=100))
            ],
            database_operations=[migrations.RunPython(drop_index, create_index)],
        )
    ]
