"""Mail names the portal (SITE_NAME), not the host it was requested from, and in development the
console shows it as a person reads it: the verification link whole, on one line."""

from __future__ import annotations

import datetime
import io
import re

import pytest
from django.core import mail

from billing.models import Invoice
from billing.notifications import send_payment_failed
from portal.mail import ConsoleEmailBackend
from portal.settings import mailer_from_url
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def sign_up(client, email: str = "dave@example.com") -> mail.EmailMessage:
    client.post("/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    [message] = mail.outbox
    return message


def verification_url(message: mail.EmailMessage) -> str:
    return re.search(r"https?://\S+/accounts/confirm-email/\S+/", message.body).group(0)


def test_the_verification_mail_greets_from_the_portal_not_from_the_host(client):
    message = sign_up(client)
    assert message.subject == "[VPS portal] Please Confirm Your Email Address"
    assert message.body.startswith("Hello from VPS portal!")
    assert "Thank you for using VPS portal!" in message.body
    assert message.from_email == "VPS portal <noreply@portal.example.com>"
    assert verification_url(message).startswith("http://testserver/accounts/confirm-email/")


def test_the_greeting_follows_the_site_name_setting(client, settings):
    settings.SITE_NAME = "Example Hosting"
    assert sign_up(client).body.startswith("Hello from Example Hosting!")


def test_the_link_in_the_mail_verifies_the_address(client):
    path = verification_url(sign_up(client)).removeprefix("http://testserver")
    client.post(path)
    response = client.post("/accounts/login/", {"login": "dave@example.com", "password": PASSWORD})
    assert response["Location"] == "/servers/"


def test_console_mail_shows_the_whole_verification_link_on_one_line(client):
    message = sign_up(client)
    url = verification_url(message)
    assert len(url) > 76, "long enough that quoted-printable would break it"
    out = io.StringIO()

    ConsoleEmailBackend(stream=out).send_messages([message])

    printed = out.getvalue().splitlines()
    assert "Subject: [VPS portal] Please Confirm Your Email Address" in printed
    assert "To: dave@example.com" in printed
    assert "Hello from VPS portal!" in printed
    assert any(line.endswith(url) for line in printed), out.getvalue()
    assert "=3D" not in out.getvalue()


def test_console_mail_names_the_parts_it_does_not_print():
    message = mail.EmailMultiAlternatives("Hi", "plain text", "a@example.com", ["b@example.com"])
    message.attach_alternative("<p>html</p>", "text/html")
    message.attach("invoice.pdf", b"%PDF-1.4", "application/pdf")
    out = io.StringIO()

    ConsoleEmailBackend(stream=out).send_messages([message])

    assert "plain text" in out.getvalue()
    assert "(also in this message: text/html, application/pdf invoice.pdf)" in out.getvalue()
    assert "<p>html</p>" not in out.getvalue()


def test_email_url_console_uses_the_readable_console_backend():
    assert mailer_from_url("console:")["BACKEND"] == "portal.mail.ConsoleEmailBackend"


def test_the_payment_failed_mail_is_signed_with_the_site_name(alice, settings):
    settings.SITE_NAME = "Example Hosting"
    invoice = Invoice.objects.create(
        owner=alice,
        stripe_invoice_id="in_1",
        number="INV-0001",
        status="open",
        currency="EUR",
        subtotal_cents=499,
        tax_cents=95,
        total_cents=594,
        issued_at=datetime.datetime.now(datetime.UTC),
    )
    send_payment_failed(invoice, next_attempt=None)
    [message] = mail.outbox
    assert message.body.rstrip().endswith("— Example Hosting")
