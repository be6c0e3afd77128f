"""Message <-> ``Communication``.

- ``conversationId`` -> ``identifier`` (system ``<base>/sid/conversation``): the thread
- ``status`` -> ``status`` (:data:`.codes.MESSAGE_STATUS`: sent->in-progress,
  delivered->completed, read->completed) plus our ``message-status`` extension holding
  the native code; ``isRead`` is derived from it (status ``read``)
- ``from``/``to`` (``_User`` ids) -> ``sender``/``recipient`` through ``user_refs``
- ``patient`` -> ``subject``; ``body`` -> ``payload[0].contentString``; ``attachments`` ->
  further ``payload`` entries with ``contentAttachment``
- ``sentAt`` -> ``sent``; ``readAt`` -> ``received`` (when the recipient took it in)

Not carried: ``from``/``to`` whose user the server cannot resolve; ``isRead`` beyond status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._attachment import attachment, read_attachment
from ._datatypes import (
    check_keys,
    check_resource,
    ext,
    instant,
    meta,
    parse_instant,
    parse_ref,
    read_extensions,
    ref,
    ref_user,
    text_value,
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
from .codes import MESSAGE_STATUS, MESSAGE_STATUS_DEFAULT, SID_CONVERSATION, Ext, local_uri

NOT_CARRIED = ("isRead",)
_ELEMENTS = (
    "extension", "identifier", "status", "subject", "sent", "received", "recipient", "sender",
    "payload",
)  # fmt: skip
_PEOPLE = ("Patient", "Practitioner")


def to_fhir(
    record: NativeRecord, options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> FhirResource:
    """``Communication`` for one Message."""
    out: FhirResource = {"resourceType": "Communication", "id": record["objectId"], "meta": meta(record)}
    status = record.get("status") or "sent"
    if status in MESSAGE_STATUS:
        out["extension"] = [ext(options, Ext.MESSAGE_STATUS, "valueCode", status)]
    if record.get("conversationId"):
        system = local_uri(options.system_base, SID_CONVERSATION)
        out["identifier"] = [{"system": system, "value": record["conversationId"]}]
    out["status"] = MESSAGE_STATUS.get(status, "unknown")
    out["subject"] = ref("Patient", record["patient"])
    for field, element in (("sentAt", "sent"), ("readAt", "received")):
        if record.get(field) is not None:
            out[element] = instant(record[field])
    if recipient := user_ref(user_refs, record.get("to")):
        out["recipient"] = [recipient]
    if sender := user_ref(user_refs, record.get("from")):
        out["sender"] = sender
    payload: list[dict[str, Any]] = []
    if record.get("body"):
        payload.append({"contentString": record["body"]})
    payload += [{"contentAttachment": attachment(a)} for a in record.get("attachments") or []]
    if payload:
        out["payload"] = payload
    return out


def from_fhir(
    resource: Mapping[str, Any], options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> NativeDraft:
    """Writable Message fields from a ``Communication``; raises :class:`MappingError`."""
    check_resource(resource, "Communication", _ELEMENTS)
    status = _status(resource, options)
    draft: NativeDraft = {"status": status, "isRead": status == "read"}
    draft["conversationId"] = _thread(resource.get("identifier"), options)
    draft["patient"] = parse_ref(resource.get("subject"), ("Patient",), "Communication.subject", options)[1]
    for field, element in (("sentAt", "sent"), ("readAt", "received")):
        raw = resource.get(element)
        draft[field] = None if raw is None else parse_instant(raw, f"Communication.{element}")
    recipients = resource.get("recipient") or []
    if len(recipients) > 1:
        raise MappingError("only one recipient can be stored", "Communication.recipient[1]")
    draft["to"] = (
        ref_user(user_refs, recipients[0], _PEOPLE, "Communication.recipient[0]", options) if recipients else None
    )
    sender = resource.get("sender")
    draft["from"] = None if sender is None else ref_user(user_refs, sender, _PEOPLE, "Communication.sender", options)
    draft["body"], draft["attachments"] = _payload(resource.get("payload") or [])
    return draft


def _status(resource: Mapping[str, Any], options: MappingOptions) -> str:
    fhir_status = resource.get("status")
    if fhir_status not in MESSAGE_STATUS_DEFAULT:
        raise MappingError(f"unsupported status code {fhir_status!r}", "Communication.status", code="code-invalid")
    found = read_extensions(resource, "Communication", options, {Ext.MESSAGE_STATUS: "valueCode"})
    codes = found.get(Ext.MESSAGE_STATUS, [MESSAGE_STATUS_DEFAULT[fhir_status]])
    if len(codes) > 1 or MESSAGE_STATUS.get(codes[0]) != fhir_status:
        raise MappingError(f"message status does not fit status {fhir_status!r}", "Communication.extension")
    return str(codes[0])


def _thread(identifiers: Any, options: MappingOptions) -> str | None:
    if not identifiers:
        return None
    system = local_uri(options.system_base, SID_CONVERSATION)
    ident = check_keys(identifiers[0], {"system", "value"}, "Communication.identifier[0]")
    if len(identifiers) > 1 or ident.get("system") != system:
        raise MappingError(f"only a thread identifier ({system}) can be stored", "Communication.identifier")
    return text_value(ident.get("value"), "Communication.identifier[0].value")


def _payload(items: list[Any]) -> tuple[str | None, list[dict[str, Any]] | None]:
    body: str | None = None
    files: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"Communication.payload[{index}]"
        part = check_keys(item, {"contentString", "contentAttachment"}, where)
        if "contentString" in part:
            if body is not None or files:
                raise MappingError("the text must be the first and only string payload", where)
            body = text_value(part["contentString"], f"{where}.contentString")
        elif "contentAttachment" in part:
            files.append(read_attachment(part["contentAttachment"], f"{where}.contentAttachment"))
        else:
            raise MappingError("expected contentString or contentAttachment", where, code="required")
    return body, files or None
