"""ProviderProfile <-> ``Practitioner``.

- ``npi`` -> ``identifier`` with system ``http://hl7.org/fhir/sid/us-npi``
- ``displayName`` -> ``name[0].text``; ``contact`` -> ``telecom``/``address``
- ``specialty``, ``clinic`` -> our extensions (R4 keeps them on PractitionerRole, which we
  do not serve); ``isActive`` -> ``active``

Not carried: ``user`` (the portal account link is server-managed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._contact import address, contact_from, telecom
from ._datatypes import check_keys, check_resource, ext, meta, read_extensions, text_value
from ._errors import MappingError
from ._types import DEFAULT_OPTIONS, NO_USERS, FhirResource, MappingOptions, NativeDraft, NativeRecord, UserRefs
from .codes import NPI, Ext

NOT_CARRIED = ("user",)
_ELEMENTS = ("identifier", "active", "name", "telecom", "address", "extension")
_EXTENSIONS = {Ext.SPECIALTY: "valueString", Ext.CLINIC: "valueString"}


def to_fhir(
    record: NativeRecord, options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> FhirResource:
    """``Practitioner`` for one ProviderProfile."""
    out: FhirResource = {"resourceType": "Practitioner", "id": record["objectId"], "meta": meta(record)}
    extensions = [
        ext(options, which, "valueString", record[field])
        for which, field in ((Ext.SPECIALTY, "specialty"), (Ext.CLINIC, "clinic"))
        if record.get(field)
    ]
    if extensions:
        out["extension"] = extensions
    if record.get("npi"):
        out["identifier"] = [{"system": NPI, "value": record["npi"]}]
    out["active"] = bool(record.get("isActive", True))
    if record.get("displayName"):
        out["name"] = [{"text": record["displayName"]}]
    if points := telecom(record.get("contact")):
        out["telecom"] = points
    if addresses := address(record.get("contact")):
        out["address"] = addresses
    return out


def from_fhir(
    resource: Mapping[str, Any], options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> NativeDraft:
    """Writable ProviderProfile fields from a ``Practitioner``; raises :class:`MappingError`."""
    check_resource(resource, "Practitioner", _ELEMENTS)
    found = read_extensions(resource, "Practitioner", options, _EXTENSIONS)
    draft: NativeDraft = {
        "specialty": _single(found.get(Ext.SPECIALTY), "specialty"),
        "clinic": _single(found.get(Ext.CLINIC), "clinic"),
        "npi": _npi(resource),
        "contact": contact_from(resource, "Practitioner"),
    }
    names = resource.get("name") or []
    if len(names) > 1:
        raise MappingError("only one name can be stored", "Practitioner.name[1]")
    draft["displayName"] = None
    if names:
        name = check_keys(names[0], {"text"}, "Practitioner.name[0]")
        draft["displayName"] = text_value(name.get("text"), "Practitioner.name[0].text")
    active = resource.get("active", True)
    if not isinstance(active, bool):
        raise MappingError("expected a boolean", "Practitioner.active")
    draft["isActive"] = active
    return draft


def _single(values: list[Any] | None, what: str) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise MappingError(f"only one {what} can be stored", "Practitioner.extension")
    return text_value(values[0], "Practitioner.extension")


def _npi(resource: Mapping[str, Any]) -> str | None:
    identifiers = resource.get("identifier") or []
    if len(identifiers) > 1:
        raise MappingError("only the NPI identifier can be stored", "Practitioner.identifier[1]")
    if not identifiers:
        return None
    ident = check_keys(identifiers[0], {"system", "value"}, "Practitioner.identifier[0]")
    if ident.get("system") != NPI:
        raise MappingError(f"expected system {NPI}", "Practitioner.identifier[0].system")
    return text_value(ident.get("value"), "Practitioner.identifier[0].value")
