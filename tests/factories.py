from __future__ import annotations

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth import get_user_model

from accounts.models import CustomerProfile

PASSWORD = "correct horse battery staple 42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def verified_email(user, create, extracted, **kwargs):
        if create and extracted is not False:
            EmailAddress.objects.get_or_create(
                user=user, email=user.email, defaults={"verified": True, "primary": True}
            )

    @factory.post_generation
    def totp(user, create, extracted, **kwargs):
        """`totp=True` enrols an authenticator app (staff need one for the admin); a string is
        used as its secret."""
        if create and extracted:
            secret = extracted if isinstance(extracted, str) else generate_totp_secret()
            TOTP.activate(user, secret)


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerProfile

    user = factory.SubFactory(UserFactory)
    full_name = factory.Faker("name")
    address_line1 = "Hauptstraße 5"
    postal_code = "10115"
    city = "Berlin"
    country = "DE"
    phone = "+49 30 1234567"


# --- Infrastructure --------------------------------------------------------------------------


def make_location_with_capacity(
    *,
    code: str = "eu-test-1",
    nodes: int = 2,
    cores: int = 16,
    memory_mib: int = 65536,
    nvme_gib: int = 2000,
    bulk_gib: int = 8000,
    addresses: int = 60,
    cpu_overcommit: str = "4",
    ram_overcommit: str = "1",
):
    """A location with one cluster, `nodes` nodes with NVMe and bulk storage, and an IP pool."""
    from decimal import Decimal

    from instances.models import (
        Cluster,
        IPAddress,
        IPPool,
        Location,
        Node,
        NodeStorage,
        StorageClass,
        StoragePool,
    )

    location = Location.objects.create(code=code, name=f"Test {code}", country="DE")
    cluster = Cluster.objects.create(
        location=location,
        name=f"{code}-pve",
        api_url="https://127.0.0.1:8006",
        token_id="root@pam!portal",
    )
    nvme = StoragePool.objects.create(cluster=cluster, name="nvme", storage_class=StorageClass.NVME)
    bulk = StoragePool.objects.create(cluster=cluster, name="bulk", storage_class=StorageClass.BULK)
    for index in range(nodes):
        node = Node.objects.create(
            cluster=cluster,
            name=f"pve-{index}",
            cores=cores,
            memory_mib=memory_mib,
            cpu_overcommit=Decimal(cpu_overcommit),
            ram_overcommit=Decimal(ram_overcommit),
        )
        NodeStorage.objects.create(node=node, pool=nvme, capacity_gib=nvme_gib)
        NodeStorage.objects.create(node=node, pool=bulk, capacity_gib=bulk_gib)
    pool = IPPool.objects.create(
        location=location,
        name=f"{code}-v4",
        network="203.0.113.0/24",
        gateway="203.0.113.1",
        ipv6_prefix="2001:db8:100::/48",
    )
    IPAddress.objects.bulk_create(
        IPAddress(pool=pool, address=f"203.0.113.{10 + i}") for i in range(addresses)
    )
    return location


def make_os_image(*, slug: str = "debian-12", name: str = "Debian 12", user: str = "debian"):
    from instances.models import OSImage

    image, _ = OSImage.objects.get_or_create(
        slug=slug, defaults={"name": name, "family": slug.split("-")[0], "default_user": user}
    )
    return image


def make_instance(owner, location, *, hostname="web1", status="queued", **spec):
    from instances.models import Instance

    values = {
        "family": "nvme_vps",
        "vcpus": 2,
        "dedicated_cores": False,
        "memory_mib": 4096,
        "disk_gib": 80,
        "storage_class": "nvme",
    } | spec
    return Instance.objects.create(
        owner=owner,
        hostname=hostname,
        location=location,
        os_image=make_os_image(),
        status=status,
        **values,
    )


def make_operation(instance, *, kind="build", state="running", step="", **fields):
    from instances.models import InstanceOperation

    return InstanceOperation.objects.create(
        instance=instance, kind=kind, state=state, step=step, chain="chain-1", **fields
    )


def make_order(owner, location, *, hostname="web1", generate_password: bool = False):
    """An order awaiting payment (no Stripe involved)."""
    from billing.models import Order, Plan

    plan, _ = Plan.objects.get_or_create(
        slug="nvme-vps-s",
        defaults={
            "family": "nvme_vps",
            "name": "NVMe VPS S",
            "vcpus": 2,
            "memory_mib": 4096,
            "disk_gib": 75,
            "storage_class": "nvme",
            "price_cents": 499,
        },
    )
    return Order.objects.create(
        owner=owner,
        plan=plan,
        location=location,
        os_image=make_os_image(),
        hostname=hostname,
        generate_password=generate_password,
        currency="EUR",
        monthly_net_cents=499,
        monthly_vat_cents=95,
        setup_net_cents=0,
        setup_vat_cents=0,
        vat_treatment="domestic",
        vat_country="DE",
        vat_rate="19.00",
        stripe_price_id="price_test",
    )
