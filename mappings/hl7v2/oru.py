"""ORU^R01 (HL7 v2.5.1 section 7.3.1) -> patient, provider and result drafts.

Walks the segments in order: ORC/OBR open an order group, each OBX becomes one
:class:`ResultDraft` keyed by (filler order number else placer, OBX-3, OBX-4),
NTE attaches to the OBX or OBR it follows. What cannot be applied is an issue
located at segment/sequence/field; the caller answers AE when any has severity E.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Any

from .drafts import OruResult, ProviderDraft, ResultDraft
from .er7 import Er7Message, Segment
from .errors import Hl7Error
from .fields import Reader
from .header import MessageKind, check_supported, read_header, to_message
from .patient import read_patient, read_provider
from .tables import ABNORMAL_FLAGS, OBSERVATION_STATUS, RESULT_STATUS, ErrorCode, Severity, ValueType, coding_system_uri
from .values import read_value

__all__ = ["ORU_SEGMENTS", "ParseOptions", "parse_oru"]

ORU_SEGMENTS = frozenset(
    [
        "MSH",
        "SFT",
        "UAC",
        "PID",
        "PD1",
        "PRT",
        "NTE",
        "NK1",
        "ARV",
        "PV1",
        "PV2",
        "ORC",
        "OBR",
        "TQ1",
        "TQ2",
        "CTD",
        "OBX",
        "FT1",
        "CTI",
        "SPM",
        "DSC",
    ]
)
"""Segments of the ORU^R01 structure (v2.5.1-v2.8.2); others are reported and ignored, Z-segments ignored."""


@dataclass(frozen=True)
class ParseOptions:
    """Per-feed parsing choices.

    ``default_tz`` is the zone of HL7 times written without an offset (the
    sending lab's local zone); UTC unless the feed is configured otherwise.
    """

    default_tz: tzinfo = UTC


@dataclass
class _Group:
    """The order group (ORC and/or OBR) an OBX belongs to."""

    orc: Segment | None = None
    obr: Segment | None = None
    notes: list[str] = field(default_factory=list)
    provider: ProviderDraft | None = None


def _order_ids(r: Reader, g: _Group) -> tuple[str, str]:
    """(placer, filler) order numbers, EI.1 of OBR-2/OBR-3 else ORC-2/ORC-3."""
    placer = (r.comp(g.obr, 2) if g.obr else "") or (r.comp(g.orc, 2) if g.orc else "")
    filler = (r.comp(g.obr, 3) if g.obr else "") or (r.comp(g.orc, 3) if g.orc else "")
    return placer, filler


def _provider(r: Reader, g: _Group, providers: list[ProviderDraft]) -> None:
    for seg, n in ((g.orc, 12), (g.obr, 16)):
        if seg is None or g.provider is not None:
            continue
        reps = r.reps(seg, n)
        found = read_provider(r, seg, n, reps[0]) if reps else None
        if found is None:
            continue
        g.provider = next(
            (p for p in providers if (p.provider_id, p.id_authority) == (found.provider_id, found.id_authority)), None
        )
        if g.provider is None:
            providers.append(found)
            g.provider = found


def _status(r: Reader, obx: Segment) -> tuple[str | None, str]:
    code = r.text(obx, 11).upper()
    if not code:
        r.issue(ErrorCode.REQUIRED_FIELD_MISSING, obx, 11, "observation result status (OBX-11) is empty")
        return None, code
    status = OBSERVATION_STATUS.get(code)
    if status is None:
        r.issue(ErrorCode.TABLE_VALUE_NOT_FOUND, obx, 11, "observation result status not in HL7 Table 0085")
    return status, code


def _interpretations(r: Reader, obx: Segment) -> list[str]:
    codes: list[str] = []
    for rep in r.reps(obx, 8):
        code = r.comp(obx, 8, 1, rep)
        if code in ABNORMAL_FLAGS:
            codes.append(code)
        elif code:
            r.issue(ErrorCode.TABLE_VALUE_NOT_FOUND, obx, 8, "abnormal flag not in HL7 Table 0078", Severity.WARNING)
    return codes


def _performer(r: Reader, obx: Segment) -> dict[str, str] | None:
    """OBX-23 (XON), OBX-24 (XAD), OBX-25 (XCN medical director), v2.5+."""
    name = r.comp(obx, 23, 1)
    if not name:
        return None
    address = ", ".join(p for p in (r.comp(obx, 24, c) for c in (1, 3, 4, 5, 6)) if p)
    director = read_provider(r, obx, 25, r.reps(obx, 25)[0]) if r.reps(obx, 25) else None
    out = {"name": name, "identifier": r.comp(obx, 23, 10), "address": address}
    if director:
        out["director"] = director.display_name
    return out


def _value_type(r: Reader, obx: Segment) -> ValueType | None:
    raw = r.text(obx, 2).upper()
    if not raw:
        if r.reps(obx, 5):
            r.issue(ErrorCode.REQUIRED_FIELD_MISSING, obx, 2, "value type (OBX-2) is empty but OBX-5 is valued")
        return None
    try:
        return ValueType(raw)
    except ValueError:
        r.issue(ErrorCode.TABLE_VALUE_NOT_FOUND, obx, 2, "value type not in HL7 Table 0125 (supported subset)")
        return None


def _result(r: Reader, obx: Segment, g: _Group) -> ResultDraft | None:
    if g.obr is None and g.orc is None:
        r.issue(ErrorCode.SEGMENT_SEQUENCE_ERROR, obx, None, "OBX outside an order group (no ORC/OBR before it)")
        return None
    if g.obr is None:
        r.issue(ErrorCode.SEGMENT_SEQUENCE_ERROR, obx, None, "OBX before its OBR; keyed by the ORC", Severity.WARNING)
    placer, filler = _order_ids(r, g)
    code = r.coded(obx, 3)
    value_type = _value_type(r, obx)
    if not code.code or not (filler or placer):
        if not code.code:
            r.issue(ErrorCode.REQUIRED_FIELD_MISSING, obx, 3, "observation identifier (OBX-3) is empty")
        else:
            r.issue(ErrorCode.REQUIRED_FIELD_MISSING, obx, None, "no filler or placer order number (OBR-3/OBR-2)")
        if value_type is not None:
            read_value(r, obx, value_type, "")  # report value problems too: the ACK names all of them
        return None
    if value_type is None and r.reps(obx, 5):
        return None
    status, status_code = _status(r, obx)
    title = code.display or code.original_text
    value = read_value(r, obx, value_type, title) if value_type else None
    effective = r.dtm(obx, 14)
    source = "OBX-14" if effective else None
    if effective is None and g.obr is not None:
        effective = r.dtm(g.obr, 7)
        source = "OBR-7" if effective else None
    reported = r.dtm(g.obr, 22) if g.obr else None
    report_code = r.text(g.obr, 25).upper() if g.obr else ""
    if report_code and report_code not in RESULT_STATUS and g.obr is not None:
        r.issue(ErrorCode.TABLE_VALUE_NOT_FOUND, g.obr, 25, "result status not in HL7 Table 0123", Severity.WARNING)
    data: dict[str, Any] = dict(value.data) if value else {}
    performer = _performer(r, obx)
    if performer:
        data["performingOrganization"] = performer
    if report_code in RESULT_STATUS:
        data["reportStatusCode"] = report_code
    interpretations = _interpretations(r, obx)
    return ResultDraft(
        order_id=filler or placer,
        order_id_kind="filler" if filler else "placer",
        placer_order=placer,
        filler_order=filler,
        test_code=code.code,
        code_system=code.system,
        code_system_uri=coding_system_uri(code.system),
        test_name=code.display or code.original_text,
        alternate_code=(
            {"code": code.alt_code, "display": code.alt_display, "system": code.alt_system} if code.alt_code else None
        ),
        sub_id=r.text(obx, 4),
        value_type=value_type.value if value_type else "",
        result_value=value.display if value else None,
        result_data=data,
        units=r.comp(obx, 6, 1) or None,
        units_system=r.comp(obx, 6, 3) or None,
        reference_range=r.decode(obx.raw(7), obx, 7) or None,
        interpretation=interpretations[0] if interpretations else None,
        interpretations=interpretations,
        status=status,
        status_code=status_code,
        effective_at=effective.value if effective else None,
        effective_precision=effective.precision if effective else None,
        effective_source=source,
        reported_at=reported.value if reported else None,
        report_status=RESULT_STATUS.get(report_code),
        notes=None,
        attachments=value.attachments if value else [],
        ordering_provider=(g.provider.provider_id or None) if g.provider else None,
        obx_position=obx.position,
    )


def _dedupe(issues: list[Hl7Error]) -> list[Hl7Error]:
    out: list[Hl7Error] = []
    for issue in issues:
        if issue not in out:
            out.append(issue)
    return out


def parse_oru(message: str | bytes | Er7Message, options: ParseOptions | None = None) -> OruResult:
    """Map one ORU^R01. Raises :class:`Hl7Error` only for AR conditions (unreadable
    MSH, wrong type, unsupported version); everything else is an issue on the result.
    """
    options = options or ParseOptions()
    msg = to_message(message)
    header = read_header(msg, options.default_tz)
    if check_supported(header) is not MessageKind.ORU_R01:
        raise Hl7Error(ErrorCode.UNSUPPORTED_MESSAGE_TYPE, "MSH", 1, 9, "not an ORU^R01 message")
    issues = list(msg.issues)
    r = Reader(msg.encoding, issues, options.default_tz)
    pid = msg.first("PID")
    patient = read_patient(r, pid) if pid else None
    if pid is None:
        r.issue(ErrorCode.REQUIRED_FIELD_MISSING, None, None, "no PID segment: results cannot be assigned to a patient")
    providers: list[ProviderDraft] = []
    results: list[ResultDraft] = []
    group = _Group()
    notes_of: dict[int, list[str]] = {}
    target: list[str] | None = None
    for seg in msg.segments[1:]:
        start = len(issues)
        if seg.name == "ORC":
            group = _Group(orc=seg)
            _provider(r, group, providers)
            target = None
        elif seg.name == "OBR":
            group = _Group(orc=group.orc if group.obr is None else None, obr=seg)
            _provider(r, group, providers)
            target = group.notes
        elif seg.name == "OBX":
            result = _result(r, seg, group)
            target = None
            if result is not None:
                result.issues.extend(issues[start:])
                if group.notes:
                    result.result_data["orderNotes"] = "\n".join(group.notes)
                results.append(result)
                target = notes_of.setdefault(id(result), [])
        elif seg.name == "NTE":
            if target is None:
                r.issue(
                    ErrorCode.SEGMENT_SEQUENCE_ERROR,
                    seg,
                    None,
                    "NTE without an OBR/OBX before it; ignored",
                    Severity.WARNING,
                )
            else:
                target.append(r.decode(seg.raw(3).replace(msg.encoding.repetition, "\n"), seg, 3))
        elif seg.name not in ORU_SEGMENTS and not seg.name.startswith("Z"):
            r.issue(
                ErrorCode.SEGMENT_SEQUENCE_ERROR,
                seg,
                None,
                f"{seg.name} is not part of ORU^R01; ignored",
                Severity.WARNING,
            )
    for result in results:
        own = notes_of.get(id(result))
        result.notes = "\n".join(own) if own else None
    return OruResult(header, patient, providers, results, _dedupe(issues))
