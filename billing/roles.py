"""The staff roles, as groups: `finance` reads billing and runs the exports; `support` reads and
changes servers, drains nodes, and reads customers, their money and the audit log, but never
exports. Neither may do what only the other may (a superuser has all of it).

billing/migrations/0008 creates them in every database (0011 gives support what the back
office needs); `role_group` makes one again where it is missing (a test database emptied
between tests, a database made with --run-syncdb)."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

ROLES = {
    "finance": [
        *("billing.view_plan", "billing.view_order", "billing.view_subscription"),
        *("billing.view_invoice", "billing.view_ledgerentry", "billing.view_taxrate"),
        *("billing.view_billingaccount", "billing.view_stripeevent", "billing.view_exportrun"),
        "billing.export_finance",
    ],
    # Servers (and draining nodes); reading customers and their money, never the exports.
    "support": [
        *("instances.view_instance", "instances.change_instance"),
        *("instances.view_instanceevent", "instances.view_instanceoperation"),
        *("instances.view_node", "instances.change_node", "instances.view_nodestorage"),
        *("instances.view_location", "instances.view_ipaddress", "instances.view_ippool"),
        *("instances.view_osimage", "instances.view_dedicatedserver"),
        *("accounts.view_user", "accounts.view_customerprofile", "accounts.view_sshkey"),
        "accounts.view_vatidcheck",
        *("billing.view_order", "billing.view_subscription", "billing.view_invoice"),
        *("billing.view_ledgerentry", "billing.view_billingaccount", "billing.view_plan"),
        "billing.view_billingevent",
        "admin.view_logentry",
    ],
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
