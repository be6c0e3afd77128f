"""Ingestion rules on the synthetic fixtures: keys, statuses, values, attachments, notes, ADT."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mappings.hl7v2 import ErrorCode, Hl7Error, MessageKind, classify, parse_adt, parse_oru
from mappings.hl7v2.tables import OBSERVATION_STATUS

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "hl7v2"


def _oru(stem: str):  # type: ignore[no-untyped-def]
    return parse_oru((FIXTURES / f"{stem}.hl7").read_bytes())


def test_correction_sequence_keeps_one_key() -> None:
    runs = [_oru(f"correction-{n}") for n in ("1-preliminary", "2-final", "3-corrected")]
    assert len({r.results[0].key for r in runs}) == 1
    assert [r.results[0].status for r in runs] == ["preliminary", "final", "corrected"]
    assert runs[2].results[0].notes == "Corrected: prior value reported on the wrong specimen."


def test_cancelled_result() -> None:
    result = _oru("cancelled-x").results[0]
    assert result.status == "cancelled" and result.result_value is None and result.report_status == "cancelled"


def test_chemistry_panel_and_provider_npi() -> None:
    oru = _oru("chem-panel-beaker")
    assert len(oru.results) == 15 and not oru.issues
    assert oru.providers[0].npi == "1234567893" and oru.providers[0].source == "ORC-12"
    egfr = oru.results[-1]
    assert egfr.result_data["comparator"] == ">" and egfr.result_data["value"] == 60
    assert egfr.result_data["performingOrganization"]["name"] == "Northwind Core Lab"


def test_pdf_attachment() -> None:
    attachment = _oru("pdf-report-ed").results[0].attachments[0]
    assert attachment["contentType"] == "application/pdf"
    assert base64.b64decode(attachment["data"]).startswith(b"%PDF-")


def test_micro_text_and_notes() -> None:
    oru = _oru("micro-culture-copath")
    assert not oru.issues
    tx = oru.results[2]
    assert tx.result_value is not None and tx.result_value.count("\n") == 2
    assert oru.results[3].result_value == "Gram-negative rods seen.\nFew epithelial cells."
    assert oru.results[3].notes == "Interpret with clinical findings."
    assert oru.results[0].result_data["orderNotes"] == "Specimen received refrigerated."
    assert oru.patient is not None and oru.patient.gender == "unknown"


def test_escapes_and_unicode() -> None:
    oru = _oru("escapes-utf8")
    assert oru.results[0].result_value == "Ratio A|B ^ sub&comp ~ rep \\ esc"
    assert "\\Zabc\\" in (oru.results[1].result_value or "")
    assert oru.patient is not None and oru.patient.given_name == "José"
    latin = _oru("latin1-8859")
    assert latin.patient is not None and latin.patient.family_name == "Peña"


def test_malformed_obx_issues_are_located() -> None:
    oru = _oru("malformed-bad-obx2")
    assert [(i.location, i.code) for i in oru.issues] == [
        ("OBX[1]-2", ErrorCode.TABLE_VALUE_NOT_FOUND),
        ("OBX[2]-5", ErrorCode.DATA_TYPE_ERROR),
        ("OBX[3]-11", ErrorCode.TABLE_VALUE_NOT_FOUND),
    ]
    assert oru.has_errors


@pytest.mark.parametrize(
    ("stem", "code"),
    [
        ("malformed-missing-msh", ErrorCode.SEGMENT_SEQUENCE_ERROR),
        ("malformed-unknown-version", ErrorCode.UNSUPPORTED_VERSION_ID),
    ],
)
def test_rejections(stem: str, code: ErrorCode) -> None:
    with pytest.raises(Hl7Error) as info:
        classify((FIXTURES / f"{stem}.hl7").read_bytes())
    assert info.value.code is code


def test_adt_takes_mr_and_refuses_merge() -> None:
    update = parse_adt((FIXTURES / "adt-a08-update.hl7").read_bytes())
    assert update.kind is MessageKind.ADT_A08 and update.patient is not None
    assert update.patient.mrn == "ES-20011" and update.patient.middle_name == "Taylor"
    merge = parse_adt((FIXTURES / "adt-a40-merge.hl7").read_bytes())
    assert merge.patient is None and merge.issues[0].code is ErrorCode.UNSUPPORTED_EVENT_CODE


def test_status_table_covers_0085() -> None:
    assert set(OBSERVATION_STATUS) == set("ABCDFINOPRSUVWX")
    assert OBSERVATION_STATUS["W"] == "entered-in-error" and OBSERVATION_STATUS["D"] == "entered-in-error"
