"""The audit chain on real PostgreSQL: appended under a lock, refused edits, and tampering detected."""

import threading
from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from rest_framework.test import APIClient

from conftest import PASSWORD, login
from wallet.accounts.models import User
from wallet.audit.chain import GENESIS_HASH, row_hash
from wallet.audit.models import AuditAction, AuditChainHead, AuditEvent
from wallet.audit.selectors import audit_chain_problems
from wallet.audit.services import audit_record
from wallet.webhooks.models import WebhookLog, WebhookStatus
from wallet.webhooks.services import webhook_replay


def verify() -> str:
    out = StringIO()
    call_command("audit_verify", stdout=out, stderr=StringIO())
    return out.getvalue()


def tampered(sql: str, params: list[object]) -> None:
    """Change audit_events behind the application's back, as someone with a SQL prompt could."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")


def three_events(actor: User) -> list[AuditEvent]:
    return [
        audit_record(action=AuditAction.LOGIN_SUCCEEDED, actor=actor, ip="10.0.0.1"),
        audit_record(action=AuditAction.PASSWORD_CHANGED, actor=actor, subject=actor, details={"n": 1}),
        audit_record(action=AuditAction.LOGOUT, actor=actor, ip="10.0.0.1"),
    ]


@pytest.mark.django_db
class TestChain:
    def test_each_row_stores_the_previous_rows_hash_and_verify_passes(self, user: User) -> None:
        first, second, third = three_events(user)
        assert (first.id, second.id, third.id) == (1, 2, 3)
        assert first.prev_hash == GENESIS_HASH
        assert second.prev_hash == first.hash
        assert third.prev_hash == second.hash
        assert second.subject_type == "accounts.user"
        assert second.subject_id == str(user.id)
        head = AuditChainHead.objects.get()
        assert (head.last_id, head.last_hash) == (3, third.hash)
        assert audit_chain_problems() == []
        assert "ok (3 rows" in verify()

    def test_the_database_refuses_update_and_delete(self, user: User) -> None:
        three_events(user)
        for statement in ("UPDATE audit_events SET action = 'logout'", "DELETE FROM audit_events"):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                connection.cursor().execute(statement)
        assert AuditEvent.objects.count() == 3

    def test_an_edited_row_is_detected_and_named(self, user: User) -> None:
        three_events(user)
        tampered("UPDATE audit_events SET details = %s WHERE id = 2", ['{"n": 2}'])
        with pytest.raises(CommandError, match="chain broken at row 2: row 2: its fields do not match"):
            verify()

    def test_an_edit_that_recomputes_the_rows_own_hash_is_caught_by_the_next_row(self, user: User) -> None:
        _, second, _ = three_events(user)
        forged_hash = row_hash(
            id=2,
            created_at=second.created_at,
            action=second.action,
            actor_id=second.actor_id,
            actor_email="someone-else@example.com",
            subject_type=second.subject_type,
            subject_id=second.subject_id,
            ip=second.ip,
            details=second.details,
            prev_hash=second.prev_hash,
        )
        tampered(
            "UPDATE audit_events SET actor_email = %s, hash = %s WHERE id = 2",
            ["someone-else@example.com", forged_hash],
        )
        with pytest.raises(CommandError, match="chain broken at row 3: row 3: prev_hash does not match"):
            verify()

    def test_a_forged_inserted_row_is_detected(self, user: User) -> None:
        three_events(user)
        AuditEvent.objects.create(
            id=4, action=AuditAction.ADJUSTMENT_APPROVED, prev_hash="f" * 64, hash="e" * 64, actor_email="x"
        )
        with pytest.raises(CommandError, match="row 4"):
            verify()

    def test_deleted_rows_in_the_middle_and_at_the_end_are_detected(self, user: User) -> None:
        three_events(user)
        tampered("DELETE FROM audit_events WHERE id = 3", [])
        problems = audit_chain_problems()
        assert [p.message for p in problems] == [
            "the chain head names row 3 but the last row is 2: rows at the end were deleted or replaced"
        ]
        tampered("DELETE FROM audit_events WHERE id = 1", [])
        assert audit_chain_problems()[0].message == "row 2: expected row 1 next; rows are missing"


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain(make_user: Callable[..., User]) -> None:
    actor = make_user()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                audit_record(action=AuditAction.LOGIN_SUCCEEDED, actor=actor)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(AuditEvent.objects.order_by("id").values_list("id", flat=True)) == list(range(1, 41))
    assert audit_chain_problems() == []


@pytest.mark.django_db
class TestSensitiveActionsAreRecorded:
    def test_login_success_and_failure_with_ip_and_normalised_email_never_the_password(
        self, api: APIClient, user: User
    ) -> None:
        login(api, "  Thandi@Example.com ")
        bad = api.post(
            "/api/v1/auth/token",
            {"email": "THANDI@example.com", "password": "wrong password"},
            format="json",
            REMOTE_ADDR="203.0.113.9",
        )
        assert bad.status_code == 401
        ok, failed = AuditEvent.objects.order_by("id")
        assert (ok.action, ok.actor_id, ok.ip) == (AuditAction.LOGIN_SUCCEEDED, user.id, "127.0.0.1")
        assert (failed.action, failed.actor_id, failed.ip) == (AuditAction.LOGIN_FAILED, None, "203.0.113.9")
        assert failed.details == {"email": "thandi@example.com"}
        stored = str(AuditEvent.objects.values_list("details", flat=True)[:])
        assert "wrong password" not in stored
        assert PASSWORD not in stored

    def test_password_change_and_logout(self, api: APIClient, user: User) -> None:
        tokens = login(api, user.email)
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        changed = api.post(
            "/api/v1/me/password",
            {"current_password": PASSWORD, "new_password": "another long passphrase 42"},
            format="json",
        )
        assert changed.status_code == 200, changed.content
        logout = api.post("/api/v1/auth/logout", {"refresh": changed.json()["refresh"]}, format="json")
        assert logout.status_code == 204
        actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_id"))
        assert actions == [
            (AuditAction.LOGIN_SUCCEEDED, user.id),
            (AuditAction.PASSWORD_CHANGED, user.id),
            (AuditAction.LOGOUT, user.id),
        ]

    def test_role_and_active_changes_by_an_admin(
        self, admin_api: APIClient, admin_user: User, make_user: Callable[..., User]
    ) -> None:
        user = make_user(email="former-admin@example.com", role=User.Role.ADMIN)
        response = admin_api.patch(f"/api/v1/admin/users/{user.id}", {"role": "user"}, format="json")
        assert response.status_code == 200
        response = admin_api.patch(f"/api/v1/admin/users/{user.id}", {"is_active": False}, format="json")
        assert response.status_code == 200
        role, active = AuditEvent.objects.filter(
            action__in=[AuditAction.USER_ROLE_CHANGED, AuditAction.USER_ACTIVE_CHANGED]
        ).order_by("id")
        assert (role.action, role.actor_id, role.subject_id) == (
            AuditAction.USER_ROLE_CHANGED,
            admin_user.id,
            str(user.id),
        )
        assert role.details == {"email": user.email, "from": "admin", "to": "user"}
        assert (active.action, active.details["to"]) == (AuditAction.USER_ACTIVE_CHANGED, False)
        assert audit_chain_problems() == []

    def test_webhook_replay(self, admin_user: User) -> None:
        log = WebhookLog.objects.create(
            dedup_key="k1",
            event_type="purchase.paid",
            object_type="purchase",
            object_id="p1",
            updated_on=1,
            body="{}",
            verified_with="pinned",
            status=WebhookStatus.DEAD_LETTERED,
        )
        assert webhook_replay(log_id=log.id, actor=admin_user.email, ip="10.1.2.3") is True
        assert webhook_replay(log_id=log.id, actor=admin_user.email) is False  # not eligible: not recorded
        event = AuditEvent.objects.get(action=AuditAction.WEBHOOK_REPLAYED)
        assert (event.actor_email, event.subject_type, event.subject_id, event.ip) == (
            admin_user.email,
            "webhooks.webhooklog",
            str(log.id),
            "10.1.2.3",
        )
