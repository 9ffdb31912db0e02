"""Support gets the back office: the customer page (the customer, their servers and money),
the audit log, node capacity and drains. Still no export, and nothing finance alone may do."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ADDED = [
    ("instances", "view_instanceevent"),
    ("instances", "view_instanceoperation"),
    ("instances", "view_node"),
    ("instances", "change_node"),
    ("instances", "view_nodestorage"),
    ("instances", "view_location"),
    ("instances", "view_ipaddress"),
    ("instances", "view_ippool"),
    ("instances", "view_osimage"),
    ("instances", "view_dedicatedserver"),
    ("accounts", "view_user"),
    ("accounts", "view_customerprofile"),
    ("accounts", "view_sshkey"),
    ("accounts", "view_vatidcheck"),
    ("billing", "view_order"),
    ("billing", "view_subscription"),
    ("billing", "view_invoice"),
    ("billing", "view_ledgerentry"),
    ("billing", "view_billingaccount"),
    ("billing", "view_plan"),
    ("billing", "view_billingevent"),
    ("admin", "view_logentry"),
]


def _permissions(apps):
    # Permissions are made after migrations (post_migrate); a fresh database needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    return [
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
        for app_label, codename in ADDED
    ]


def _grant(apps, schema_editor):
    group, _ = apps.get_model("auth", "Group").objects.get_or_create(name="support")
    group.permissions.add(*_permissions(apps))


def _revoke(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name="support").first()
    if group is not None:
        group.permissions.remove(*_permissions(apps))


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0010_ledger_corrections"),
        ("accounts", "0003_vat_id_checks"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [migrations.RunPython(_grant, _revoke)]
