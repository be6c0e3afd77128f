"""AuditLog -> ``AuditEvent`` (read-only), in the IHE Basic Audit Log Patterns (BALP) shape.

- ``action`` -> ``type`` (``audit-event-type#rest``, or DICOM ``110114`` User Authentication
  for login/logout), ``subtype`` (``restful-interaction`` code or DICOM Login/Logout) and
  ``action`` C/R/U/D/E (:data:`.codes.AUDIT_ACTIONS`); an action missing from the table is
  typed from our ``CodeSystem/audit-action`` with action E
- ``outcome`` -> ``outcome`` 0/4/8/12 (:data:`.codes.AUDIT_OUTCOMES`), ``outcomeDesc`` on failure
- ``createdAt`` -> ``recorded``
- ``actor``/``actorName``/``sourceAddress`` -> the requesting ``agent`` (``who`` resolved
  through ``user_refs``, else a ``_User`` identifier; ``network`` address type 1 name / 2 IP)
- ``clientId`` -> a second agent (DICOM ``110150`` Application), ``requestor`` false
- ``entityType``/``entityId`` -> ``entity.what`` (FHIR type name, :data:`.codes.FHIR_TYPES`),
  ``summary`` -> its ``description``, scalar ``metadata`` -> its ``detail``
- ``patient`` -> a patient entity (type 1 person, role 1 patient)
- ``requestId`` -> a BALP ``XrequestId`` entity; ``source.observer`` = the gateway
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ._datatypes import instant, meta, ref, user_ref
from ._types import DEFAULT_OPTIONS, NO_USERS, FhirResource, MappingOptions, NativeRecord, UserRefs
from .codes import (
    AUDIT_ACTIONS,
    AUDIT_ENTITY_TYPE,
    AUDIT_EVENT_TYPE,
    AUDIT_OUTCOMES,
    BALP_ENTITY_TYPE,
    CS_AUDIT_ACTION,
    DICOM_DCM,
    FHIR_TYPES,
    OBJECT_ROLE,
    SECURITY_SOURCE_TYPE,
    SID_CLIENT,
    SID_NATIVE,
    SID_USER,
    SUBTYPE_DISPLAY,
    local_uri,
)

_REST = {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "Restful Operation"}
_AUTH = {"system": DICOM_DCM, "code": "110114", "display": "User Authentication"}
_APP = {"coding": [{"system": DICOM_DCM, "code": "110150", "display": "Application"}]}


def to_fhir(
    record: NativeRecord, options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> FhirResource:
    """``AuditEvent`` for one AuditLog entry."""
    out: FhirResource = {"resourceType": "AuditEvent", "id": record["objectId"], "meta": meta(record)}
    action = str(record.get("action") or "")
    if action in AUDIT_ACTIONS:
        code, system, subtype = AUDIT_ACTIONS[action]
        out["type"] = _REST if system != DICOM_DCM else _AUTH
        sub: dict[str, str] = {"system": system, "code": subtype}
        if subtype in SUBTYPE_DISPLAY:
            sub["display"] = SUBTYPE_DISPLAY[subtype]
        out["subtype"] = [sub]
    else:
        code = "E"
        out["type"] = {"system": local_uri(options.system_base, CS_AUDIT_ACTION), "code": action}
    out["action"] = code
    out["recorded"] = instant(record["createdAt"])
    outcome = str(record.get("outcome") or "success")
    out["outcome"] = AUDIT_OUTCOMES.get(outcome, "4")
    if outcome != "success":
        out["outcomeDesc"] = outcome
    out["agent"] = _agents(record, options, user_refs)
    out["source"] = {
        "site": options.audit_source,
        "observer": {"display": options.audit_source},
        "type": [{"system": SECURITY_SOURCE_TYPE, "code": "4", "display": "Application Server"}],
    }
    if entities := _entities(record, options):
        out["entity"] = entities
    return out


def _agents(record: NativeRecord, options: MappingOptions, user_refs: UserRefs) -> list[dict[str, Any]]:
    who: dict[str, Any] = user_ref(user_refs, record.get("actor")) or {}
    if record.get("actor") and not who:
        who["identifier"] = {"system": local_uri(options.system_base, SID_USER), "value": record["actor"]}
    if record.get("actorName"):
        who["display"] = record["actorName"]
    agent: dict[str, Any] = {"who": who or {"display": "anonymous"}, "requestor": True}
    address = record.get("sourceAddress")
    if address:
        agent["network"] = {"address": address, "type": "2" if _is_ip(address) else "1"}
    agents = [agent]
    if record.get("clientId"):
        client = {"system": local_uri(options.system_base, SID_CLIENT), "value": record["clientId"]}
        agents.append({"type": _APP, "who": {"identifier": client}, "requestor": False})
    return agents


def _entities(record: NativeRecord, options: MappingOptions) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    kind, object_id = record.get("entityType"), record.get("entityId")
    if kind or record.get("summary") or record.get("metadata"):
        entity: dict[str, Any] = {"type": _entity_type("2", "System Object")}
        if kind and object_id:
            if kind in FHIR_TYPES or kind in FHIR_TYPES.values():
                entity["what"] = ref(FHIR_TYPES.get(kind, str(kind)), str(object_id))
            else:
                system = local_uri(options.system_base, SID_NATIVE + kind)
                entity["what"] = {"identifier": {"system": system, "value": object_id}}
        if record.get("summary"):
            entity["description"] = record["summary"]
        if details := _details(record.get("metadata")):
            entity["detail"] = details
        entities.append(entity)
    if record.get("patient"):
        entities.append(
            {
                "what": ref("Patient", record["patient"]),
                "type": _entity_type("1", "Person"),
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    if record.get("requestId"):
        balp = {"system": BALP_ENTITY_TYPE, "code": "XrequestId", "display": "X-Request-Id"}
        entities.append({"what": {"identifier": {"value": record["requestId"]}}, "type": balp})
    return entities


def _entity_type(code: str, display: str) -> dict[str, str]:
    return {"system": AUDIT_ENTITY_TYPE, "code": code, "display": display}


def _details(metadata: Any) -> list[dict[str, str]]:
    if not isinstance(metadata, dict):
        return []
    scalars = (str, int, float, bool)
    return [
        {"type": str(key), "valueString": str(value)}
        for key, value in sorted(metadata.items())
        if isinstance(value, scalars) and str(value)
    ]


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True
