"""Browser console sessions: opening one for a server, the single use the console proxy makes
of it, and every way one ends. Each session that connected is on the server's timeline twice:
when it opened and when it closed, with why.

The page gets a random token; only its SHA-256 is kept. The console proxy (instances/
console_proxy.py, in the ASGI server) takes it once, within CONSOLE_SESSION_TTL seconds, from
the login session that opened it, while the server runs. This module never talks to Proxmox.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import User
from instances.models import ConsoleSession, Family, Instance, InstanceOperation
from instances.state import Actor, InstanceError, event_record

Kind = ConsoleSession.Kind
End = ConsoleSession.End
Status = Instance.Status
# Ends that the customer (or staff member) at the console caused; the others are the system's.
THEIR_OWN = {End.CLOSED, End.SIGNED_OUT, End.IDLE}


class ConsoleRefused(InstanceError):
    """The console proxy may not use this token (used, expired, another user or login)."""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def idle_time() -> str:
    """How long a console may go without input, in words ("15 minutes")."""
    minutes = max(1, round(settings.CONSOLE_IDLE_TIMEOUT / 60))
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def console_kinds(instance: Instance) -> list[str]:
    """The consoles the server offers: a text terminal where its image has a serial console."""
    if instance.family == Family.DEDICATED or not instance.vmid:
        return []
    if instance.os_image.serial_console:
        return [Kind.TERMINAL, Kind.SCREEN]
    return [Kind.SCREEN]


def console_open(
    *, instance: Instance, user: User, kind: str, login_session_key: str, actor: str
) -> tuple[ConsoleSession, str]:
    """A console session of the server for this user and login session, and the token the
    console page connects with (once, within CONSOLE_SESSION_TTL seconds)."""
    if kind not in console_kinds(instance):
        raise InstanceError("This server has no such console.")
    if instance.status != Status.RUNNING:
        raise InstanceError(f"The console is there while {instance.hostname} runs; start it first.")
    if not login_session_key:
        raise InstanceError("Sign in again to open the console.")
    token = secrets.token_urlsafe(32)
    session = ConsoleSession.objects.create(
        instance=instance,
        user=user,
        actor=actor,
        kind=kind,
        token_hash=digest(token),
        login_session_hash=digest(login_session_key),
        connect_by=timezone.now() + timedelta(seconds=settings.CONSOLE_SESSION_TTL),
    )
    return session, token


def console_claim(*, token: str, user_id: int, login_session_key: str) -> ConsoleSession:
    """The console session this token opens, taken for good (single use): only by the user
    and login session it was made for, in time, while its server runs. Raises ConsoleRefused."""
    now = timezone.now()
    with transaction.atomic():
        taken = ConsoleSession.objects.filter(
            token_hash=digest(token),
            user_id=user_id,
            login_session_hash=digest(login_session_key),
            connected_at__isnull=True,
            ended_at__isnull=True,
            connect_by__gt=now,
        ).update(connected_at=now)
        if not taken:
            raise ConsoleRefused(
                "This console session was already used or has expired; open the console again."
            )
        session = ConsoleSession.objects.select_related(
            "instance__cluster", "instance__node", "user"
        ).get(token_hash=digest(token))
        event_record(
            session.instance,
            message=f"Console opened: {session.get_kind_display()}.",
            actor=session.actor,
            actor_user=session.user,
        )
    reason = console_check(session_id=session.pk)
    if reason:
        console_end(session_id=session.pk, reason=reason)
        raise ConsoleRefused(f"The console closed: {End(reason).label}.")
    return session


def console_check(*, session_id: int) -> str | None:
    """Why the session must end now (an End value), or None while it may go on. The console
    proxy asks every CONSOLE_CHECK_INTERVAL seconds, so a sign-out or a suspension elsewhere
    reaches it within that time."""
    row = (
        ConsoleSession.objects.filter(pk=session_id)
        .values("ended_at", "end_reason", "instance_id", "instance__status")
        .first()
    )
    if row is None:
        return End.CLOSED
    if row["ended_at"] is not None:
        return row["end_reason"] or End.CLOSED
    suspending = InstanceOperation.objects.filter(
        instance_id=row["instance_id"],
        kind__in=[InstanceOperation.Kind.SUSPEND, InstanceOperation.Kind.TERMINATE],
        state__in=InstanceOperation.LIVE,
    ).exists()
    if row["instance__status"] == Status.SUSPENDED or suspending:
        return End.SUSPENDED
    if row["instance__status"] != Status.RUNNING:
        return End.NOT_RUNNING
    return None


def console_end(*, session_id: int, reason: str, detail: str = "") -> bool:
    """End the session (once; False if it had ended already). A session that had connected
    gets its closing line on the timeline; `detail` (Proxmox's message) is for staff."""
    with transaction.atomic():
        ended = ConsoleSession.objects.filter(pk=session_id, ended_at__isnull=True).update(
            ended_at=timezone.now(), end_reason=reason, detail=detail[:2000]
        )
        session = ConsoleSession.objects.select_related("instance", "user").get(pk=session_id)
        if ended and session.connected_at is not None:
            _record_end(session, detail)
    return bool(ended)


def consoles_end(
    *, reason: str, instance: Instance | None = None, login_session_key: str | None = None
) -> int:
    """End every open console session of a server, or of a login session; how many ended.
    The console proxy holding one notices at its next check and closes it."""
    sessions = ConsoleSession.objects.filter(ended_at__isnull=True)
    if instance is not None:
        sessions = sessions.filter(instance=instance)
    if login_session_key is not None:
        sessions = sessions.filter(login_session_hash=digest(login_session_key))
    return sum(
        console_end(session_id=pk, reason=reason) for pk in sessions.values_list("pk", flat=True)
    )


def _record_end(session: ConsoleSession, detail: str) -> None:
    reason = session.end_reason
    if reason == End.CLOSED:
        message = "Console closed."
    elif reason == End.IDLE:
        message = f"Console closed after {idle_time()} without input."
    else:
        message = f"Console closed: {End(reason).label}."
    own = reason in THEIR_OWN
    event_record(
        session.instance,
        message=message,
        detail=detail,
        actor=session.actor if own else Actor.SYSTEM,
        actor_user=session.user if own else None,
    )


@receiver(user_logged_out, dispatch_uid="instances.consoles.signed_out")
def _signed_out(sender, request, user, **kwargs) -> None:
    """Signing out ends the consoles opened from that login (Django sends this before it
    empties the session)."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        consoles_end(reason=End.SIGNED_OUT, login_session_key=key)
