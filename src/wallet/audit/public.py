"""Audit: the tamper-evident, append-only log of sensitive actions. Other apps import from here only."""

from wallet.audit.models import AuditAction
from wallet.audit.selectors import ChainProblem, audit_chain_problems
from wallet.audit.services import audit_record

__all__ = ["AuditAction", "ChainProblem", "audit_chain_problems", "audit_record"]
