"""`manage.py pve_check <cluster>`: a read-only smoke test of a real Proxmox VE cluster.

It reads the version, nodes, storages and templates through the portal's own client, compares them
with the cluster's rows, and exits non-zero when something is wrong. It never writes to PVE.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from instances.models import Cluster, Node, NodeStorage
from instances.proxmox import PRIVILEGES, ProxmoxError, PveClient

GIB = 1024**3
MIB = 1024**2


def _gib(size: int) -> str:
    return f"{size / GIB:.1f}"


class Command(BaseCommand):
    help = "Check a Proxmox VE cluster against the portal's rows (read-only; exits 1 on problems)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("cluster", help="the Cluster's name, as in the admin")

    def handle(self, *args: Any, cluster: str, **options: Any) -> None:
        try:
            row = Cluster.objects.get(name=cluster)
        except Cluster.DoesNotExist:
            known = ", ".join(Cluster.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No cluster named {cluster!r} (known: {known}).") from None
        self.problems: list[str] = []
        try:
            client = PveClient.for_cluster(row)
        except ValueError as exc:  # a malformed URL, token id, fingerprint or CA, or a lost key
            raise CommandError(f"Cluster {row.name} is misconfigured: {exc}") from exc
        self.stdout.write(f"Cluster {row.name}: {row.api_url} as {row.token_id}")
        try:
            self._check(client, row)
        finally:
            client.close()

        if self.problems:
            count = f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}"
            raise CommandError(f"{count} on cluster {row.name}: " + "; ".join(self.problems))
        self.stdout.write(self.style.SUCCESS(f"Cluster {row.name}: all checks passed."))

    def _check(self, client: PveClient, row: Cluster) -> None:
        """Every check, in the report's order; the API must answer before anything else runs."""
        try:
            version = client.version()
        except ProxmoxError as exc:
            raise CommandError(f"Cannot use the API of {row.name}: {exc}") from exc
        self._ok(f"Proxmox VE {version.get('version')} (release {version.get('release')})")
        self._check_privileges(client, row)
        online = self._check_nodes(client, row)
        storages = self._check_storages(client, row, online)
        self._check_templates(client, row, storages)
        self._check_backup_storage(row, storages)
        self._check_firewall(client)

    # --- report lines ----------------------------------------------------------------------------

    def _heading(self, text: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(text))

    def _ok(self, text: str) -> None:
        self.stdout.write(f"  ok   {text}")

    def _note(self, text: str) -> None:
        self.stdout.write(self.style.WARNING(f"  note {text}"))

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        self.stdout.write(self.style.ERROR(f"  FAIL {text}"))

    # --- checks ----------------------------------------------------------------------------------

    def _check_privileges(self, client: PveClient, row: Cluster) -> None:
        """The token must hold what the portal does (the README's role), on "/"."""
        self._heading("Privileges")
        try:
            held = client.privileges("/")
        except ProxmoxError as exc:
            self._problem(f"reading the token's permissions failed: {exc}")
            return
        missing = sorted(set(PRIVILEGES) - held)
        if missing:
            self._problem(f"the token {row.token_id} lacks on /: {', '.join(missing)}")
        else:
            self._ok(f"{row.token_id} holds the {len(PRIVILEGES)} privileges the portal uses")

    def _check_firewall(self, client: PveClient) -> None:
        """Without the datacenter firewall no VM firewall filters: not the customers' rules, not
        the anti-spoofing every server gets."""
        self._heading("Firewall")
        try:
            enabled = client.datacenter_firewall_enabled()
        except ProxmoxError as exc:
            self._problem(f"reading the datacenter firewall's options failed: {exc}")
            return
        if enabled:
            self._ok("the datacenter firewall is on (servers' firewalls and anti-spoofing filter)")
        else:
            self._problem(
                "the datacenter firewall is off, so no server's firewall or anti-spoofing filters "
                "anything (Datacenter → Firewall → Options → Firewall: Yes)"
            )

    def _check_backup_storage(
        self, row: Cluster, storages: dict[str, dict[str, dict[str, Any]]]
    ) -> None:
        """Where the servers' backups go: a storage with content `backup` on every online node,
        best shared (a node-local one keeps each archive on the node that made it)."""
        self._heading("Backups")
        name = row.backup_storage
        if not name:
            self._note("no backup storage set: the servers of this cluster are not backed up")
            return
        found = {node: seen[name] for node, seen in storages.items() if name in seen}
        for node in sorted(set(storages) - set(found)):
            self._problem(f"node {node} has no backup storage {name}")
        usable = 0
        for node, storage in sorted(found.items()):
            if "backup" not in storage["content"]:
                self._problem(f"{node}/{name} does not take backups (no 'backup' in its content)")
            elif not storage["active"]:
                self._problem(f"backup storage {name} is not active on {node}")
            else:
                usable += 1
        if usable:
            self._ok(f"backups go to {name} (content backup, on {usable} node(s))")
        if found and not all(storage["shared"] for storage in found.values()):
            self._note(
                f"{name} is node-local: a server's backups stay on the node that made them, and "
                "after a move to another node it cannot be restored from them"
            )

    def _check_nodes(self, client: PveClient, row: Cluster) -> list[str]:
        """Compare PVE's nodes with the Node rows; returns the names of the online nodes."""
        self._heading("Nodes")
        try:
            nodes = {node["name"]: node for node in client.nodes()}
        except ProxmoxError as exc:
            self._problem(f"listing the nodes failed: {exc}")
            return []
        rows = {node.name: node for node in row.nodes.all()}
        for name in sorted(set(nodes) | set(rows)):
            pve, db = nodes.get(name), rows.get(name)
            if pve is None:
                self._problem(f"node {name} is in the portal but Proxmox does not know it")
                continue
            text = f"{name}: {pve['status']}"
            if pve["status"] == "online":
                text += f", {pve['maxcpu']} CPUs, {_gib(pve['maxmem'])} GiB RAM"
            if db is None:
                self._note(f"{text} (not in the portal, so no servers are placed on it)")
                continue
            self._ok(f"{text} (portal: {db.state}, {db.cores} cores, {db.memory_mib} MiB)")
            if pve["status"] != "online":
                if db.state == Node.State.ACTIVE:
                    self._problem(f"node {name} is {pve['status']} but active in the portal")
                continue
            if db.cores > pve["maxcpu"]:
                self._problem(
                    f"node {name}: the portal counts {db.cores} cores, Proxmox has {pve['maxcpu']}"
                )
            if db.memory_mib > pve["maxmem"] // MIB:
                self._problem(
                    f"node {name}: the portal counts {db.memory_mib} MiB RAM, "
                    f"Proxmox has {pve['maxmem'] // MIB} MiB"
                )
        return [name for name, node in nodes.items() if node["status"] == "online"]

    def _check_storages(
        self, client: PveClient, row: Cluster, online: list[str]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """List each online node's storages and check the StoragePool and NodeStorage rows."""
        self._heading("Storages")
        seen: dict[str, dict[str, dict[str, Any]]] = {}
        for node in sorted(online):
            try:
                storages = client.node_storages(node)
            except ProxmoxError as exc:
                self._problem(f"listing the storages of {node} failed: {exc}")
                continue
            seen[node] = {storage["storage"]: storage for storage in storages}
            for s in storages:
                state = "active" if s["active"] else "inactive"
                content = ",".join(s["content"])
                self._ok(
                    f"{node}/{s['storage']}: {s['type']}, {state}, content {content}, "
                    f"{_gib(s['avail'])} of {_gib(s['total'])} GiB free"
                )
        for pool in row.storage_pools.order_by("name"):
            found = [seen[node][pool.name] for node in seen if pool.name in seen[node]]
            if not found:
                self._problem(f"storage pool {pool.name} is not on any online node")
            elif not any("images" in storage["content"] for storage in found):
                self._problem(f"storage pool {pool.name} does not hold VM disks (no 'images')")
        node_storages = NodeStorage.objects.filter(node__cluster=row).select_related("node", "pool")
        for ns in node_storages.order_by("node__name", "pool__name"):
            if ns.node.name not in seen:
                continue  # the node is missing or offline: reported above
            storage = seen[ns.node.name].get(ns.pool.name)
            if storage is None:
                self._problem(f"node {ns.node.name} has no storage {ns.pool.name}")
            elif not storage["active"]:
                self._problem(f"storage {ns.pool.name} is not active on {ns.node.name}")
            elif ns.capacity_gib * GIB > storage["total"]:
                self._note(
                    f"{ns.node.name}/{ns.pool.name}: the portal may place {ns.capacity_gib} GiB, "
                    f"the storage has {_gib(storage['total'])} GiB (thin provisioning?)"
                )
        return seen

    def _check_templates(
        self, client: PveClient, row: Cluster, storages: dict[str, dict[str, dict[str, Any]]]
    ) -> None:
        """Each OSTemplate's VMID must exist, be a template, and sit on its node if it names one.

        A template for the whole cluster is cloned from its node to the others (`target`), which
        PVE refuses onto node-local storage ("can't clone to non-shared storage"): then every
        storage pool must be shared, or each node needs its own template.
        """
        self._heading("Templates")
        templates = row.templates.select_related("image", "node").order_by("image__name", "vmid")
        if not templates:
            self._note("no OS templates for this cluster: nothing can be built on it")
        # Nodes a server can be placed on: in the portal, and online (storages lists those).
        hosts = set(row.nodes.values_list("name", flat=True)) & set(storages)
        for template in templates:
            where = f" on {template.node.name}" if template.node else ""
            label = f"{template.image.name} (VMID {template.vmid}{where})"
            try:
                vm = client.find_vm(template.vmid)
            except ProxmoxError as exc:
                self._problem(f"looking up template {label} failed: {exc}")
                continue
            if vm is None:
                self._problem(f"template {label} does not exist in Proxmox")
            elif not vm["template"]:
                self._problem(f"{label} is {vm['name']!r}, a VM but not a template")
            elif template.node and vm["node"] != template.node.name:
                self._problem(f"template {label} is on {vm['node']}")
            else:
                self._ok(f"{label}: template {vm['name']!r} on {vm['node']}")
            if template.node_id is None and len(hosts) > 1:
                self._check_shared_pools(row, label, storages)

    def _check_shared_pools(self, row: Cluster, label: str, storages) -> None:
        for pool in row.storage_pools.order_by("name"):
            found = [node[pool.name] for node in storages.values() if pool.name in node]
            if found and not all(storage["shared"] for storage in found):
                self._problem(
                    f"{label} is one template for the whole cluster, but storage pool "
                    f"{pool.name} is node-local: PVE refuses clones to other nodes onto it. "
                    "Give each node its own template (OSTemplate rows with a node)."
                )
