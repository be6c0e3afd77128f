"""PID (HL7 v2.5.1 section 3.4.2) -> :class:`PatientDraft`, and XCN -> :class:`ProviderDraft`."""

from __future__ import annotations

from .drafts import PatientDraft, ProviderDraft
from .er7 import Segment
from .fields import Reader
from .tables import SEX, ErrorCode, Severity

__all__ = ["NPI_AUTHORITIES", "read_patient", "read_provider"]

NPI_AUTHORITIES = frozenset({"NPI", "2.16.840.1.113883.4.6", "CMS", "NPPES"})
"""Assigning authorities (XCN.9 / HD) that mean the id is a US National Provider Identifier."""

_LEGAL_NAME = "L"  # Table 0200: legal name


def read_patient(reader: Reader, pid: Segment) -> PatientDraft | None:
    """PID-3 (MR preferred, else first), PID-5 (legal name preferred), PID-7, PID-8.

    Returns ``None`` (with a 101 issue on PID-3) when there is no identifier.
    """
    ids = [reader.identifier(pid, 3, rep) for rep in reader.reps(pid, 3)]
    ids = [i for i in ids if i.value]
    if not ids:
        reader.issue(ErrorCode.REQUIRED_FIELD_MISSING, pid, 3, "patient identifier list (PID-3) is empty")
        return None
    mrn = next((i for i in ids if i.type_code.upper() == "MR"), ids[0])
    names = [reader.name(pid, 5, rep) for rep in reader.reps(pid, 5)]
    name = next((n for n in names if n.name_type == _LEGAL_NAME), names[0] if names else None)
    if name is None:
        reader.issue(ErrorCode.REQUIRED_FIELD_MISSING, pid, 5, "patient name (PID-5) is empty", Severity.WARNING)
    birth = reader.dtm(pid, 7)
    sex = reader.text(pid, 8)
    gender = SEX.get(sex.upper()) if sex else None
    if sex and gender is None:
        reader.issue(
            ErrorCode.TABLE_VALUE_NOT_FOUND, pid, 8, "administrative sex not in HL7 Table 0001", Severity.WARNING
        )
    return PatientDraft(
        mrn=mrn.value,
        mrn_authority=mrn.authority,
        identifiers=[{"value": i.value, "authority": i.authority, "type": i.type_code} for i in ids],
        family_name=name.family if name else "",
        given_name=name.given if name else "",
        middle_name=name.middle if name else "",
        display_name=" ".join(p for p in (name.given, name.family) if p) if name else "",
        date_of_birth=birth.date.isoformat() if birth and birth.precision not in ("year", "month") else None,
        gender=gender,
    )


def read_provider(reader: Reader, seg: Segment, n: int, rep: str) -> ProviderDraft | None:
    """One XCN repetition (ORC-12, OBR-16): id XCN.1, name XCN.2-7, authority XCN.9, id type XCN.13."""
    provider_id = reader.comp(seg, n, 1, rep)
    name = reader.name(seg, n, rep, offset=1)
    if not provider_id and not name.family:
        return None
    authority = reader.comp(seg, n, 9, rep) or reader.comp(seg, n, 9, rep, sub=2)
    id_type = reader.comp(seg, n, 13, rep)
    is_npi = id_type.upper() == "NPI" or authority.upper() in NPI_AUTHORITIES
    return ProviderDraft(
        source=f"{seg.name}-{n}",
        provider_id=provider_id,
        id_authority=authority,
        id_type=id_type,
        npi=provider_id if is_npi and provider_id else None,
        family_name=name.family,
        given_name=name.given,
        display_name=name.display or provider_id,
    )
