from django.urls import path

from wallet.webapp import views

urlpatterns = [
    path("", views.wallet_page, name="wallet-page"),
    # FRONTEND_URL/deposits/<id>?result=success|failure is where Revio's checkout returns the customer.
    path("deposits/<uuid:transaction_id>", views.wallet_page, name="wallet-page-deposit"),
    # Where the emails link (wallet.notifications.rendering, accounts' password reset).
    path("transactions/<uuid:transaction_id>", views.wallet_page, name="wallet-page-transaction"),
    path("settings/notifications", views.wallet_page, name="wallet-page-notifications"),
    path("reset-password", views.wallet_page, name="wallet-page-reset-password"),
]
