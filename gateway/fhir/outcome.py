"""OperationOutcome: the single error currency of the FHIR door (FHIR R4 ``OperationOutcome``).

Every failure becomes a :class:`FhirError` carrying its HTTP status and one or more
issues; the neutral ``gateway.errors`` hierarchy is rendered through :func:`from_gateway`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError, NotFound


@dataclass(frozen=True, slots=True)
class OutcomeIssue:
    """One ``OperationOutcome.issue``: ``code`` from the FHIR ``issue-type`` value set."""

    code: str
    diagnostics: str
    severity: str = "error"
    expression: str | None = None


def outcome(*issues: OutcomeIssue) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for issue in issues:
        item: dict[str, Any] = {"severity": issue.severity, "code": issue.code, "diagnostics": issue.diagnostics}
        if issue.expression:
            item["expression"] = [issue.expression]
        out.append(item)
    return {"resourceType": "OperationOutcome", "issue": out}


class FhirError(Exception):
    """An error response: HTTP ``status`` plus the issues of its OperationOutcome."""

    def __init__(self, status: int, *issues: OutcomeIssue, headers: dict[str, str] | None = None) -> None:
        super().__init__(issues[0].diagnostics if issues else str(status))
        self.status = status
        self.issues = issues
        self.headers = headers or {}

    @classmethod
    def of(cls, status: int, code: str, diagnostics: str, expression: str | None = None) -> FhirError:
        return cls(status, OutcomeIssue(code, diagnostics, expression=expression))

    def body(self) -> dict[str, Any]:
        return outcome(*self.issues)


NOT_FOUND_TEXT = "Resource not found."


def not_found() -> FhirError:
    """The one 404 body: a missing resource and a hidden one answer identically."""
    return FhirError.of(404, "not-found", NOT_FOUND_TEXT)


def bad_request(diagnostics: str, expression: str | None = None) -> FhirError:
    return FhirError.of(400, "invalid", diagnostics, expression)


def from_gateway(exc: GatewayError) -> FhirError:
    if isinstance(exc, NotFound):
        return not_found()
    status = exc.status_code if exc.status_code >= 400 else 400
    return FhirError.of(status, exc.fhir_code, exc.message, exc.expression)
