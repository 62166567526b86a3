from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "wallet.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from wallet.core import checks  # noqa: F401 - registers the deployment checks
