"""Consistency checks of the servers against Proxmox, for `manage.py audit_consistency`: VMs the
portal made that no server owns (orphans), servers whose VM is gone, addresses held twice, and
VMs of removed servers that still exist. Each returns the problems as sentences for support."""

from __future__ import annotations

from django.db.models import Count

from instances.models import Cluster, Instance
from instances.proxmox import ProxmoxError, PveClient

Status = Instance.Status
HAS_VM = (Status.RUNNING, Status.STOPPED, Status.SUSPENDED)


def vm_problems(*, client_factory=PveClient.for_cluster) -> list[str]:
    """Per cluster, one /cluster/resources: orphans, missing VMs, VMs of removed servers."""
    problems = []
    for cluster in Cluster.objects.all():
        try:
            vms = {
                int(vm["vmid"]): vm
                for vm in client_factory(cluster).cluster_resources("vm")
                if vm.get("type") == "qemu" and not vm.get("template")
            }
        except ProxmoxError as exc:
            problems.append(f"cluster {cluster}: cannot read its VMs ({exc})")
            continue
        servers = Instance.objects.filter(cluster=cluster, vmid__isnull=False)
        live = {s.vmid: s for s in servers.exclude(status=Status.TERMINATED)}
        for vmid, vm in sorted(vms.items()):
            ours = "portal" in str(vm.get("tags") or "").replace(",", ";").split(";")
            if ours and vmid not in live:
                problems.append(
                    f"cluster {cluster}: VM {vmid} ({vm.get('name')}) carries the portal's tag "
                    "but no server owns it"
                )
        for server in servers.filter(status__in=HAS_VM):
            if server.vmid not in vms:
                problems.append(
                    f"server {server.hostname} (#{server.pk}) is {server.status} but VM "
                    f"{server.vmid} is not on {cluster}"
                )
        for server in servers.filter(status=Status.TERMINATED):
            if server.vmid in vms and server.vmid not in live:
                problems.append(
                    f"server {server.hostname} (#{server.pk}) was removed but VM {server.vmid} "
                    "still exists"
                )
    return problems


def address_problems() -> list[str]:
    """No IPv4 address held by two servers that are not removed."""
    shared = (
        Instance.objects.exclude(status=Status.TERMINATED)
        .exclude(ipv4=None)
        .values("ipv4__address")
        .annotate(holders=Count("id"))
        .filter(holders__gt=1)
    )
    return [f"address {row['ipv4__address']} is held by {row['holders']} servers" for row in shared]
