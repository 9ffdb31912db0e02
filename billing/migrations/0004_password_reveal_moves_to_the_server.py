from django.db import migrations


def passwords_to_servers(apps, schema_editor):
    """A generated password not yet shown waits on the server now (order and server pages)."""
    Order = apps.get_model("billing", "Order")
    Instance = apps.get_model("instances", "Instance")
    waiting = Order.objects.exclude(root_password_encrypted="").exclude(instance=None)
    for order in waiting.iterator():
        Instance.objects.filter(pk=order.instance_id, new_password_encrypted="").update(
            new_password_encrypted=order.root_password_encrypted
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_ledger_append_only_sqlite"),
        ("instances", "0002_operations"),
    ]

    operations = [
        migrations.RunPython(passwords_to_servers, migrations.RunPython.noop),
        migrations.RemoveField(model_name="order", name="root_password_encrypted"),
    ]
