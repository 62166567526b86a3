"""What every four-eyes console page shares (corrections, withdrawal resolutions, refunds): the address an
action is audited under, the add form that proposes, the read-only saved row, and the approve/reject
actions that call the app's services one row at a time."""

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from wallet.core.errors import ApplicationError, ValidationFailedError
from wallet.core.http.throttling import client_ip


def console_client_ip(request: HttpRequest) -> str | None:
    """The operator's address by the API's rule (TRUSTED_PROXY_COUNT): behind a proxy REMOTE_ADDR is the
    proxy's, and the audit log must name the same address the API would."""
    return client_ip(request)


class ProposalForm(forms.ModelForm):
    """The add form of a proposal: checked by the app's own validation service as the proposer, so the
    console refuses what the service would refuse, with its messages on the fields they name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.request: HttpRequest | None = kwargs.pop("request", None)
        super().__init__(*args, **kwargs)

    def validate_proposal(self, proposer: Any, cleaned: dict[str, Any]) -> None:
        """Raise the app's ValidationFailedError or ApplicationError if the proposal would be refused."""
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        proposer = self.request.user if self.request else None
        assert proposer is not None  # noqa: S101 - only admins reach the admin site
        try:
            self.validate_proposal(proposer, cleaned)
        except ValidationFailedError as exc:
            fields = exc.details.get("fields", {})
            raise ValidationError(
                {field if field in self.fields else NON_FIELD_ERRORS: msgs for field, msgs in fields.items()}
            ) from exc
        except ApplicationError as exc:
            raise ValidationError(exc.message) from exc
        return cleaned


class FourEyesDecisionsMixin:
    """Approve/reject actions over the selected rows. A subclass says how to decide one row
    (`decide_one`), which rows can be decided (`decidable`, default all), and how to name them."""

    decided_noun = "row(s)"
    approved_verb = "Approved"

    def decide_one(self, obj: Any, *, decider: Any, approve: bool, ip: str | None) -> None:
        raise NotImplementedError

    def decidable(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset

    def decide_selected(self, request: HttpRequest, queryset: QuerySet[Any], *, approve: bool) -> None:
        decider, ip = request.user, console_client_ip(request)
        done = 0
        for obj in self.decidable(queryset):
            try:
                self.decide_one(obj, decider=decider, approve=approve, ip=ip)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)  # type: ignore[attr-defined]
        skipped = queryset.count() - self.decidable(queryset).count()
        if skipped:
            self.message_user(  # type: ignore[attr-defined]
                request, f"{skipped} selected could not be decided: left as they are.", messages.WARNING
            )
        if done:
            verb = self.approved_verb if approve else "Rejected"
            self.message_user(request, f"{verb} {done} {self.decided_noun}.", messages.SUCCESS)  # type: ignore[attr-defined]


class ProposeThenReadOnlyMixin:
    """The add form proposes (the form takes the request, to validate as the proposer); a saved proposal is
    never edited or deleted, only decided by the actions."""

    propose_form: Any = None

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None:
            return super().get_form(request, obj, change, **kwargs)  # type: ignore[misc]
        form_class = super().get_form(request, obj, change, form=self.propose_form, **kwargs)  # type: ignore[misc]

        class RequestForm(form_class):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, request=request, **kw)

        return RequestForm

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.propose_form.Meta.fields if obj is None else self.readonly_fields  # type: ignore[attr-defined]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields  # type: ignore[attr-defined]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
