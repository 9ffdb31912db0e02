"""The staff roles, as groups: `finance` reads billing and runs the exports; `support` reads and
changes servers. Neither gets the other's permissions (a superuser has all of them).

billing/migrations/0008 creates them in every database; `role_group` makes one again where it
is missing (a test database emptied between tests, a database made with --run-syncdb)."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

ROLES = {
    "finance": [
        *("billing.view_plan", "billing.view_order", "billing.view_subscription"),
        *("billing.view_invoice", "billing.view_ledgerentry", "billing.view_taxrate"),
        *("billing.view_billingaccount", "billing.view_stripeevent", "billing.view_exportrun"),
        "billing.export_finance",
    ],
    "support": ["instances.view_instance", "instances.change_instance"],
}


def role_group(name: str) -> Group:
    """The role's group, with exactly its permissions."""
    group, _ = Group.objects.get_or_create(name=name)
    wanted = []
    for dotted in ROLES[name]:
        app_label, codename = dotted.split(".")
        wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    group.permissions.set(wanted)
    return group
