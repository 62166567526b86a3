from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "wallet.events"
    label = "events"
    verbose_name = "Outgoing events"
