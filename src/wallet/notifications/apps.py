from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "wallet.notifications"
    label = "notifications"
    verbose_name = "Notifications"
