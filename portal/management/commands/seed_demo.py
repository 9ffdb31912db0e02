"""Demo data for `make run`: a staff user, a finance and a support user, and a demo customer,
safe to run again and again.

Each run gives every user a fresh random password and prints it, so the printed credentials
always work and no password lives in the repository. The staff user is enrolled in TOTP (staff
need a second factor for the admin), and so are the finance and support users; their setup
keys are printed too, the same on every run.

With `--pve-cluster var/fakepve/cluster.json` (written by `python -m sandbox.pve prepare`) it
also creates or updates the infrastructure of the demo Proxmox cluster: location, cluster,
nodes, storage pools, OS images and templates, and an IP pool. Rows are matched by their
natural keys, so a second run changes nothing and duplicates nothing.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections import namedtuple
from decimal import Decimal
from pathlib import Path

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.mfa.utils import decrypt as mfa_decrypt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import CustomerProfile
from billing.models import Plan
from billing.roles import role_group
from instances.models import (
    Cluster,
    DedicatedServer,
    IPAddress,
    IPPool,
    Location,
    Node,
    NodeStorage,
    OSImage,
    OSTemplate,
    StoragePool,
)

STAFF_EMAIL = "staff@portal.example.com"
# Staff with one role each (groups made by billing's migration 0008), not superusers.
ROLE_EMAILS = {"finance": "finance@portal.example.com", "support": "support@portal.example.com"}
CUSTOMER_EMAIL = "demo@portal.example.com"
# The demo's public IPv4 addresses: TEST-NET-3 (RFC 5737), never routed on the internet.
IP_POOL = {
    "name": "fra1-public-v4",
    "network": "203.0.113.0/24",
    "gateway": "203.0.113.1",
    "dns_servers": "1.1.1.1 9.9.9.9",
    # Documentation prefix (RFC 3849); each server gets its own /64 from it.
    "ipv6_prefix": "2001:db8:100::/48",
    "ipv6_gateway": "fe80::1",
}
FIRST_HOST, LAST_HOST = 10, 250

# The demo catalog: (family, slug, name, vcpus, dedicated, RAM GiB, disk GiB, storage, TB,
# monthly cents, setup cents). Prices exclude VAT. Each plan gets its family's DEMO_LIMITS.
DEMO_PLANS = [
    ("storage_vps", "storage-vps-s", "Storage VPS S", 2, False, 4, 400, "bulk", 32, 499, 0),
    ("storage_vps", "storage-vps-m", "Storage VPS M", 4, False, 8, 800, "bulk", 32, 899, 0),
    ("storage_vps", "storage-vps-l", "Storage VPS L", 6, False, 16, 1600, "bulk", 32, 1599, 0),
    ("nvme_vps", "nvme-vps-s", "NVMe VPS S", 2, False, 4, 75, "nvme", 32, 499, 0),
    ("nvme_vps", "nvme-vps-m", "NVMe VPS M", 4, False, 8, 150, "nvme", 32, 849, 0),
    ("nvme_vps", "nvme-vps-l", "NVMe VPS L", 6, False, 16, 300, "nvme", 32, 1399, 0),
    ("nvme_vps", "nvme-vps-xl", "NVMe VPS XL", 8, False, 32, 600, "nvme", 32, 2499, 0),
    ("vds", "vds-s", "VDS S", 2, True, 16, 240, "nvme", 32, 2999, 0),
    ("vds", "vds-m", "VDS M", 4, True, 32, 480, "nvme", 32, 5499, 0),
    ("vds", "vds-l", "VDS L", 8, True, 64, 960, "nvme", 32, 9999, 0),
    ("dedicated", "dedi-8", "Dedicated 8", 8, True, 64, 1920, "nvme", 100, 12999, 4900),
    ("dedicated", "dedi-16", "Dedicated 16", 16, True, 128, 3840, "nvme", 100, 18999, 4900),
    ("dedicated", "dedi-32", "Dedicated 32", 32, True, 256, 7680, "nvme", 100, 29999, 9900),
]
# Noisy-neighbour limits by family: network Mbit/s, disk read/write IOPS, disk read/write MB/s
# and the PVE cpuunits of one vCPU (a dedicated core weighs ten shared vCPUs); dedicated
# machines share nothing (0: no limit).
Limits = namedtuple("Limits", "net_rate_mbit iops_rd iops_wr mbps_rd mbps_wr units_per_vcpu")
DEMO_LIMITS = {
    "storage_vps": Limits(500, 2_000, 1_000, 200, 150, 50),
    "nvme_vps": Limits(1_000, 20_000, 10_000, 1_000, 500, 100),
    "vds": Limits(2_000, 50_000, 25_000, 2_000, 1_000, 1_000),
    "dedicated": Limits(0, 0, 0, 0, 0, 0),
}
# Snapshots a server may keep and daily backups kept, by family (dedicated machines: arranged
# with the technicians).
DEMO_RECOVERY = {"storage_vps": (2, 7), "nvme_vps": (3, 7), "vds": (5, 14), "dedicated": (0, 0)}
# Machines in the demo location's inventory: (asset tag, model, CPU, cores, RAM GiB, disks).
DEMO_MACHINES = [
    ("FRA1-D801", "Dell R650xs", "Xeon Silver 4309Y", 8, 64, "2× 960 GB NVMe"),
    ("FRA1-D802", "Dell R650xs", "Xeon Silver 4309Y", 8, 64, "2× 960 GB NVMe"),
    ("FRA1-D1601", "Dell R6615", "EPYC 9124", 16, 128, "2× 1.92 TB NVMe"),
]


class Command(BaseCommand):
    help = "Create or refresh the demo staff user and demo customer (development only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Run even with DEBUG off (never do this on a real portal).",
        )
        parser.add_argument(
            "--pve-cluster",
            type=Path,
            metavar="FILE",
            help="cluster.json of the demo Proxmox cluster (python -m sandbox.pve prepare)",
        )

    def handle(self, *args, allow_production: bool = False, pve_cluster=None, **options):
        if not settings.DEBUG and not allow_production:
            raise CommandError("seed_demo is for development; DEBUG is off.")
        if pve_cluster is not None:
            self._infrastructure(_read_cluster_file(pve_cluster))
            if settings.POWERDNS_API_URL:  # the demo pool's reverse zones (make run's PowerDNS)
                call_command("reverse_dns_zones", stdout=self.stdout)
        self._catalog()
        with transaction.atomic():
            staff_password = self._user(STAFF_EMAIL, staff=True)
            staff_key = _totp_key(get_user_model().objects.get(email=STAFF_EMAIL))
            customer_password = self._user(CUSTOMER_EMAIL, staff=False)
            roles = {role: self._role_user(role, email) for role, email in ROLE_EMAILS.items()}
            CustomerProfile.objects.get_or_create(
                user=get_user_model().objects.get(email=CUSTOMER_EMAIL),
                defaults={
                    "full_name": "Demo Customer",
                    "address_line1": "Friedrichstraße 1",
                    "postal_code": "10117",
                    "city": "Berlin",
                    "country": "DE",
                    "phone": "+49 30 1234567",
                },
            )
        self.stdout.write(self.style.SUCCESS("Demo accounts (passwords are new on every run):"))
        self.stdout.write(
            f"  staff     {STAFF_EMAIL}  {staff_password}  TOTP setup key {staff_key}   -> /admin/"
        )
        for role, (password, key) in roles.items():
            where = "/admin/billing/exportrun/ (Exports)" if role == "finance" else "/admin/"
            self.stdout.write(
                f"  {role:<9} {ROLE_EMAILS[role]}  {password}  TOTP setup key {key}   -> {where}"
            )
        self.stdout.write(f"  customer  {CUSTOMER_EMAIL}  {customer_password}")

    def _role_user(self, role: str, email: str) -> tuple[str, str]:
        """A staff member in one group only (finance: billing and exports; support: servers),
        with an authenticator app like every staff user."""
        password = self._user(email, staff=True)
        user = get_user_model().objects.get(email=email)
        user.is_superuser = False
        user.save(update_fields=["is_superuser"])
        user.groups.set([role_group(role)])
        return password, _totp_key(user)

    def _user(self, email: str, *, staff: bool) -> str:
        user, _ = get_user_model().objects.get_or_create(
            email=email, defaults={"username": email.split("@")[0]}
        )
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.is_staff = user.is_superuser = staff
        user.is_active = True
        user.save()
        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        return password

    def _catalog(self) -> None:
        for row in DEMO_PLANS:
            family, slug, name, vcpus, dedicated, ram, disk, storage, tb, price, setup = row
            limits = DEMO_LIMITS[family]
            Plan.objects.update_or_create(
                slug=slug,
                defaults={
                    "family": family,
                    "name": name,
                    "vcpus": vcpus,
                    "dedicated_cores": dedicated,
                    "memory_mib": ram * 1024,
                    "disk_gib": disk,
                    "storage_class": storage,
                    "traffic_tb": tb,
                    "price_cents": price,
                    "setup_fee_cents": setup,
                    "display_order": vcpus,
                    "net_rate_mbit": limits.net_rate_mbit,
                    "disk_iops_rd": limits.iops_rd,
                    "disk_iops_wr": limits.iops_wr,
                    "disk_mbps_rd": limits.mbps_rd,
                    "disk_mbps_wr": limits.mbps_wr,
                    "cpu_units": min(10_000, limits.units_per_vcpu * vcpus),
                    "snapshots_max": DEMO_RECOVERY[family][0],
                    "backups_kept": DEMO_RECOVERY[family][1],
                },
            )
        self.stdout.write(self.style.SUCCESS(f"Demo catalog: {len(DEMO_PLANS)} plans."))
        if settings.STRIPE_SECRET_KEY:
            call_command("stripe_sync_plans", stdout=self.stdout)
        else:
            self.stdout.write("  Stripe not configured (STRIPE_SECRET_KEY): plans not pushed.")

    @transaction.atomic
    def _infrastructure(self, facts: dict) -> None:
        location = _location(facts["location"])
        cluster = _cluster(facts, location)
        pools = _storage_pools(cluster, facts["storages"])
        nodes = _nodes(cluster, facts["nodes"], pools)
        _images_and_templates(cluster, nodes, facts["images"], facts["templates"])
        pool, free = _ip_pool(location)
        for tag, model, cpu, cores, memory, disks in DEMO_MACHINES:
            DedicatedServer.objects.get_or_create(
                asset_tag=tag,
                defaults={
                    "location": location,
                    "model": model,
                    "cpu": cpu,
                    "cores": cores,
                    "memory_gib": memory,
                    "disks": disks,
                },
            )
        self.stdout.write(
            self.style.SUCCESS(f"Demo Proxmox cluster {cluster.name} at {cluster.api_url}:")
        )
        self.stdout.write(
            f"  {len(nodes)} nodes, {len(pools)} storage pools, {len(facts['templates'])} "
            f"templates; {pool.network} with {free} free addresses"
        )


def _totp_key(user) -> str:
    """The setup key of the user's authenticator app (staff need one for the admin): the one
    enrolled before, so an app set up on an earlier run keeps working, or a new enrolment."""
    enrolled = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if enrolled is not None:
        try:
            return mfa_decrypt(enrolled.data["secret"])
        except ValueError:  # encrypted under a key that is gone: enrol again
            enrolled.delete()
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def _read_cluster_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CommandError(f"cannot read {path}: {e} (run `python -m sandbox.pve prepare`)") from e


def _location(facts: dict) -> Location:
    location, _ = Location.objects.update_or_create(
        code=facts["code"], defaults={"name": facts["name"], "country": facts["country"]}
    )
    return location


def _cluster(facts: dict, location: Location) -> Cluster:
    cluster, _ = Cluster.objects.update_or_create(
        name=facts["name"],
        defaults={
            "location": location,
            "api_url": facts["api_url"],
            "token_id": facts["token_id"],
            "ca_bundle": facts["ca_pem"],
            "backup_storage": facts.get("backup_storage", ""),
        },
    )
    # Encryption is randomised: re-encrypt only a secret that changed, so reruns change nothing.
    if _stored_secret(cluster) != facts["token_secret"]:
        cluster.token_secret = facts["token_secret"]
        cluster.save(update_fields=["token_secret_encrypted"])
    return cluster


def _stored_secret(cluster: Cluster) -> str | None:
    try:
        return cluster.token_secret
    except ValueError:  # encrypted under another key
        return None


def _storage_pools(cluster: Cluster, storages: list[dict]) -> dict[str, StoragePool]:
    return {
        s["name"]: StoragePool.objects.update_or_create(
            cluster=cluster, name=s["name"], defaults={"storage_class": s["storage_class"]}
        )[0]
        for s in storages
    }


def _nodes(cluster: Cluster, facts: list[dict], pools: dict[str, StoragePool]) -> dict[str, Node]:
    nodes = {}
    for fact in facts:
        # Size comes from the cluster; overcommit is policy staff may have changed since.
        node, _ = Node.objects.update_or_create(
            cluster=cluster,
            name=fact["name"],
            defaults={"cores": fact["cores"], "memory_mib": fact["memory_mib"]},
            create_defaults={
                "cores": fact["cores"],
                "memory_mib": fact["memory_mib"],
                "cpu_overcommit": Decimal("4.0"),
                "ram_overcommit": Decimal("1.0"),
            },
        )
        for pool_name, capacity in fact["storage_gib"].items():
            NodeStorage.objects.update_or_create(
                node=node, pool=pools[pool_name], defaults={"capacity_gib": capacity}
            )
        nodes[node.name] = node
    return nodes


def _images_and_templates(
    cluster: Cluster, nodes: dict[str, Node], images: list[dict], templates: list[dict]
) -> None:
    by_slug = {}
    for image in images:
        by_slug[image["slug"]], _ = OSImage.objects.update_or_create(
            slug=image["slug"],
            defaults={
                "name": image["name"],
                "family": image["family"],
                "default_user": image["default_user"],
                "min_disk_gib": image["min_disk_gib"],
                "display_order": image["display_order"],
            },
        )
    for template in templates:
        OSTemplate.objects.update_or_create(
            image=by_slug[template["image"]],
            cluster=cluster,
            node=nodes.get(template["node"]),
            defaults={"vmid": template["vmid"]},
        )


def _ip_pool(location: Location) -> tuple[IPPool, int]:
    pool, _ = IPPool.objects.update_or_create(
        name=IP_POOL["name"], defaults=dict(IP_POOL, location=location)
    )
    hosts = list(ipaddress.ip_network(pool.network).hosts())[FIRST_HOST - 1 : LAST_HOST]
    known = set(IPAddress.objects.filter(pool=pool).values_list("address", flat=True))
    # Only missing addresses are added: an assigned or quarantined one keeps its state.
    IPAddress.objects.bulk_create(
        IPAddress(pool=pool, address=str(host)) for host in hosts if str(host) not in known
    )
    return pool, pool.addresses.filter(state=IPAddress.State.FREE).count()
