# Snapshots and backups: how many a plan includes.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0012_plan_limits"),
    ]

    operations = [
        migrations.AddField(
            model_name="plan",
            name="backups_kept",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text="Daily backups, the newest this many kept; 0: none",
                verbose_name="backups kept",
            ),
        ),
        migrations.AddField(
            model_name="plan",
            name="snapshots_max",
            field=models.PositiveSmallIntegerField(default=0, verbose_name="snapshots"),
        ),
    ]
