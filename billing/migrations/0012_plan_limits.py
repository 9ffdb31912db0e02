# The noisy-neighbour limits a plan's servers get (network rate, disk IOPS and MB/s, CPU weight).

from django.db import migrations, models


def limit(name: str, verbose_name: str, **extra):
    return migrations.AddField(
        model_name="plan",
        name=name,
        field=models.PositiveIntegerField(default=0, verbose_name=verbose_name, **extra),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_support_back_office"),
    ]

    operations = [
        limit("net_rate_mbit", "network rate (Mbit/s)"),
        limit("disk_iops_rd", "disk read IOPS"),
        limit("disk_iops_wr", "disk write IOPS"),
        limit("disk_mbps_rd", "disk read (MB/s)"),
        limit("disk_mbps_wr", "disk write (MB/s)"),
        limit("cpu_units", "CPU weight", help_text="PVE cpuunits; dedicated cores weigh more"),
    ]
