"""Mail to customers about their servers."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from instances.models import Instance


def send_server_ready(instance_id: int) -> None:
    instance = Instance.objects.select_related("owner", "ipv4", "os_image").get(pk=instance_id)
    context = {
        "instance": instance,
        "url": settings.SITE_URL + reverse("instances:detail", args=[instance.pk]),
    }
    send_mail(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Your server {instance.hostname} is ready",
        message=render_to_string("instances/email/ready.txt", context),
        from_email=None,
        recipient_list=[instance.owner.email],
    )
