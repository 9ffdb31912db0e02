from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Connects the receiver that pushes a changed VAT ID to Stripe (accounts sends it).
        from billing import tasks  # noqa: F401
