from django.apps import AppConfig


class InstancesConfig(AppConfig):
    name = "instances"
    verbose_name = "Servers"

    def ready(self) -> None:
        from instances import consoles  # noqa: F401 - signing out ends the consoles
