from django.contrib import admin

from wallet.accounts.models import User


@admin.register(User)
class UserAdmin(admin.ModelAdmin[User]):
    list_display = ("email", "role", "admin_duty", "is_active", "created_at", "last_login")
    list_filter = ("role", "is_active")
    search_fields = ("email",)
    ordering = ("-created_at",)
    # Passwords are changed by their owner or reset by email, never typed in here.
    fields = ("email", "role", "admin_duty", "is_active", "created_at", "last_login")
    readonly_fields = ("created_at", "last_login")
