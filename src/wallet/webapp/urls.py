from django.urls import path

from wallet.webapp import views

urlpatterns = [
    path("", views.wallet_page, name="wallet-page"),
    # FRONTEND_URL/deposits/<id>?result=success|failure is where Revio's checkout returns the customer.
    path("deposits/<uuid:transaction_id>", views.wallet_page, name="wallet-page-deposit"),
]
