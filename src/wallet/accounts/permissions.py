"""Role checks for API views (here, not in http/, because other apps' views use them through public.py)."""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class IsAdminRole(BasePermission):
    """Only users with the admin role; everyone else authenticated gets 403."""

    admin_only = True  # read by the OpenAPI generator to document the 403
    message = "This endpoint is for administrators."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "is_admin", False))
