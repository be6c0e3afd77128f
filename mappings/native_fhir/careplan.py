"""TreatmentPlan <-> ``CarePlan``.

- ``status`` -> ``status`` (:data:`.codes.CAREPLAN_STATUS`); ``intent`` is always ``plan``;
  ``category`` is always US Core ``assess-plan`` (a write may name it or leave it out)
- ``patient`` -> ``subject``; ``provider`` -> ``author`` (Practitioner)
- ``createdBy`` (a ``_User``) -> ``contributor[0]`` when the server resolves the user
- ``summary`` -> ``title``; ``details`` -> ``description``; ``startDate``/``endDate`` -> ``period``
- ``approvedAt``/``acknowledgedAt`` -> our ``careplan-approved``/``careplan-acknowledged``
  extensions (valueDateTime)

Not carried: ``createdBy`` when the user has no Patient/Practitioner resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._datatypes import (
    check_resource,
    ext,
    instant,
    meta,
    optional_text,
    parse_ref,
    period,
    read_extensions,
    read_period,
    ref,
    ref_user,
    single_datetime,
    user_ref,
)
from ._errors import MappingError
from ._types import (
    DEFAULT_OPTIONS,
    NO_USERS,
    FhirResource,
    MappingOptions,
    NativeDraft,
    NativeRecord,
    UserRefs,
)
from .codes import CAREPLAN_CATEGORY, CAREPLAN_CATEGORY_CODE, CAREPLAN_INTENT, CAREPLAN_STATUS, Ext, invert

NOT_CARRIED: tuple[str, ...] = ()
_STATUS_IN = invert(CAREPLAN_STATUS)
_ELEMENTS = (
    "extension", "status", "intent", "category", "title", "description", "subject", "period", "author",
    "contributor",
)  # fmt: skip
CATEGORY = {
    "coding": [
        {"system": CAREPLAN_CATEGORY, "code": CAREPLAN_CATEGORY_CODE, "display": "Assessment and Plan of Treatment"}
    ]
}
_EXTENSIONS = {Ext.APPROVED: "valueDateTime", Ext.ACKNOWLEDGED: "valueDateTime"}
_STAMPS = ((Ext.APPROVED, "approvedAt"), (Ext.ACKNOWLEDGED, "acknowledgedAt"))


def to_fhir(
    record: NativeRecord, options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> FhirResource:
    """``CarePlan`` for one TreatmentPlan."""
    out: FhirResource = {"resourceType": "CarePlan", "id": record["objectId"], "meta": meta(record)}
    extensions = [
        ext(options, which, "valueDateTime", instant(record[field]))
        for which, field in _STAMPS
        if record.get(field) is not None
    ]
    if extensions:
        out["extension"] = extensions
    out["status"] = CAREPLAN_STATUS.get(record.get("status") or "draft", "unknown")
    out["intent"] = CAREPLAN_INTENT
    out["category"] = [CATEGORY]
    if record.get("summary"):
        out["title"] = record["summary"]
    if record.get("details"):
        out["description"] = record["details"]
    out["subject"] = ref("Patient", record["patient"])
    if span := period(record.get("startDate"), record.get("endDate")):
        out["period"] = span
    if record.get("provider"):
        out["author"] = ref("Practitioner", record["provider"])
    if contributor := user_ref(user_refs, record.get("createdBy")):
        out["contributor"] = [contributor]
    return out


def from_fhir(
    resource: Mapping[str, Any], options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> NativeDraft:
    """Writable TreatmentPlan fields from a ``CarePlan``; raises :class:`MappingError`."""
    check_resource(resource, "CarePlan", _ELEMENTS)
    status = resource.get("status")
    if status not in _STATUS_IN:
        raise MappingError(f"unsupported status code {status!r}", "CarePlan.status", code="code-invalid")
    if resource.get("intent") != CAREPLAN_INTENT:
        raise MappingError("only intent 'plan' can be stored", "CarePlan.intent", code="code-invalid")
    _check_category(resource.get("category"))
    found = read_extensions(resource, "CarePlan", options, _EXTENSIONS)
    draft: NativeDraft = {
        "status": _STATUS_IN[status],
        "patient": parse_ref(resource.get("subject"), ("Patient",), "CarePlan.subject", options)[1],
        "summary": optional_text(resource.get("title"), "CarePlan.title"),
        "details": optional_text(resource.get("description"), "CarePlan.description"),
        "provider": None,
        "createdBy": None,
    }
    draft["startDate"], draft["endDate"] = read_period(resource.get("period"), "CarePlan.period")
    for which, field in _STAMPS:
        draft[field] = single_datetime(found.get(which), "CarePlan.extension")
    if resource.get("author") is not None:
        author = resource["author"]
        draft["provider"] = parse_ref(author, ("Practitioner",), "CarePlan.author", options)[1]
    contributors = resource.get("contributor") or []
    if len(contributors) > 1:
        raise MappingError("only the creating user can be stored", "CarePlan.contributor[1]")
    if contributors:
        kinds = ("Patient", "Practitioner")
        where = "CarePlan.contributor[0]"
        draft["createdBy"] = ref_user(user_refs, contributors[0], kinds, where, options)
    return draft


def _check_category(value: Any) -> None:
    """Only the one category every plan has can be stored (absent means the same)."""
    if value is None:
        return
    pairs = [
        (coding.get("system"), coding.get("code"))
        for concept in value
        if isinstance(value, list) and isinstance(concept, dict)
        for coding in concept.get("coding") or []
        if isinstance(coding, dict)
    ]
    if not isinstance(value, list) or len(value) != 1 or pairs != [(CAREPLAN_CATEGORY, CAREPLAN_CATEGORY_CODE)]:
        raise MappingError(
            f"only category {CAREPLAN_CATEGORY}|{CAREPLAN_CATEGORY_CODE} can be stored",
            "CarePlan.category",
            code="code-invalid",
        )
