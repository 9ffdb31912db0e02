# Snapshots and backups: what the plan allows a server, the cluster's backup storage, the
# operations and the records of both.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0008_firewall_and_limits"),
    ]

    operations = [
        migrations.AddField(
            model_name="cluster",
            name="backup_storage",
            field=models.CharField(
                blank=True,
                help_text="PVE storage (content type backup) the servers' backups go to, e.g. a shared NFS or PBS storage; empty: no backups on this cluster.",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="instance",
            name="backups_kept",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text="Daily backups, the newest this many kept; 0: backups not included.",
                verbose_name="backups kept",
            ),
        ),
        migrations.AddField(
            model_name="instance",
            name="snapshots_max",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text="How many snapshots it may keep; 0: none.",
                verbose_name="snapshots allowed",
            ),
        ),
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
                    ("snapshot", "snapshot"),
                    ("rollback", "rollback to a snapshot"),
                    ("snapshot_delete", "snapshot deletion"),
                    ("backup", "backup"),
                    ("restore", "restore from a backup"),
                    ("firewall", "firewall change"),
                    ("reverse_dns", "reverse DNS change"),
                ],
                max_length=16,
            ),
        ),
        migrations.CreateModel(
            name="InstanceBackup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "trigger",
                    models.CharField(
                        choices=[("scheduled", "scheduled"), ("manual", "on demand")], max_length=9
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("queued", "waiting"),
                            ("running", "in progress"),
                            ("ready", "available"),
                            ("failed", "failed"),
                            ("deleting", "being deleted"),
                            ("deleted", "deleted"),
                        ],
                        default="queued",
                        max_length=8,
                    ),
                ),
                (
                    "storage",
                    models.CharField(blank=True, max_length=64, verbose_name="PVE storage"),
                ),
                (
                    "node",
                    models.CharField(blank=True, max_length=64, verbose_name="written by node"),
                ),
                ("volid", models.CharField(blank=True, max_length=255, verbose_name="PVE volume")),
                (
                    "size_bytes",
                    models.BigIntegerField(blank=True, null=True, verbose_name="size (bytes)"),
                ),
                (
                    "error",
                    models.TextField(
                        blank=True, help_text="For staff: why it failed, PVE's own words."
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("deleted_at", models.DateTimeField(blank=True, null=True)),
                (
                    "instance",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="backups",
                        to="instances.instance",
                    ),
                ),
                (
                    "os_image",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="instances.osimage",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(
                        fields=["instance", "trigger", "created_at"], name="backup_scheduled_at"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="InstanceSnapshot",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=40, verbose_name="PVE snapshot name")),
                ("label", models.CharField(help_text="The customer's name for it.", max_length=40)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("creating", "being taken"),
                            ("ready", "ready"),
                            ("deleting", "being deleted"),
                            ("deleted", "deleted"),
                        ],
                        default="creating",
                        max_length=8,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("deleted_at", models.DateTimeField(blank=True, null=True)),
                (
                    "instance",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="snapshots",
                        to="instances.instance",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("state", "deleted"), _negated=True),
                        fields=("instance", "name"),
                        name="snapshot_unique_live_name",
                    )
                ],
            },
        ),
    ]
