"""``Observation`` -> LabResult draft (the reverse of :mod:`.observation`).

Required bindings checked here from :mod:`.codes`: ``Observation.status``
(observation-status), ``interpretation`` (v3-ObservationInterpretation, HL7 0078 subset),
``meta.security`` (our visibility codes) and ``category`` (laboratory only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._attachment import read_attachment
from ._datatypes import check_keys, check_resource, parse_instant, parse_ref, read_extensions, text_value
from ._errors import MappingError
from ._obs_value_in import VALUE_KEYS, read_value
from ._refrange import range_text
from ._types import DEFAULT_OPTIONS, NO_USERS, MappingOptions, NativeDraft, UserRefs
from .codes import (
    CS_VISIBILITY,
    INTERPRETATION,
    OBSERVATION_CATEGORY,
    OBSERVATION_STATUS,
    SID_ORDER,
    V3_INTERPRETATION,
    VISIBILITY,
    Ext,
    local_uri,
    system_id,
)

_ELEMENTS = (
    "extension", "basedOn", "status", "category", "code", "subject", "effectiveDateTime", "issued",
    "performer", "interpretation", "note", "referenceRange", *VALUE_KEYS,
)  # fmt: skip
_EXTENSIONS = {Ext.VALUE_TYPE: "valueCode", Ext.ATTACHMENT: "valueAttachment"}


def from_fhir(
    resource: Mapping[str, Any], options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> NativeDraft:
    """Writable LabResult fields from an ``Observation``; raises :class:`MappingError`."""
    check_resource(resource, "Observation", (*_ELEMENTS, "security"))
    found = read_extensions(resource, "Observation", options, _EXTENSIONS)
    declared = found.get(Ext.VALUE_TYPE, [None])
    if len(declared) > 1:
        raise MappingError("only one value type extension is allowed", "Observation.extension")
    status = resource.get("status")
    if status not in OBSERVATION_STATUS:
        raise MappingError(f"unknown status code {status!r}", "Observation.status", code="code-invalid")
    _check_category(resource.get("category"))
    draft: NativeDraft = {"status": status, **_code(resource.get("code"), options)}
    draft["patient"] = parse_ref(resource.get("subject"), ("Patient",), "Observation.subject", options)[1]
    draft["orderedBy"] = _performer(resource.get("performer"), options)
    draft["orderId"] = _order(resource.get("basedOn"), options)
    draft.update(read_value(resource, declared[0], options))
    draft["referenceRange"] = range_text(resource.get("referenceRange"))
    draft["interpretation"] = _interpretation(resource.get("interpretation"))
    for field, element in (("effectiveAt", "effectiveDateTime"), ("publishedAt", "issued")):
        raw = resource.get(element)
        draft[field] = None if raw is None else parse_instant(raw, f"Observation.{element}")
    draft["notes"] = _note(resource.get("note"))
    draft["visibility"] = _visibility(resource.get("meta") or {}, options)
    attachments = found.get(Ext.ATTACHMENT, [])
    draft["attachments"] = [
        read_attachment(item, "Observation.extension.valueAttachment") for item in attachments
    ] or None
    return draft


def _check_category(categories: Any) -> None:
    for index, category in enumerate(categories or []):
        where = f"Observation.category[{index}]"
        concept = check_keys(category, {"coding", "text"}, where)
        pairs = [(c.get("system"), c.get("code")) for c in concept.get("coding") or []]
        if pairs != [(OBSERVATION_CATEGORY, "laboratory")]:
            raise MappingError("only the laboratory category can be stored", where)


def _code(concept: Any, options: MappingOptions) -> dict[str, Any]:
    code = check_keys(concept, {"coding", "text"}, "Observation.code")
    codings = code.get("coding") or []
    if len(codings) > 1:
        raise MappingError("only one coding can be stored", "Observation.code.coding[1]")
    out: dict[str, Any] = {"testCode": None, "codeSystem": None, "testName": code.get("text")}
    if codings:
        where = "Observation.code.coding[0]"
        coding = check_keys(codings[0], {"system", "code", "display"}, where)
        out["testCode"] = text_value(coding.get("code"), f"{where}.code")
        if "system" in coding:
            out["codeSystem"] = system_id(options.system_base, coding["system"])
            if out["codeSystem"] is None:
                raise MappingError(f"unknown code system {coding['system']!r}", f"{where}.system")
        display = coding.get("display")
        if display is not None and out["testName"] not in (None, display):
            raise MappingError("display must equal code.text (one test name is stored)", f"{where}.display")
        out["testName"] = out["testName"] or display
    if out["testName"] is None:
        raise MappingError("the test needs a display name", "Observation.code.text", code="required")
    return out


def _performer(performers: Any, options: MappingOptions) -> str | None:
    if not performers:
        return None
    if len(performers) > 1:
        raise MappingError("only one performer can be stored", "Observation.performer[1]")
    return parse_ref(performers[0], ("Practitioner",), "Observation.performer[0]", options)[1]


def _order(based_on: Any, options: MappingOptions) -> str | None:
    if not based_on:
        return None
    if len(based_on) > 1:
        raise MappingError("only one order can be stored", "Observation.basedOn[1]")
    item = check_keys(based_on[0], {"type", "identifier"}, "Observation.basedOn[0]")
    ident = check_keys(item.get("identifier"), {"system", "value"}, "Observation.basedOn[0].identifier")
    if item.get("type", "ServiceRequest") != "ServiceRequest" or ident.get("system") != local_uri(
        options.system_base, SID_ORDER
    ):
        raise MappingError("expected an order identifier", "Observation.basedOn[0].identifier.system")
    return text_value(ident.get("value"), "Observation.basedOn[0].identifier.value")


def _interpretation(items: Any) -> str | None:
    if not items:
        return None
    if len(items) > 1:
        raise MappingError("only one interpretation can be stored", "Observation.interpretation[1]")
    concept = check_keys(items[0], {"coding"}, "Observation.interpretation[0]")
    codings = concept.get("coding") or []
    where = "Observation.interpretation[0].coding[0]"
    if len(codings) != 1:
        raise MappingError("expected one v3-ObservationInterpretation coding", where)
    coding = check_keys(codings[0], {"system", "code", "display"}, where)
    flag = coding.get("code")
    if coding.get("system") != V3_INTERPRETATION or flag not in INTERPRETATION:
        raise MappingError(f"unknown interpretation {flag!r}", f"{where}.code", code="code-invalid")
    return str(flag)


def _note(notes: Any) -> str | None:
    if not notes:
        return None
    if len(notes) > 1:
        raise MappingError("notes are stored as one text", "Observation.note[1]")
    return text_value(check_keys(notes[0], {"text"}, "Observation.note[0]").get("text"), "Observation.note[0].text")


def _visibility(meta: Mapping[str, Any], options: MappingOptions) -> str:
    labels = meta.get("security") or []
    if not labels:
        return "shared"
    label = check_keys(labels[0], {"system", "code"}, "Observation.meta.security[0]")
    system = local_uri(options.system_base, CS_VISIBILITY)
    if len(labels) > 1 or label.get("system") != system or label.get("code") not in VISIBILITY:
        raise MappingError(f"expected one visibility label from {system}", "Observation.meta.security")
    return str(label["code"])
