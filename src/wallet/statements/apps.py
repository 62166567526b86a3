from django.apps import AppConfig


class StatementsConfig(AppConfig):
    name = "wallet.statements"
    label = "statements"
    verbose_name = "Statements"
