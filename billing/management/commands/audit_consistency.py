"""`manage.py audit_consistency`: money, servers and Proxmox against each other; exits 1 and
lists each violation when something disagrees (support can run it any time; it changes
nothing)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing.audit import audit


class Command(BaseCommand):
    help = "Check that money, servers and Proxmox agree (read-only; exits 1 on violations)."

    def handle(self, *args, **options) -> None:
        found = 0
        for check, problems in audit().items():
            if problems:
                self.stdout.write(self.style.ERROR(f"{check}: {len(problems)} violation(s)"))
                for problem in problems:
                    self.stdout.write(f"  - {problem}")
                found += len(problems)
            else:
                self.stdout.write(f"{check}: ok")
        if found:
            raise CommandError(f"{found} violation(s).")
        self.stdout.write(self.style.SUCCESS("Money, servers and Proxmox agree."))
