from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "wallet.reconciliation"
    label = "reconciliation"
    verbose_name = "Reconciliation and recovery"
