"""The URL map: the versioned API, its schema and docs, health probes, the admin and the wallet page."""

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularSwaggerView

from wallet.core.http import views as core_views
from wallet.core.http.schema_view import CachedSchemaApi
from wallet.observability.metrics import metrics_view

api_v1: list[URLPattern | URLResolver] = [
    path("", include("wallet.accounts.http.urls")),
    path("", include("wallet.transactions.http.urls")),
    path("", include("wallet.webhooks.http.urls")),
    path("", include("wallet.statements.http.urls")),
    path("", include("wallet.events.http.urls")),
    path("schema/", CachedSchemaApi.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path(settings.ADMIN_URL, admin.site.urls),
    # The reference wallet page (ADR 0010): `/` and the checkout's return path, `/deposits/<id>`.
    path("", include("wallet.webapp.urls")),
]

handler400 = "wallet.core.http.views.bad_request"
handler403 = "wallet.core.http.views.permission_denied"
handler404 = "wallet.core.http.views.not_found"
handler500 = "wallet.core.http.views.server_error"
