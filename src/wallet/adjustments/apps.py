from django.apps import AppConfig


class AdjustmentsConfig(AppConfig):
    name = "wallet.adjustments"
    label = "adjustments"
    verbose_name = "Balance corrections"
