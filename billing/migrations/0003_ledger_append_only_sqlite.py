"""SQLite, too, refuses UPDATE and DELETE on ledger rows in the database itself, as PostgreSQL does
since 0002: development, the demo and `make test` then hold the same rule as production.

SQLite drops a table's triggers when Django rebuilds the table (most AlterField/RemoveField on
SQLite do): a later migration that alters billing_ledgerentry must create these again (the test
`test_the_database_refuses_ledger_updates_and_deletes` fails until it does)."""

from django.db import migrations

MESSAGE = "billing_ledgerentry is append-only: record a correcting entry instead"
CREATE = [
    f"""
    CREATE TRIGGER billing_ledger_append_only_{event.lower()}
        BEFORE {event} ON billing_ledgerentry
    BEGIN
        SELECT RAISE(ABORT, '{MESSAGE}');
    END
    """
    for event in ("UPDATE", "DELETE")
]
DROP = [
    f"DROP TRIGGER IF EXISTS billing_ledger_append_only_{event.lower()}"
    for event in ("UPDATE", "DELETE")
]


def _on_sqlite(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "sqlite":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_ledger_append_only")]

    operations = [migrations.RunPython(_on_sqlite(CREATE), _on_sqlite(DROP))]
