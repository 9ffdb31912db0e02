"""The PTR records the portal keeps in PowerDNS for servers' addresses."""

from __future__ import annotations

from django.db import models

from instances.models.servers import Instance


class ReverseDns(models.Model):
    """The PTR record of one of a server's addresses, as PowerDNS has it since the portal set
    it (written only after PowerDNS took the change). The server's IPv4 address and the first
    address of its IPv6 /64 have one from the build (the default name) until its removal; other
    addresses of the /64 have one once the customer set it."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="reverse_dns")
    address = models.GenericIPAddressField()
    ptr = models.CharField("PTR name", max_length=253, help_text="Without the trailing dot.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "reverse DNS record"
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "address"], name="reverse_dns_one_per_address"
            )
        ]
        indexes = [models.Index(fields=["address"], name="reverse_dns_address")]

    def __str__(self) -> str:
        return f"{self.address} → {self.ptr}"
