from django.apps import AppConfig


class WebappConfig(AppConfig):
    name = "wallet.webapp"
    label = "webapp"
    verbose_name = "Reference wallet page"
