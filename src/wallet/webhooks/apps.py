from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "wallet.webhooks"
    label = "webhooks"
    verbose_name = "Revio webhooks"
