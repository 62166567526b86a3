from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "wallet.audit"
    label = "audit"
    verbose_name = "Audit log"
