from django.db import migrations

SQLITE = [
    f"""
    CREATE TRIGGER IF NOT EXISTS audit_checkpoint_no_{op.lower()} BEFORE {op} ON audit_checkpoint
    BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only: {op} refused'); END;
    """
    for op in ("UPDATE", "DELETE")
]
POSTGRES = [
    """
    CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
    CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
    """
]


def create_triggers(apps, schema_editor):
    statements = {"sqlite": SQLITE, "postgresql": POSTGRES}.get(schema_editor.connection.vendor)
    if statements is None:
        raise RuntimeError(f"no append-only triggers for database vendor {schema_editor.connection.vendor!r}")
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_checkpoint")]

    operations = [migrations.RunPython(create_triggers, migrations.RunPython.noop)]
