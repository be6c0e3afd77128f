"""PatientProfile <-> ``Patient``.

- ``medicalRecordNumber`` -> ``identifier`` (type ``v2-0203#MR``, system ``mrn_system``);
  ``mrnAuthority`` (HL7 PID-3.4, '' for a local MRN) -> that identifier's ``assigner.display``.
  The system stays ``mrn_system`` for every patient (searches by ``system|value`` keep working);
  the same MRN from two authorities is two Patients, told apart by ``assigner``
- ``familyName``/``givenName``/``displayName`` -> one ``name`` (use official; ``text``)
- ``dateOfBirth`` -> ``birthDate``; ``gender`` -> ``gender`` (administrative-gender)
- ``contact`` -> ``telecom``/``address``; ``primaryClinic`` -> ``managingOrganization.display``
- ``careTeam`` -> ``generalPractitioner`` (Practitioner references); ``isActive`` -> ``active``

Not carried: ``user`` (the portal account link is server-managed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._contact import address, contact_from, telecom
from ._datatypes import check_keys, check_resource, is_full_date, meta, parse_ref, ref, text_value
from ._errors import MappingError
from ._types import DEFAULT_OPTIONS, NO_USERS, FhirResource, MappingOptions, NativeDraft, NativeRecord, UserRefs
from .codes import GENDER, V2_0203

NOT_CARRIED = ("user",)
_MR = {"coding": [{"system": V2_0203, "code": "MR", "display": "Medical record number"}]}
_ELEMENTS = (
    "identifier", "active", "name", "telecom", "gender", "birthDate", "address",
    "generalPractitioner", "managingOrganization",
)  # fmt: skip


def to_fhir(
    record: NativeRecord, options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> FhirResource:
    """``Patient`` for one PatientProfile."""
    out: FhirResource = {"resourceType": "Patient", "id": record["objectId"], "meta": meta(record)}
    if record.get("medicalRecordNumber"):
        mr: dict[str, Any] = {"type": _MR, "system": options.mrn_system, "value": record["medicalRecordNumber"]}
        if record.get("mrnAuthority"):
            mr["assigner"] = {"display": record["mrnAuthority"]}
        out["identifier"] = [mr]
    out["active"] = bool(record.get("isActive", True))
    name: dict[str, Any] = {}
    if record.get("displayName"):
        name["text"] = record["displayName"]
    if record.get("familyName"):
        name["family"] = record["familyName"]
    if record.get("givenName"):
        name["given"] = [record["givenName"]]
    if name:
        out["name"] = [{"use": "official", **name}]
    if points := telecom(record.get("contact")):
        out["telecom"] = points
    if record.get("gender") in GENDER:
        out["gender"] = record["gender"]
    if is_full_date(record.get("dateOfBirth")):
        out["birthDate"] = record["dateOfBirth"]
    if addresses := address(record.get("contact")):
        out["address"] = addresses
    if record.get("careTeam"):
        out["generalPractitioner"] = [ref("Practitioner", pid) for pid in record["careTeam"]]
    if record.get("primaryClinic"):
        out["managingOrganization"] = {"display": record["primaryClinic"]}
    return out


def from_fhir(
    resource: Mapping[str, Any], options: MappingOptions = DEFAULT_OPTIONS, *, user_refs: UserRefs = NO_USERS
) -> NativeDraft:
    """Writable PatientProfile fields from a ``Patient``; raises :class:`MappingError`."""
    check_resource(resource, "Patient", _ELEMENTS)
    mrn, authority = _mrn(resource, options)
    draft: NativeDraft = {"medicalRecordNumber": mrn}
    if authority is not None:  # without an assigner the stored authority is left as it is
        draft["mrnAuthority"] = authority
    family, given, text = _name(resource)
    draft.update(familyName=family, givenName=given, displayName=text)
    birth = resource.get("birthDate")
    if birth is not None and not is_full_date(birth):
        raise MappingError("birthDate must be a full date (YYYY-MM-DD)", "Patient.birthDate")
    gender = resource.get("gender")
    if gender is not None and gender not in GENDER:
        raise MappingError(f"unknown gender code {gender!r}", "Patient.gender", code="code-invalid")
    draft.update(dateOfBirth=birth, gender=gender, contact=contact_from(resource, "Patient"))
    active = resource.get("active", True)
    if not isinstance(active, bool):
        raise MappingError("expected a boolean", "Patient.active")
    draft["isActive"] = active
    team = resource.get("generalPractitioner") or []
    draft["careTeam"] = [
        parse_ref(item, ("Practitioner",), f"Patient.generalPractitioner[{i}]", options)[1]
        for i, item in enumerate(team)
    ]
    org = resource.get("managingOrganization")
    if org is not None:
        check_keys(org, {"display"}, "Patient.managingOrganization")
        draft["primaryClinic"] = text_value(org.get("display"), "Patient.managingOrganization.display")
    else:
        draft["primaryClinic"] = None
    return draft


def _mrn(resource: Mapping[str, Any], options: MappingOptions) -> tuple[str, str | None]:
    identifiers = resource.get("identifier") or []
    if len(identifiers) != 1:
        raise MappingError(
            f"exactly one identifier (the MRN, system {options.mrn_system}) is required",
            "Patient.identifier",
            code="required",
        )
    ident = check_keys(identifiers[0], {"type", "system", "value", "assigner"}, "Patient.identifier[0]")
    if ident.get("system") != options.mrn_system:
        raise MappingError(f"expected system {options.mrn_system}", "Patient.identifier[0].system")
    codes = [c.get("code") for c in (ident.get("type") or {}).get("coding", [])]
    if "type" in ident and codes != ["MR"]:
        raise MappingError("identifier type must be v2-0203 MR", "Patient.identifier[0].type")
    authority = None
    if "assigner" in ident:
        assigner = check_keys(ident["assigner"] or {}, {"display"}, "Patient.identifier[0].assigner")
        authority = text_value(assigner.get("display"), "Patient.identifier[0].assigner.display")
    return text_value(ident.get("value"), "Patient.identifier[0].value"), authority


def _name(resource: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    names = resource.get("name") or []
    if len(names) > 1:
        raise MappingError("only one name can be stored", "Patient.name[1]")
    if not names:
        return None, None, None
    name = check_keys(names[0], {"use", "text", "family", "given"}, "Patient.name[0]")
    if name.get("use", "official") != "official":
        raise MappingError("only the official name can be stored", "Patient.name[0].use")
    given = name.get("given") or []
    if len(given) > 1:
        raise MappingError("given names are stored as one string", "Patient.name[0].given[1]")
    family, text = name.get("family"), name.get("text")
    return (
        None if family is None else text_value(family, "Patient.name[0].family"),
        text_value(given[0], "Patient.name[0].given[0]") if given else None,
        None if text is None else text_value(text, "Patient.name[0].text"),
    )
