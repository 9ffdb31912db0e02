# The customer's firewall (rules kept in the portal, applied to PVE by the `firewall` operation)
# and the plan's noisy-neighbour limits on every server.

import django.db.models.deletion
from django.db import migrations, models

POLICIES = [("ACCEPT", "accept"), ("DROP", "drop"), ("REJECT", "reject")]


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0007_console_sessions"),
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
                    ("firewall", "firewall change"),
                    ("reverse_dns", "reverse DNS change"),
                ],
                max_length=16,
            ),
        ),
        migrations.CreateModel(
            name="Firewall",
            fields=[
                (
                    "instance",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="firewall",
                        serialize=False,
                        to="instances.instance",
                    ),
                ),
                (
                    "enabled",
                    models.BooleanField(
                        default=False,
                        help_text="The customer's rules and policies filter (off: all passes).",
                    ),
                ),
                (
                    "policy_in",
                    models.CharField(
                        choices=POLICIES,
                        default="DROP",
                        max_length=6,
                        verbose_name="incoming policy",
                    ),
                ),
                (
                    "policy_out",
                    models.CharField(
                        choices=POLICIES,
                        default="ACCEPT",
                        max_length=6,
                        verbose_name="outgoing policy",
                    ),
                ),
                ("applied", models.JSONField(blank=True, default=dict, editable=False)),
                ("applied_at", models.DateTimeField(blank=True, null=True)),
                (
                    "nic_filtered",
                    models.BooleanField(
                        default=False,
                        help_text="The VM's NIC runs with firewall=1 (PVE filters nothing "
                        "without it; a server built before gets it at its next reboot).",
                        verbose_name="NIC on the firewall",
                    ),
                ),
                (
                    "checked_at",
                    models.DateTimeField(
                        blank=True, null=True, verbose_name="last compared with PVE"
                    ),
                ),
                (
                    "drift",
                    models.TextField(
                        blank=True,
                        help_text="How PVE differed from the portal at the last check (repaired).",
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.CreateModel(
            name="FirewallRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveSmallIntegerField()),
                (
                    "direction",
                    models.CharField(
                        choices=[("in", "incoming"), ("out", "outgoing")],
                        default="in",
                        max_length=3,
                    ),
                ),
                (
                    "action",
                    models.CharField(choices=POLICIES, default="ACCEPT", max_length=6),
                ),
                (
                    "protocol",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("", "any"),
                            ("tcp", "TCP"),
                            ("udp", "UDP"),
                            ("icmp", "ICMP"),
                            ("icmpv6", "ICMPv6"),
                        ],
                        max_length=6,
                    ),
                ),
                (
                    "port",
                    models.CharField(
                        blank=True, help_text="22, or a range 8000:8080", max_length=11
                    ),
                ),
                (
                    "source",
                    models.CharField(blank=True, help_text="CIDR; empty: any", max_length=43),
                ),
                (
                    "destination",
                    models.CharField(blank=True, help_text="CIDR; empty: any", max_length=43),
                ),
                ("comment", models.CharField(blank=True, max_length=100)),
                (
                    "firewall",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rules",
                        to="instances.firewall",
                    ),
                ),
            ],
            options={
                "ordering": ["firewall", "position"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("firewall", "position"), name="firewall_rule_unique_position"
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="instance",
            name="net_rate_mbit",
            field=models.PositiveIntegerField(default=0, verbose_name="network rate (Mbit/s)"),
        ),
        migrations.AddField(
            model_name="instance",
            name="disk_iops_rd",
            field=models.PositiveIntegerField(default=0, verbose_name="disk read IOPS"),
        ),
        migrations.AddField(
            model_name="instance",
            name="disk_iops_wr",
            field=models.PositiveIntegerField(default=0, verbose_name="disk write IOPS"),
        ),
        migrations.AddField(
            model_name="instance",
            name="disk_mbps_rd",
            field=models.PositiveIntegerField(default=0, verbose_name="disk read (MB/s)"),
        ),
        migrations.AddField(
            model_name="instance",
            name="disk_mbps_wr",
            field=models.PositiveIntegerField(default=0, verbose_name="disk write (MB/s)"),
        ),
        migrations.AddField(
            model_name="instance",
            name="cpu_units",
            field=models.PositiveIntegerField(
                default=0,
                help_text="PVE cpuunits against the node's other VMs",
                verbose_name="CPU weight",
            ),
        ),
    ]
