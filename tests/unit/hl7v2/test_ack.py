"""ACK shapes (HL7 v2.5.1 section 2.9.2): AA/AE/AR, ERR locations, version mirrored, MSH swapped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import hl7
import pytest

from mappings.hl7v2 import AckCode, ErrorCode, Hl7Error, Severity, build_ack, build_ack_for_unparseable, parse_oru

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "hl7v2"
NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def _ack(stem: str, code: AckCode, errors: list[Hl7Error] | None = None) -> hl7.Message:
    result = parse_oru((FIXTURES / f"{stem}.hl7").read_bytes())
    text = build_ack(result.header, code, errors or [], ack_control_id="ACK1", now=NOW)
    assert text.endswith("\r") and "\n" not in text
    return hl7.parse(text)


def test_aa_swaps_routing_and_mirrors_version() -> None:
    ack = _ack("chem-panel-beaker", AckCode.AA)
    msh = ack.segment("MSH")
    assert str(msh[3]) == "PORTAL" and str(msh[5]) == "BEAKER"
    assert str(msh[4]) == "PORTAL GW" and str(msh[6]) == "NORTHWIND LAB^2.16.840.1.113883.3.9999.1^ISO"
    assert str(msh[9]) == "ACK^R01^ACK" and str(msh[10]) == "ACK1" and str(msh[12]) == "2.5.1"
    assert str(ack.segment("MSA")[1]) == "AA" and str(ack.segment("MSA")[2]) == "NWL-000101"
    assert len(ack) == 2


def test_ae_err_segments_name_the_field() -> None:
    result = parse_oru((FIXTURES / "malformed-bad-obx2.hl7").read_bytes())
    ack = hl7.parse(build_ack(result.header, AckCode.AE, result.issues, ack_control_id="A", now=NOW))
    errs = ack.segments("ERR")
    assert [str(e[2]) for e in errs] == ["OBX^1^2", "OBX^2^5", "OBX^3^11"]
    assert [str(e[3][0][0]) for e in errs] == ["103", "102", "103"]
    assert all(str(e[4]) == "E" for e in errs)
    assert "Table 0125" in str(errs[0][8])


def test_old_versions_use_err_1() -> None:
    ack = _ack(
        "cbc-sunquest",
        AckCode.AE,
        [Hl7Error(ErrorCode.DATA_TYPE_ERROR, "OBX", 2, 5, "bad|value^with~delims", Severity.ERROR)],
    )
    assert str(ack.segment("MSH")[12]) == "2.3.1"
    assert str(ack.segment("ERR")[1]) == "OBX^2^5^102&Data type error&HL70357"


def test_user_message_is_escaped() -> None:
    ack = _ack("chem-panel-beaker", AckCode.AE, [Hl7Error(ErrorCode.DATA_TYPE_ERROR, "OBX", 1, 5, "a|b^c")])
    assert str(ack.segment("ERR")[8]) == "a\\F\\b\\S\\c"


def test_ar_for_unparseable_is_best_effort() -> None:
    err = Hl7Error(ErrorCode.UNSUPPORTED_VERSION_ID, "MSH", 1, 12, "version not supported")
    raw = b"MSH|^~\\&|LAB|FAC|GW|GWF|20260101||ORU^R01|C-9|P|2.9\rPID|1"
    ack = hl7.parse(build_ack_for_unparseable(raw, err, ack_control_id="A9", now=NOW))
    msh = ack.segment("MSH")
    assert (str(msh[3]), str(msh[5]), str(msh[9]), str(msh[12])) == ("GW", "LAB", "ACK^R01^ACK", "2.9")
    assert str(ack.segment("MSA")[1]) == "AR" and str(ack.segment("MSA")[2]) == "C-9"
    garbage = build_ack_for_unparseable(b"\x00\xffnot hl7 at all", err, ack_control_id="A10", now=NOW)
    assert str(hl7.parse(garbage).segment("MSA")[1]) == "AR"


def test_non_default_delimiters_are_mirrored() -> None:
    text = "MSH$@#!%$LAB$FAC$GW$GWF$20260101$$ORU@R01$C-1$P$2.5.1\rPID$1$$X1@@@A@MR\rOBR$1$P1$F1$2345-7@Glu@LN\r"
    text += "OBX$1$NM$2345-7@Glu@LN$$90$mg/dL$$$$$F\r"
    result = parse_oru(text)
    assert result.results[0].result_data == {"value": 90.0}
    ack = build_ack(result.header, AckCode.AA, [], ack_control_id="A", now=NOW)
    assert ack.startswith("MSH$@#!%$GW$GWF$LAB$FAC$") and "ACK@R01@ACK" in ack


@pytest.mark.parametrize(
    ("msh", "offset", "stamp"),
    [
        ("MSH|^~\\&", 2, "20260201140000+0200"),  # no sign is a delimiter: the sender's own offset
        ("MSH+|~\\&", 2, "20260201120000-0000"),  # '+' separates fields: UTC with the free sign
        ("MSH|-~\\&", -5, "20260201120000+0000"),  # '-' separates components
        ("MSH+-~\\&", 2, "20260201120000"),  # both are delimiters: UTC without an offset
    ],
)
def test_ack_time_never_holds_a_delimiter(msh: str, offset: int, stamp: str) -> None:
    """Found by the fuzz test: with '+' as field separator, MSH-7's '+0000' split the field."""
    f = msh[3]
    text = f.join(
        [msh, "LAB", "FAC", "GW", "GWF", "20260201120000", "", "ORU^R01".replace("^", msh[4]), "C1", "P", "2.5.1"]
    )
    text += "\r" + f.join(["PID", "1", "", "M1"])
    result = parse_oru(text)
    when = NOW.astimezone(timezone(timedelta(hours=offset)))
    ack = build_ack(result.header, AckCode.AA, [], ack_control_id="A1", now=when)
    fields = ack.split("\r")[0].split(f)
    assert fields[6] == stamp and fields[8].startswith("ACK")
    assert all(ch not in fields[6] for ch in msh[3:8])
