from django.urls import path

from wallet.accounts.http import views

urlpatterns = [
    path("auth/register", views.AuthRegisterApi.as_view(), name="auth-register"),
    path("auth/token", views.AuthTokenApi.as_view(), name="auth-token"),
    path("auth/token/refresh", views.AuthTokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout", views.AuthLogoutApi.as_view(), name="auth-logout"),
    path("auth/password-reset", views.AuthPasswordResetApi.as_view(), name="auth-password-reset"),
    path(
        "auth/password-reset/confirm",
        views.AuthPasswordResetConfirmApi.as_view(),
        name="auth-password-reset-confirm",
    ),
    path("me", views.MeApi.as_view(), name="me"),
    path("me/password", views.MePasswordApi.as_view(), name="me-password"),
    path("me/notifications", views.MeNotificationsApi.as_view(), name="me-notifications"),
    path("admin/users", views.AdminUserListApi.as_view(), name="admin-user-list"),
    path("admin/users/<uuid:user_id>", views.AdminUserDetailApi.as_view(), name="admin-user-detail"),
]
