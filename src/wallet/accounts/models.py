"""The user: an email, a password hash, a role and, for admins, a duty. Nothing about money lives here.

An admin's duty says which console and service actions they may take (docs/adr/0009-admin-grant-four-eyes.md):
operations (read, replay webhooks, resend emails) or finance (operations, plus balance corrections and
later refunds and withdrawal resolutions). The admin role is only ever granted through an AdminGrant that a
second admin approved (four eyes), or by an operator with shell access (`manage.py admin_grant`).
"""

import uuid
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from wallet.accounts import token_cache

# Apps whose console writes move money or decide about it: only admins with the finance duty change them.
FINANCE_APPS = frozenset({"adjustments"})


def normalize_email(email: str) -> str:
    """Emails are stored trimmed and lower-cased, so case or spacing variants are the same account."""
    return email.strip().lower()


class UserQuerySet(models.QuerySet["User"]):
    def update(self, **kwargs: Any) -> int:
        # Like User.save: the cached token user of each changed row is invalidated (last_login alone is
        # not cached).
        if set(kwargs) <= {"last_login"}:
            return super().update(**kwargs)
        user_ids = list(self.values_list("pk", flat=True))
        changed = super().update(**kwargs)
        for user_id in user_ids:
            token_cache.invalidate_on_commit(user_id=user_id, using=self.db)
        return changed


class UserManager(BaseUserManager["User"]):
    def create_user(self, email: str, password: str | None = None, **extra: Any) -> "User":
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra["role"] = User.Role.ADMIN
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser):
    class Role(models.TextChoices):
        USER = "user", "User"
        ADMIN = "admin", "Admin"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Duty(models.TextChoices):
        OPERATIONS = "operations", "Operations (read, replay, resend)"
        FINANCE = "finance", "Finance (operations, plus corrections, refunds, resolutions)"

    # Meaningful only while the role is admin; least privilege unless a grant says finance.
    admin_duty = models.CharField(max_length=16, choices=Duty.choices, default=Duty.OPERATIONS)

    objects = UserManager.from_queryset(UserQuerySet)()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []  # type: ignore[misc]  # stubs declare it a ClassVar

    class Meta:
        db_table = "users"
        constraints = [
            models.UniqueConstraint(Lower("email"), name="users_email_case_insensitive_unique"),
            models.CheckConstraint(condition=models.Q(role__in=["user", "admin"]), name="users_role_valid"),
            models.CheckConstraint(
                condition=models.Q(admin_duty__in=["operations", "finance"]), name="users_admin_duty_valid"
            ),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        # Any save (a service, the Django admin, manage.py) invalidates the cached token user, so a new
        # password, a deactivation or a role change is seen by the next request (accounts/token_cache.py).
        if set(kwargs.get("update_fields") or ()) != {"last_login"}:
            token_cache.invalidate_on_commit(user_id=self.pk, using=kwargs.get("using") or self._state.db)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        user_id, using = self.pk, kwargs.get("using") or self._state.db
        deleted = super().delete(*args, **kwargs)
        token_cache.invalidate_on_commit(user_id=user_id, using=using)
        return deleted

    def __str__(self) -> str:
        return self.email

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN

    # The Django admin site asks for these; the role is the single source of truth.
    @property
    def is_staff(self) -> bool:
        return self.is_active and self.is_admin

    @property
    def is_superuser(self) -> bool:
        return self.is_staff

    def has_perm(self, perm: str, obj: object = None) -> bool:
        """Every admin reads everything; changing what only finance may change needs the finance duty."""
        if not self.is_staff:
            return False
        app_label, _, codename = perm.partition(".")
        if app_label in FINANCE_APPS and not codename.startswith("view_"):
            return self.admin_duty == self.Duty.FINANCE
        return True

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_staff


class AdminGrant(models.Model):
    """A proposal to make a user an admin with a duty; it takes effect only when a second admin approves it.

    proposed_by is null for a grant made on the command line by an operator with shell access (bootstrap:
    with one admin there is nobody to approve). The database refuses a decider equal to the proposer.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="admin_grants")
    duty = models.CharField(max_length=16, choices=User.Duty.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    proposed_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    proposed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "admin_grants"
        ordering = ("-proposed_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status="pending"),
                name="admin_grants_one_pending_per_user",
            ),
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | models.Q(proposed_by__isnull=True)
                | ~models.Q(decided_by=models.F("proposed_by")),
                name="admin_grants_decider_not_proposer",
            ),
            models.CheckConstraint(
                condition=models.Q(proposed_by__isnull=True) | ~models.Q(user=models.F("proposed_by")),
                name="admin_grants_not_self",
            ),
        ]

    def __str__(self) -> str:
        return f"admin grant ({self.duty}) for {self.user_id}: {self.status}"
