"""LabResult -> ``Observation`` (category laboratory). Reverse in :mod:`.observation_in`.

- ``testCode``/``codeSystem``/``testName`` -> ``code`` (LOINC for ``LN``, SNOMED for ``SCT``,
  our ``CodeSystem/v2-<id>`` otherwise), always with display text
- value fields -> ``value[x]`` (see :mod:`._obs_value`); ``valueType`` -> our extension
- ``referenceRange`` -> ``referenceRange`` (``low``/``high`` + ``text``, :mod:`._refrange`)
- ``interpretation`` (HL7 0078) -> ``interpretation`` (v3-ObservationInterpretation)
- ``status`` -> ``status``; ``effectiveAt`` -> ``effectiveDateTime``; ``publishedAt`` ->
  ``issued``; ``orderedBy`` -> ``performer``; ``notes`` -> ``note``; ``patient`` -> ``subject``
- ``orderId`` -> ``basedOn`` (ServiceRequest by identifier); ``visibility`` -> ``meta.security``
- ``attachments`` -> ``observation-attachment`` extensions (also the payload of ``ED``)

Not carried: ``sourceMessageId`` (HL7 provenance, server-managed), ``resultData.unitsSystem``,
``units`` of non-quantity values, and ``resultValue`` of an ``ED`` result (its data is the
attachment).
"""

from __future__ import annotations

from typing import Any

from ._attachment import attachment
from ._datatypes import ext, instant, meta, ref
from ._obs_value import ELEMENT, value_element
from ._refrange import reference_range
from ._types import DEFAULT_OPTIONS, NO_USERS, FhirResource, MappingOptions, NativeRecord, UserRefs
from .codes import (
    CS_VISIBILITY,
    INTERPRETATION,
    OBSERVATION_CATEGORY,
    SID_ORDER,
    V3_INTERPRETATION,
    Ext,
    local_uri,
    system_uri,
)

NOT_CARRIED = ("sourceMessageId",)
LABORATORY = {"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}


def to_fhir(
    record: NativeRecord, options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> FhirResource:
    """``Observation`` for one LabResult."""
    out: FhirResource = {"resourceType": "Observation", "id": record["objectId"], "meta": meta(record)}
    visibility = record.get("visibility") or "shared"
    out["meta"]["security"] = [{"system": local_uri(options.system_base, CS_VISIBILITY), "code": visibility}]
    key, value = value_element(record, options)
    extensions = _extensions(record, key, options)
    if extensions:
        out["extension"] = extensions
    if record.get("orderId"):
        identifier = {"system": local_uri(options.system_base, SID_ORDER), "value": record["orderId"]}
        out["basedOn"] = [{"type": "ServiceRequest", "identifier": identifier}]
    out["status"] = record.get("status") or "preliminary"
    out["category"] = [LABORATORY]
    out["code"] = code(record, options)
    out["subject"] = ref("Patient", record["patient"])
    if record.get("effectiveAt") is not None:
        out["effectiveDateTime"] = instant(record["effectiveAt"])
    if record.get("publishedAt") is not None:
        out["issued"] = instant(record["publishedAt"])
    if record.get("orderedBy"):
        out["performer"] = [ref("Practitioner", record["orderedBy"])]
    if key is not None:
        out[key] = value
    if record.get("interpretation"):
        out["interpretation"] = [interpretation(record["interpretation"])]
    if record.get("notes"):
        out["note"] = [{"text": record["notes"]}]
    ranges = reference_range(
        record.get("referenceRange"),
        record.get("units") if key == "valueQuantity" or key == "valueRange" else None,
        (record.get("resultData") or {}).get("unitsSystem"),
    )
    if ranges:
        out["referenceRange"] = ranges
    return out


def code(record: NativeRecord, options: MappingOptions) -> dict[str, Any]:
    """``Observation.code``: one coding plus ``text`` (the test name, else the code)."""
    text = record.get("testName") or record.get("testCode") or "Unspecified test"
    out: dict[str, Any] = {}
    if record.get("testCode"):
        coding: dict[str, Any] = {}
        if record.get("codeSystem"):
            coding["system"] = system_uri(options.system_base, record["codeSystem"])
        coding.update(code=record["testCode"], display=text)
        out["coding"] = [coding]
    out["text"] = text
    return out


def interpretation(flag: str) -> dict[str, Any]:
    """HL7 0078 flag -> CodeableConcept; a flag missing from the table is sent as text only."""
    if flag in INTERPRETATION:
        display = INTERPRETATION[flag]
        return {"coding": [{"system": V3_INTERPRETATION, "code": flag, "display": display}]}
    return {"text": flag}


def _extensions(record: NativeRecord, key: str | None, options: MappingOptions) -> list[dict[str, Any]]:
    out = []
    kind = str(record.get("valueType"))
    allowed = ELEMENT.get(kind)  # type: ignore[call-overload]  # a StrEnum key matches its str value
    if allowed is not None and key in allowed:
        out.append(ext(options, Ext.VALUE_TYPE, "valueCode", kind))
    for item in record.get("attachments") or []:
        out.append(ext(options, Ext.ATTACHMENT, "valueAttachment", attachment(item)))
    return out
