"""The two staff roles, as groups: `finance` reads billing and runs the exports; `support` reads
and changes servers. Neither gets the other's permissions (a superuser has all of them)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

FINANCE = [
    ("billing", "view_plan"),
    ("billing", "view_order"),
    ("billing", "view_subscription"),
    ("billing", "view_invoice"),
    ("billing", "view_ledgerentry"),
    ("billing", "view_taxrate"),
    ("billing", "view_billingaccount"),
    ("billing", "view_stripeevent"),
    ("billing", "view_exportrun"),
    ("billing", "export_finance"),
]
SUPPORT = [
    ("instances", "view_instance"),
    ("instances", "change_instance"),
]


def _groups(apps, schema_editor):
    # Permissions are made after migrations (post_migrate); a fresh database needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in (("finance", FINANCE), ("support", SUPPORT)):
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def _no_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["finance", "support"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_finance_exports"),
        ("instances", "0005_lifecycle"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(_groups, _no_groups)]
