"""Browser console sessions: one customer (or staff member) at one server's console, once."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from instances.models.servers import Instance, InstanceEvent


class ConsoleSession(models.Model):
    """A short-lived, single-use right to open a server's console from one login session.

    The page gets a random token (only its SHA-256 is kept); the console proxy (portal/asgi.py)
    takes it once, within CONSOLE_SESSION_TTL seconds, from the same login session, and then
    relays the console until the session ends: the customer closes it or signs out, it stays
    idle too long, or the server stops running or is suspended.
    """

    class Kind(models.TextChoices):
        TERMINAL = "terminal", "text terminal"
        SCREEN = "screen", "screen"

    class End(models.TextChoices):
        CLOSED = "closed", "closed"
        DISCONNECTED = "disconnected", "the server's console closed the connection"
        IDLE = "idle", "idle too long"
        SIGNED_OUT = "signed_out", "signed out"
        SUSPENDED = "suspended", "the server was suspended"
        NOT_RUNNING = "not_running", "the server is not running"
        UNAVAILABLE = "unavailable", "the server's console could not be reached"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="consoles")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    actor = models.CharField(max_length=8, choices=InstanceEvent.Actor.choices)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The SHA-256 of the login session's key: signing out there ends it.
    login_session_hash = models.CharField(max_length=64, db_index=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    connect_by = models.DateTimeField(help_text="The console must connect before this.")
    connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=End.choices, blank=True)
    detail = models.TextField(blank=True, help_text="For staff, e.g. Proxmox's own message.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["instance"],
                condition=Q(ended_at__isnull=True),
                name="console_open_by_server",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.instance_id} for {self.user_id}"
