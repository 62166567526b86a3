from django.urls import path

from wallet.events.http import views

urlpatterns = [
    path("admin/event-endpoints", views.EventEndpointListApi.as_view(), name="admin-event-endpoint-list"),
    path(
        "admin/event-endpoints/<uuid:endpoint_id>",
        views.EventEndpointDetailApi.as_view(),
        name="admin-event-endpoint-detail",
    ),
    path(
        "admin/event-endpoints/<uuid:endpoint_id>/rotate-secret",
        views.EventEndpointRotateSecretApi.as_view(),
        name="admin-event-endpoint-rotate-secret",
    ),
    path(
        "admin/event-endpoints/<uuid:endpoint_id>/deliveries",
        views.EventDeliveryListApi.as_view(),
        name="admin-event-endpoint-deliveries",
    ),
    path(
        "admin/event-endpoints/<uuid:endpoint_id>/replay",
        views.EventReplayApi.as_view(),
        name="admin-event-endpoint-replay",
    ),
]
