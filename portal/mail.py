"""The development mail backend: mail on the console as a person reads it."""

from __future__ import annotations

from django.core.mail.backends.console import EmailBackend

HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date")


class ConsoleEmailBackend(EmailBackend):
    """Prints each message's headers and its text body decoded (`EMAIL_URL=console:`).

    Django's console backend prints the message as it is sent, quoted-printable: long lines are
    broken with "=" and every "=" becomes "=3D", so a verification link cannot be copied."""

    def write_message(self, message) -> None:
        msg = message.message()
        lines = [f"{name}: {msg[name]}" for name in HEADERS if msg[name]]
        text = msg.get_body(preferencelist=("plain",))
        lines += ["", text.get_content().rstrip("\n") if text is not None else "(no text part)"]
        others = [
            part.get_content_type() + (f" {part.get_filename()}" if part.get_filename() else "")
            for part in msg.walk()
            if not part.is_multipart() and part is not text
        ]
        if others:
            lines += ["", f"(also in this message: {', '.join(others)})"]
        self.stream.write("\n".join(lines) + "\n" + "-" * 79 + "\n")
