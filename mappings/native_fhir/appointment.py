"""Appointment <-> ``Appointment``.

- ``status`` -> ``status`` (:data:`.codes.APPOINTMENT_STATUS`: scheduled->booked,
  canceled->cancelled, completed->fulfilled, no-show->noshow)
- ``patient``, ``provider`` -> ``participant`` (Patient, Practitioner; status accepted)
- ``location`` (free text) -> a participant typed ``v3-ParticipationType#LOC`` whose
  ``actor`` has only a ``display`` (we serve no Location resources)
- ``startAt``/``endAt`` -> ``start``/``end``; ``reason`` -> ``reasonCode[0].text``
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._datatypes import check_keys, check_resource, instant, meta, parse_instant, parse_ref, ref, text_value
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
from .codes import APPOINTMENT_STATUS, V3_PARTICIPATION_TYPE, invert

NOT_CARRIED: tuple[str, ...] = ()
_STATUS_IN = invert(APPOINTMENT_STATUS)
_ELEMENTS = ("status", "start", "end", "participant", "reasonCode")
_LOC = [{"coding": [{"system": V3_PARTICIPATION_TYPE, "code": "LOC", "display": "location"}]}]


def to_fhir(
    record: NativeRecord, options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> FhirResource:
    """``Appointment`` for one native Appointment."""
    out: FhirResource = {"resourceType": "Appointment", "id": record["objectId"], "meta": meta(record)}
    out["status"] = APPOINTMENT_STATUS.get(record.get("status") or "scheduled", "booked")
    if record.get("reason"):
        out["reasonCode"] = [{"text": record["reason"]}]
    for field, element in (("startAt", "start"), ("endAt", "end")):
        if record.get(field) is not None:
            out[element] = instant(record[field])
    participants: list[dict[str, Any]] = [{"actor": ref("Patient", record["patient"]), "status": "accepted"}]
    if record.get("provider"):
        participants.append({"actor": ref("Practitioner", record["provider"]), "status": "accepted"})
    if record.get("location"):
        actor = {"display": record["location"]}
        participants.append({"type": _LOC, "actor": actor, "status": "accepted"})
    out["participant"] = participants
    return out


def from_fhir(
    resource: Mapping[str, Any], options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> NativeDraft:
    """Writable Appointment fields from an ``Appointment``; raises :class:`MappingError`."""
    check_resource(resource, "Appointment", _ELEMENTS)
    status = resource.get("status")
    if status not in _STATUS_IN:
        raise MappingError(f"unsupported status code {status!r}", "Appointment.status", code="code-invalid")
    draft: NativeDraft = {"status": _STATUS_IN[status], "patient": None, "provider": None, "location": None}
    for field, element in (("startAt", "start"), ("endAt", "end")):
        raw = resource.get(element)
        draft[field] = None if raw is None else parse_instant(raw, f"Appointment.{element}")
    reasons = resource.get("reasonCode") or []
    if len(reasons) > 1:
        raise MappingError("only one reason can be stored", "Appointment.reasonCode[1]")
    draft["reason"] = None
    if reasons:
        reason = check_keys(reasons[0], {"text"}, "Appointment.reasonCode[0]")
        draft["reason"] = text_value(reason.get("text"), "Appointment.reasonCode[0].text")
    for index, item in enumerate(resource.get("participant") or []):
        _participant(item, f"Appointment.participant[{index}]", draft, options)
    if draft["patient"] is None:
        raise MappingError("a Patient participant is required", "Appointment.participant", code="required")
    return draft


def _participant(item: Any, where: str, draft: NativeDraft, options: MappingOptions) -> None:
    part = check_keys(item, {"type", "actor", "status"}, where)
    if part.get("status") != "accepted":
        raise MappingError("only accepted participants can be stored", f"{where}.status", code="code-invalid")
    if "type" in part:
        if part["type"] != _LOC or draft["location"] is not None:
            raise MappingError("only one location participant (type LOC) is supported", f"{where}.type")
        actor = check_keys(part.get("actor"), {"display"}, f"{where}.actor")
        draft["location"] = text_value(actor.get("display"), f"{where}.actor.display")
        return
    kind, object_id = parse_ref(part.get("actor"), ("Patient", "Practitioner"), f"{where}.actor", options)
    field = "patient" if kind == "Patient" else "provider"
    if draft[field] is not None:
        raise MappingError(f"only one {kind} participant can be stored", f"{where}.actor")
    draft[field] = object_id
