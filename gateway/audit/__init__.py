"""Append-only, hash-chained audit trail: the writer every door calls inside its transaction."""

from gateway.audit.writer import AuditAction, AuditEntry, append, entry_hash

__all__ = ["AuditAction", "AuditEntry", "append", "entry_hash"]
