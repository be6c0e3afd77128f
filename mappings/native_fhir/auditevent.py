"""AuditLog -> ``AuditEvent`` (read-only), in the IHE Basic Audit Log Patterns (BALP) shape.

- ``action`` -> ``type`` (``audit-event-type#rest``, or DICOM ``110114`` User Authentication
  for login/logout), ``subtype`` (``restful-interaction`` code or DICOM Login/Logout) and
  ``action`` C/R/U/D/E (:data:`.codes.AUDIT_ACTIONS`); an action missing from the table is
  typed from our ``CodeSystem/audit-action`` with action E
- ``outcome`` -> ``outcome`` 0/4/8/12 (:data:`.codes.AUDIT_OUTCOMES`), ``outcomeDesc`` on failure
- ``createdAt`` -> ``recorded``
- ``metadata.interaction`` (``vread``/``history`` from the FHIR door) refines a read's subtype
- agents as BALP has them: the user (``actor``/``actorName``; ``who`` resolved through
  ``user_refs``, else a ``_User`` identifier; type ``humanuser``, or DICOM ``110150``
  Application for a named system actor; ``requestor`` true), the client (DICOM ``110153``
  Source Role ID; ``clientId`` as ``who``, ``sourceAddress`` as ``network``, type 1 name /
  2 IP) and the server (DICOM ``110152`` Destination Role ID: this gateway)
- ``entityType``/``entityId`` -> a data entity (type 2 system object, role 4 domain resource,
  ``what`` = the resource reference, :data:`.codes.FHIR_TYPES`), ``summary`` -> its
  ``description``, scalar ``metadata`` -> its ``detail``; a search (BALP Query) has a query
  entity (role 24, ``query`` = ``metadata.query``, base64) and one data entity per returned
  id in ``metadata.ids``; ``metadata.included`` adds data entities for included resources
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
    AUDIT_DICOM_TYPES,
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
_APP = {"coding": [{"system": DICOM_DCM, "code": "110150", "display": "Application"}]}
_CLIENT = {"coding": [{"system": DICOM_DCM, "code": "110153", "display": "Source Role ID"}]}
_SERVER = {"coding": [{"system": DICOM_DCM, "code": "110152", "display": "Destination Role ID"}]}
_HUMAN = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
            "code": "humanuser",
            "display": "human user",
        }
    ]
}
_DOMAIN_RESOURCE = {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"}
_QUERY = {"system": OBJECT_ROLE, "code": "24", "display": "Query"}
_STRUCTURED = frozenset({"query", "ids", "included", "interaction"})
"""Metadata keys rendered as entities (or the subtype), not as ``detail``."""


def to_fhir(
    record: NativeRecord, options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> FhirResource:
    """``AuditEvent`` for one AuditLog entry."""
    out: FhirResource = {"resourceType": "AuditEvent", "id": record["objectId"], "meta": meta(record)}
    action = str(record.get("action") or "")
    raw = record.get("metadata")
    metadata: dict[str, Any] = raw if isinstance(raw, dict) else {}
    interaction = str(metadata.get("interaction") or "")
    if action == "read" and interaction in AUDIT_ACTIONS:
        action = interaction
    if action in AUDIT_ACTIONS:
        code, system, subtype = AUDIT_ACTIONS[action]
        if system == DICOM_DCM:
            type_code, type_display = AUDIT_DICOM_TYPES[subtype]
            out["type"] = {"system": DICOM_DCM, "code": type_code, "display": type_display}
        else:
            out["type"] = _REST
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
    if entities := _entities(record, options, metadata):
        out["entity"] = entities
    return out


def _agents(record: NativeRecord, options: MappingOptions, user_refs: UserRefs) -> list[dict[str, Any]]:
    who: dict[str, Any] = user_ref(user_refs, record.get("actor")) or {}
    if record.get("actor") and not who:
        who["identifier"] = {"system": local_uri(options.system_base, SID_USER), "value": record["actor"]}
    if record.get("actorName"):
        who["display"] = record["actorName"]
    human = bool(record.get("actor"))
    agent: dict[str, Any] = {
        "type": _HUMAN if human else _APP,
        "who": who or {"display": "anonymous"},
        "requestor": True,
    }
    agents = [agent]
    address = record.get("sourceAddress")
    if record.get("clientId") or address:
        client: dict[str, Any] = {"type": _CLIENT, "requestor": False}
        if record.get("clientId"):
            ident = {"system": local_uri(options.system_base, SID_CLIENT), "value": record["clientId"]}
            client["who"] = {"identifier": ident}
        if address:
            client["network"] = {"address": address, "type": "2" if _is_ip(address) else "1"}
        agents.append(client)
    server: dict[str, Any] = {"type": _SERVER, "who": {"display": options.audit_source}, "requestor": False}
    if options.base_url:
        server["network"] = {"address": options.base_url, "type": "5"}
    agents.append(server)
    return agents


def _entities(record: NativeRecord, options: MappingOptions, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    kind, object_id = record.get("entityType"), record.get("entityId")
    query = metadata.get("query")
    if kind or record.get("summary") or metadata:
        entity: dict[str, Any] = {"type": _entity_type("2", "System Object")}
        if isinstance(query, str):
            entity["role"], entity["query"] = _QUERY, query  # BALP Query: the search as it was asked
        else:
            entity["role"] = _DOMAIN_RESOURCE
        if kind and object_id:
            entity["what"] = _what(options, str(kind), str(object_id))
        if record.get("summary"):
            entity["description"] = record["summary"]
        if details := _details(metadata):
            entity["detail"] = details
        entities.append(entity)
    if kind and isinstance(metadata.get("ids"), list):
        for oid in metadata["ids"]:
            entities.append(
                {
                    "what": _what(options, str(kind), str(oid)),
                    "type": _entity_type("2", "System Object"),
                    "role": _DOMAIN_RESOURCE,
                }
            )
    if isinstance(metadata.get("included"), list):
        for item in metadata["included"]:
            inc_kind, _, oid = str(item).partition("/")
            if oid:
                entities.append(
                    {
                        "what": _what(options, inc_kind, oid),
                        "type": _entity_type("2", "System Object"),
                        "role": _DOMAIN_RESOURCE,
                    }
                )
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


def _what(options: MappingOptions, kind: str, object_id: str) -> dict[str, Any]:
    if kind in FHIR_TYPES or kind in FHIR_TYPES.values():
        return ref(FHIR_TYPES.get(kind, kind), object_id)
    return {"identifier": {"system": local_uri(options.system_base, SID_NATIVE + kind), "value": object_id}}


def _entity_type(code: str, display: str) -> dict[str, str]:
    return {"system": AUDIT_ENTITY_TYPE, "code": code, "display": display}


def _details(metadata: Any) -> list[dict[str, str]]:
    if not isinstance(metadata, dict):
        return []
    scalars = (str, int, float, bool)
    return [
        {"type": str(key), "valueString": str(value)}
        for key, value in sorted(metadata.items())
        if key not in _STRUCTURED and isinstance(value, scalars) and str(value)
    ]


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True
