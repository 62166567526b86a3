from django.apps import AppConfig


class TransactionsConfig(AppConfig):
    name = "wallet.transactions"
    label = "transactions"
    verbose_name = "Deposits and withdrawals"
