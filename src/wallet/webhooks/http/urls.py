from django.urls import path

from wallet.webhooks.http import views

urlpatterns = [
    path("webhooks/revio", views.RevioWebhookApi.as_view(), name="webhook-revio"),
    path("webhooks/revio/eft", views.RevioEftCallbackApi.as_view(), name="webhook-revio-eft"),
]
