"""The one error a reverse mapping raises: a FHIR resource we cannot store faithfully.

The FHIR door renders it as an ``OperationOutcome`` (HTTP 422) with one ``issue`` per
:class:`Issue`; ``expression`` is the FHIRPath of the offending element, as in
``OperationOutcome.issue.expression`` (e.g. ``Observation.valueQuantity.code``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem: ``code`` is from the FHIR ``issue-type`` value set (``OperationOutcome.issue.code``)."""

    message: str
    expression: str
    code: str = "invalid"


class MappingError(ValueError):
    """A resource, or part of one, that the native store cannot hold without loss.

    ``issues`` has at least one entry; ``expression`` and ``code`` are the first issue's.
    """

    def __init__(
        self, message: str, expression: str, *, code: str = "invalid", issues: list[Issue] | None = None
    ) -> None:
        super().__init__(f"{expression}: {message}")
        self.message = message
        self.expression = expression
        self.code = code
        self.issues: list[Issue] = issues or [Issue(message, expression, code)]

    @classmethod
    def from_issues(cls, issues: list[Issue]) -> MappingError:
        """Combine several issues (at least one) into one error."""
        first = issues[0]
        return cls(first.message, first.expression, code=first.code, issues=list(issues))
