from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "wallet.accounts"
    label = "accounts"
    verbose_name = "Accounts"
