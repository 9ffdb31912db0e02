"""The audit log: every staff action in the admin, with who, what, when and the state before
and after; a form's old and new values (never a secret); readable and searchable, never
changed."""

from __future__ import annotations

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.urls import reverse

from billing.models import Invoice, Subscription
from instances.models import Cluster, Instance, Node
from tests.factories import make_operation

LOG = "admin:admin_logentry_changelist"


def entry_for(obj, user) -> LogEntry:
    return LogEntry.objects.filter(object_id=str(obj.pk), user=user).latest("action_time")


def test_a_form_change_says_the_old_and_the_new_value(client, staff, location):
    node = Node.objects.filter(cluster__location=location).order_by("pk").first()
    client.force_login(staff)
    url = reverse("admin:instances_node_change", args=[node.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data |= {"cpu_overcommit": "5", "storages-TOTAL_FORMS": 2, "storages-INITIAL_FORMS": 2}
    for i, storage in enumerate(node.storages.order_by("pk")):
        data |= {
            f"storages-{i}-id": storage.pk,
            f"storages-{i}-node": node.pk,
            f"storages-{i}-pool": storage.pool_id,
            f"storages-{i}-capacity_gib": storage.capacity_gib,
        }
    data["storages-0-capacity_gib"] = 2500
    assert client.post(url, {k: v for k, v in data.items() if v is not None}).status_code == 302
    entry = entry_for(node, staff)
    assert entry.action_flag == CHANGE
    assert "cpu overcommit: 4.00 → 5" in entry.change_message
    assert "capacity gib: 2000 → 2500" in entry.change_message


def test_a_secret_changed_in_a_form_never_reaches_the_log(client, staff, location):
    cluster = Cluster.objects.get(location=location)
    client.force_login(staff)
    url = reverse("admin:instances_cluster_change", args=[cluster.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data |= {"token_secret": "s3cr3t-value", "bridge": "vmbr1"}
    for prefix in ("nodes", "storage_pools"):
        data |= {f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0}
    assert client.post(url, data).status_code == 302
    message = entry_for(cluster, staff).change_message
    assert "token secret (changed)" in message and "bridge: vmbr0 → vmbr1" in message
    assert "s3cr3t-value" not in message


def test_an_admin_action_is_logged_for_each_server_with_before_and_after(
    client, staff, alice, placed_server
):
    failed = placed_server(alice, "broken", status="failed")
    make_operation(failed, state="failed", step="reserve", error="no quorum")
    client.force_login(staff)
    client.post(
        reverse("admin:instances_instance_changelist"),
        {"action": "retry_build", "_selected_action": [failed.pk]},
    )
    message = entry_for(failed, staff).change_message
    assert message.startswith("Retry the build of failed servers (admin action).")
    assert "Before: status failed, node pve-0, operation none." in message
    assert "After: status queued, node pve-0, operation build (reserve)." in message


def test_a_server_operation_from_its_admin_page_is_logged(client, support, alice, placed_server):
    server, other = placed_server(alice, "db1"), placed_server(alice, "web1")
    client.force_login(support)
    client.post(reverse("admin:instances_operate", args=[server.pk]), {"action": "reboot"})
    client.post(reverse("admin:instances_rename", args=[other.pk]), {"hostname": "web2"})
    reboot, rename = entry_for(server, support), entry_for(other, support)
    assert reboot.change_message == (
        "Reboot. Before: status running, node pve-0, operation none. "
        "After: status running, node pve-0, operation reboot (queued)."
    )
    assert rename.change_message.startswith("Rename: hostname web2. Before: status running")


def test_a_refused_operation_is_not_logged_as_done(client, support, alice, placed_server):
    server = placed_server(alice, "db1")
    make_operation(server, kind="reinstall", step="clone")
    client.force_login(support)
    client.post(reverse("admin:instances_operate", args=[server.pk]), {"action": "reboot"})
    assert not LogEntry.objects.filter(user=support).exists()


def test_a_server_built_by_support_is_logged_as_added(client, staff, alice, location):
    from tests.factories import make_os_image

    client.force_login(staff)
    client.post(
        reverse("admin:instances_build"),
        {
            "owner": alice.pk,
            "hostname": "built",
            "location": location.pk,
            "os_image": make_os_image().pk,
            "family": "nvme_vps",
            "vcpus": 2,
            "memory_mib": 4096,
            "disk_gib": 80,
            "generate_password": "on",
        },
    )
    entry = entry_for(Instance.objects.get(hostname="built"), staff)
    assert entry.action_flag == ADDITION
    assert "Build for alice@example.com: nvme_vps 2 vCPU, 4096 MiB RAM" in entry.change_message


def test_a_cancellation_and_a_credit_note_are_logged(client, staff, german, paid_server, settle):
    paid_server(german)
    invoice = Invoice.objects.get(status="paid")
    client.force_login(staff)
    client.post(
        reverse("admin:billing_invoice_credit", args=[invoice.pk]),
        {"amount": "1.19", "method": "refund", "reason": "duplicate"},
    )
    credit = entry_for(invoice, staff).change_message
    assert credit.startswith("Credit note of €1.19 (refund, reason duplicate")
    assert "Before: status paid, paid €5.94." in credit
    subscription = Subscription.objects.get()
    client.post(
        reverse("admin:billing_subscription_changelist"),
        {"action": "cancel_now", "_selected_action": [subscription.pk]},
    )
    cancel = entry_for(subscription, staff).change_message
    assert cancel.startswith("Cancel now (the server is removed; no refund) (admin action).")
    assert "Before: status active" in cancel and "After: status canceled" in cancel


def test_support_reads_and_searches_the_log_but_nobody_changes_it(
    client, staff, support, alice, placed_server
):
    server = placed_server(alice, "db1")
    client.force_login(staff)
    client.post(reverse("admin:instances_operate", args=[server.pk]), {"action": "reboot"})
    entry = LogEntry.objects.get(user=staff)
    client.force_login(support)
    listing = client.get(reverse(LOG), {"q": "staff@example.com"})
    assert list(listing.context["cl"].result_list) == [entry]
    assert "operation reboot (queued)" in listing.content.decode()
    assert list(client.get(reverse(LOG), {"q": "db1"}).context["cl"].result_list) == [entry]
    assert list(client.get(reverse(LOG), {"q": "nothing-like-it"}).context["cl"].result_list) == []
    assert client.get(reverse("admin:admin_logentry_change", args=[entry.pk])).status_code == 200
    client.force_login(staff)  # not even a superuser
    assert client.get(reverse("admin:admin_logentry_add")).status_code == 403
    change = reverse("admin:admin_logentry_change", args=[entry.pk])
    client.post(change, {"change_message": "nothing happened"})
    delete = reverse("admin:admin_logentry_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert "reboot" in entry.change_message


def test_finance_cannot_read_the_log(client, finance):
    client.force_login(finance)
    assert client.get(reverse(LOG)).status_code == 403
