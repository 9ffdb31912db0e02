# Reverse DNS: the PTR records the portal keeps in PowerDNS, and the operation that changes one.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0005_lifecycle"),
    ]

    operations = [
        migrations.AlterField(
            model_name="instanceoperation",
            name="kind",
            field=models.CharField(
                choices=[
                    ("build", "Build"),
                    ("install", "dedicated install"),
                    ("start", "Start"),
                    ("shutdown", "shut down"),
                    ("stop", "Stop"),
                    ("reboot", "Reboot"),
                    ("reset", "Reset"),
                    ("reinstall", "Reinstall"),
                    ("password", "root password reset"),
                    ("rename", "Rename"),
                    ("resize", "upgrade"),
                    ("migrate", "move to another host"),
                    ("suspend", "suspension"),
                    ("unsuspend", "service restore"),
                    ("terminate", "removal"),
                    ("reverse_dns", "reverse DNS change"),
                ],
                max_length=16,
            ),
        ),
        migrations.CreateModel(
            name="ReverseDns",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("address", models.GenericIPAddressField()),
                (
                    "ptr",
                    models.CharField(
                        help_text="Without the trailing dot.",
                        max_length=253,
                        verbose_name="PTR name",
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "instance",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="reverse_dns",
                        to="instances.instance",
                    ),
                ),
            ],
            options={
                "verbose_name": "reverse DNS record",
                "ordering": ["id"],
                "indexes": [models.Index(fields=["address"], name="reverse_dns_address")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("instance", "address"), name="reverse_dns_one_per_address"
                    )
                ],
            },
        ),
    ]
