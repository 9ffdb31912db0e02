# The browser console: console sessions (single use, short-lived, bound to a user, a login
# session and a server), and which OS images have a serial console.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0006_reverse_dns"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="osimage",
            name="serial_console",
            field=models.BooleanField(
                default=True,
                help_text="Its template has a serial port (serial0) with a login prompt: the browser console offers a text terminal as well as the screen.",
                verbose_name="serial console",
            ),
        ),
        migrations.CreateModel(
            name="ConsoleSession",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "actor",
                    models.CharField(
                        choices=[
                            ("system", "System"),
                            ("customer", "Customer"),
                            ("staff", "Staff"),
                        ],
                        max_length=8,
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("terminal", "text terminal"), ("screen", "screen")], max_length=8
                    ),
                ),
                ("token_hash", models.CharField(editable=False, max_length=64, unique=True)),
                (
                    "login_session_hash",
                    models.CharField(db_index=True, editable=False, max_length=64),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "connect_by",
                    models.DateTimeField(help_text="The console must connect before this."),
                ),
                ("connected_at", models.DateTimeField(blank=True, null=True)),
                ("ended_at", models.DateTimeField(blank=True, null=True)),
                (
                    "end_reason",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("closed", "closed"),
                            ("disconnected", "the server's console closed the connection"),
                            ("idle", "idle too long"),
                            ("signed_out", "signed out"),
                            ("suspended", "the server was suspended"),
                            ("not_running", "the server is not running"),
                            ("unavailable", "the server's console could not be reached"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "detail",
                    models.TextField(
                        blank=True, help_text="For staff, e.g. Proxmox's own message."
                    ),
                ),
                (
                    "instance",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="consoles",
                        to="instances.instance",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("ended_at__isnull", True)),
                        fields=["instance"],
                        name="console_open_by_server",
                    )
                ],
            },
        ),
    ]
