"""ER7 framing, charsets (MSH-18), escape sequences and HL7 times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mappings.hl7v2 import Encoding, Hl7Error, decode, parse_dtm, parse_message, parse_oru, split_batch, unescape

ENC = Encoding()
MSG = (
    "MSH|^~\\&|L|F|G|GF|20260101||ORU^R01|C1|P|2.5.1\rPID|1||M1^^^A^MR||Doe^Jo\r"
    "OBR|1|P|F|X^Y^LN\rOBX|1|ST|X^Y^LN||v||||||F"
)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("a\\F\\b", "a|b"),
        ("\\S\\\\T\\\\R\\\\E\\", "^&~\\"),
        ("x\\X0D0A\\y", "x\r\ny"),
        ("l1\\.br\\l2", "l1\nl2"),
        ("\\H\\bold\\N\\", "bold"),
        ("keep \\Zabc\\", "keep \\Zabc\\"),
        ("caf\\XC3A9\\", "café"),
    ],
)
def test_unescape(raw: str, text: str) -> None:
    assert unescape(raw, ENC) == (text, [])


@pytest.mark.parametrize("raw", ["open \\F", "bad \\XZZ\\", "odd \\X0\\"])
def test_malformed_escapes_are_kept_and_reported(raw: str) -> None:
    text, problems = unescape(raw, ENC)
    assert problems and text == raw


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_any_segment_terminator_and_bom(sep: str) -> None:
    raw = ("\ufeff" + MSG.replace("\r", sep)).encode("utf-8")
    msg = parse_message(decode(raw).text)
    assert [s.name for s in msg.segments] == ["MSH", "PID", "OBR", "OBX"]


def test_charsets() -> None:
    latin = MSG.replace("2.5.1", "2.5.1||||||8859/1").replace("Doe^Jo", "Peña^Inés").encode("latin-1")
    assert parse_oru(latin).patient is not None and parse_oru(latin).patient.family_name == "Peña"  # type: ignore[union-attr]
    undeclared = MSG.replace("Doe^Jo", "Peña^Inés").encode("latin-1")
    decoded = decode(undeclared)
    assert decoded.codec == "latin-1" and "Peña" in decoded.text and decoded.issues[0].location == "MSH[1]-18"
    utf8 = MSG.replace("2.5.1", "2.5.1||||||UNICODE UTF-8").replace("Doe^Jo", "李^小龍").encode("utf-8")
    assert parse_oru(utf8).patient.family_name == "李"  # type: ignore[union-attr]


def test_split_batch_keeps_leading_junk() -> None:
    batch = "FHS|^~\\&\rBHS|^~\\&\r" + MSG + "\r" + MSG.replace("C1", "C2") + "\rBTS|2\rFTS|1"
    assert [m.split("|")[9] for m in split_batch(batch)] == ["C1", "C2"]
    chunks = split_batch("PID|1\r" + MSG)
    assert len(chunks) == 2
    with pytest.raises(Hl7Error):
        parse_message(chunks[0])


def test_dtm_precision_and_zones() -> None:
    d = parse_dtm("20110103143428-0800", UTC)
    assert d.value == datetime(2011, 1, 3, 22, 34, 28, tzinfo=UTC) and d.precision == "second"
    assert parse_dtm("20120301", UTC).iso() == "2012-03-01"
    local = timezone(timedelta(hours=1))
    assert parse_dtm("202601011200", local).value.utcoffset() == timedelta(hours=1)
    assert parse_dtm("20260101120000.1234+0530", UTC).value.microsecond == 123400
    for bad in ("2026013", "20261301", "abc", "20260101+2500"):
        with pytest.raises(ValueError):
            parse_dtm(bad, UTC)


def test_dtm_values_share_their_zone() -> None:
    """Values that state the same offset share one ``timezone`` object: the drafts of a message are
    pickled to the writer process, and pickle writes each distinct zone object in full (it was half
    the pickling time of a 12-result message)."""
    import pickle

    first = parse_dtm("20260114074500-0500", UTC).value
    second = parse_dtm("20260115091500-0500", UTC).value
    assert first.tzinfo is second.tzinfo
    assert parse_dtm("20260114074500+0500", UTC).value.utcoffset() == timedelta(hours=5)
    assert parse_dtm("20260114074500-0000", UTC).value.utcoffset() == timedelta(0)
    one = len(pickle.dumps([first]))
    assert len(pickle.dumps([first, second])) < 2 * one - 20  # the zone is written once
    assert parse_dtm("20260114074500-0500", UTC) == parse_dtm(" 20260114074500-0500 ", UTC)


def test_bare_msh_segment_never_crashes() -> None:
    """Found by the fuzz test: an MSH with no delimiters at all must give a located error and an AR."""
    from datetime import UTC, datetime

    from mappings.hl7v2 import build_ack_for_unparseable, decode
    from mappings.hl7v2.errors import Hl7Error
    from mappings.hl7v2.tables import ErrorCode

    error = Hl7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH", 1, 1, "bare MSH")
    for raw in (b"MSH\r", b"MSH\rPID|1\r", b"MSH\nOBX|1"):
        assert decode(raw).text.startswith("MSH")
        ack = build_ack_for_unparseable(raw, error, ack_control_id="A1", now=datetime(2026, 1, 1, tzinfo=UTC))
        assert "MSA|AR" in ack


@pytest.mark.parametrize(
    ("raw", "location"),
    [
        (MSG.replace("C1", "C\x001").encode(), "MSH[1]-10"),
        (MSG.replace("|v|", "|v\x00|").encode("utf-8"), "OBX[1]-5"),
        (MSG.replace("Doe^Jo", "Doe^J\x00o").encode("latin-1"), "PID[1]-5"),
        (MSG.replace("Doe^Jo", "Peña\x00").encode("latin-1"), "PID[1]-5"),  # read as 8859/1, then NUL
        (MSG.replace("|v|", "|v\x00|"), "OBX[1]-5"),  # already text (the HTTP door)
    ],
)
def test_nul_is_replaced_and_is_an_error_where_it_was(raw: bytes | str, location: str) -> None:
    decoded = decode(raw)
    assert "\x00" not in decoded.text and "\ufffd" in decoded.text
    [nul] = [i for i in decoded.issues if "NUL" in i.message]
    assert nul.severity.value == "E" and nul.location == location
    assert len(decoded.text) == len(raw if isinstance(raw, str) else raw.decode("latin-1"))


def test_a_message_without_nul_has_no_nul_issue() -> None:
    assert decode(MSG.encode()).issues == []
