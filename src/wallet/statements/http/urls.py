from django.urls import path

from wallet.statements.http import views

urlpatterns = [
    path("statements", views.StatementApi.as_view(), name="statement"),
    path(
        "admin/users/<uuid:user_id>/statement",
        views.AdminUserStatementApi.as_view(),
        name="admin-user-statement",
    ),
]
