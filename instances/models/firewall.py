"""A server's firewall as its customer keeps it: on or off, default policies, rules in order.

PVE holds the copy that filters (the VM's `firewall/options` and `firewall/rules`); the
`firewall` operation makes PVE's equal to this one, and beat checks that they stay equal.
Anti-spoofing (PVE's ipfilter and macfilter, with the server's own addresses) is not the
customer's: every server has it, whatever its firewall here says.
"""

from __future__ import annotations

from django.db import models

from instances.models.servers import Instance


class Policy(models.TextChoices):
    ACCEPT = "ACCEPT", "accept"
    DROP = "DROP", "drop"
    REJECT = "REJECT", "reject"


class Firewall(models.Model):
    instance = models.OneToOneField(
        Instance, on_delete=models.CASCADE, primary_key=True, related_name="firewall"
    )
    enabled = models.BooleanField(
        default=False, help_text="The customer's rules and policies filter (off: all passes)."
    )
    policy_in = models.CharField(
        "incoming policy", max_length=6, choices=Policy.choices, default=Policy.DROP
    )
    policy_out = models.CharField(
        "outgoing policy", max_length=6, choices=Policy.choices, default=Policy.ACCEPT
    )
    # What PVE took last (enabled, policies, rules): a change PVE refuses goes back to it.
    applied = models.JSONField(default=dict, blank=True, editable=False)
    applied_at = models.DateTimeField(null=True, blank=True)
    nic_filtered = models.BooleanField(
        "NIC on the firewall",
        default=False,
        help_text="The VM's NIC runs with firewall=1 (PVE filters nothing without it; a server "
        "built before gets it at its next reboot).",
    )
    checked_at = models.DateTimeField("last compared with PVE", null=True, blank=True)
    drift = models.TextField(
        blank=True, help_text="How PVE differed from the portal at the last check (repaired)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"firewall of {self.instance_id}"


class FirewallRule(models.Model):
    class Direction(models.TextChoices):
        IN = "in", "incoming"
        OUT = "out", "outgoing"

    class Protocol(models.TextChoices):
        ANY = "", "any"
        TCP = "tcp", "TCP"
        UDP = "udp", "UDP"
        ICMP = "icmp", "ICMP"
        ICMPV6 = "icmpv6", "ICMPv6"

    firewall = models.ForeignKey(Firewall, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField()
    direction = models.CharField(max_length=3, choices=Direction.choices, default=Direction.IN)
    action = models.CharField(max_length=6, choices=Policy.choices, default=Policy.ACCEPT)
    protocol = models.CharField(max_length=6, choices=Protocol.choices, blank=True)
    port = models.CharField(max_length=11, blank=True, help_text="22, or a range 8000:8080")
    source = models.CharField(max_length=43, blank=True, help_text="CIDR; empty: any")
    destination = models.CharField(max_length=43, blank=True, help_text="CIDR; empty: any")
    comment = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["firewall", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["firewall", "position"], name="firewall_rule_unique_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.position}: {self.direction} {self.action} {self.protocol} {self.port}"
