from django.urls import path

from instances import console_views, firewall_views, recovery_views, reverse_dns_views, views

app_name = "instances"

urlpatterns = [
    path("", views.server_list, name="list"),
    path("<int:instance_id>/", views.server_detail, name="detail"),
    path("<int:instance_id>/graphs/", views.server_graphs, name="graphs"),
    path("<int:instance_id>/power/", views.server_power, name="power"),
    path("<int:instance_id>/rename/", views.server_rename, name="rename"),
    path("<int:instance_id>/reinstall/", views.server_reinstall, name="reinstall"),
    path("<int:instance_id>/password/", views.server_password, name="password"),
    path("<int:instance_id>/password/show/", views.server_password_reveal, name="password_reveal"),
    path("<int:instance_id>/reboot-plan/", views.server_reboot_plan, name="reboot_plan"),
    path("<int:instance_id>/firewall/", firewall_views.server_firewall, name="firewall"),
    path(
        "<int:instance_id>/firewall/preset/",
        firewall_views.server_firewall_preset,
        name="firewall_preset",
    ),
    path("<int:instance_id>/console/", console_views.server_console, name="console"),
    path(
        "<int:instance_id>/console/session/",
        console_views.server_console_session,
        name="console_session",
    ),
    path(
        "<int:instance_id>/reverse-dns/", reverse_dns_views.server_reverse_dns, name="reverse_dns"
    ),
    path("<int:instance_id>/snapshots/", recovery_views.snapshot_take, name="snapshot_take"),
    path(
        "<int:instance_id>/snapshots/rollback/",
        recovery_views.snapshot_rollback,
        name="snapshot_rollback",
    ),
    path(
        "<int:instance_id>/snapshots/delete/",
        recovery_views.snapshot_delete,
        name="snapshot_delete",
    ),
    path("<int:instance_id>/backups/", recovery_views.backup_now, name="backup_now"),
    path(
        "<int:instance_id>/backups/restore/", recovery_views.backup_restore, name="backup_restore"
    ),
]
