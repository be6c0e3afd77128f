"""Property test: mutated messages never raise anything but Hl7Error, and every ACK parses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import hl7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.hl7v2 import (
    AckCode,
    Hl7Error,
    MessageKind,
    build_ack,
    build_ack_for_unparseable,
    classify,
    decode,
    parse_adt,
    parse_oru,
    split_batch,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "hl7v2"
CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus" / "hl7v2"
SEEDS = [p.read_bytes() for p in sorted(FIXTURES.glob("*.hl7")) + sorted(CORPUS.glob("*.hl7"))]
NOW = datetime(2026, 2, 1, tzinfo=UTC)
ALPHABET = "|^~\\&\r\n MSHOBXPID0123456789.+-XF\x00\xe9"


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    text = decode(draw(st.sampled_from(SEEDS))).text
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "truncate", "swap"]))
        i = draw(st.integers(0, max(len(text) - 1, 0)))
        if op == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 8)) :]
        elif op == "duplicate":
            text = text[:i] + text[i : i + 12] + text[i:]
        elif op == "insert":
            text = text[:i] + draw(st.text(ALPHABET, min_size=1, max_size=6)) + text[i:]
        elif op == "truncate":
            text = text[:i]
        else:
            segs = text.replace("\n", "\r").split("\r")
            a, b = draw(st.integers(0, len(segs) - 1)), draw(st.integers(0, len(segs) - 1))
            segs[a], segs[b] = segs[b], segs[a]
            text = "\r".join(segs)
    encoding = draw(st.sampled_from(["utf-8", "latin-1"]))
    return text.encode(encoding, "replace")


def _process(text: str) -> str:
    try:
        kind = classify(text)
        result = parse_oru(text) if kind is MessageKind.ORU_R01 else parse_adt(text)
    except Hl7Error as err:
        return build_ack_for_unparseable(text, err, ack_control_id="F", now=NOW)
    code = AckCode.AE if any(i.severity.value == "E" for i in result.issues) else AckCode.AA
    return build_ack(result.header, code, result.issues, ack_control_id="F", now=NOW)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_only_raise_hl7error_and_acks_parse(raw: bytes) -> None:
    for text in split_batch(decode(raw).text) or [""]:
        ack = _process(text)
        parsed = hl7.parse(ack)
        assert str(parsed.segment("MSA")[1]) in {"AA", "AE", "AR"}
        assert str(parsed.segment("MSH")[9][0][0]) == "ACK"
