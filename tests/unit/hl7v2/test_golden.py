"""Golden files: fixtures/hl7v2/<stem>.hl7 -> <stem>.expected.json (drafts, issues and the ACK).

Regenerate only deliberately: ``UPDATE_GOLDEN=1 pytest tests/unit/hl7v2/test_golden.py``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mappings.hl7v2 import (
    AckCode,
    Hl7Error,
    MessageKind,
    build_ack,
    build_ack_for_unparseable,
    classify,
    decode,
    parse_adt,
    parse_message,
    parse_oru,
    split_batch,
    to_json,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "hl7v2"
NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def render_one(text: str, number: int) -> dict[str, Any]:
    """One message -> what the gateway would apply and answer."""
    ack_id = f"ACK-{number}"
    try:
        msg = parse_message(text)
        kind = classify(msg)
        result = parse_oru(msg) if kind is MessageKind.ORU_R01 else parse_adt(msg)
    except Hl7Error as err:
        return {
            "outcome": "AR",
            "error": err.as_dict(),
            "ack": build_ack_for_unparseable(text, err, ack_control_id=ack_id, now=NOW).split("\r"),
        }
    code = AckCode.AE if any(i.severity.value == "E" for i in result.issues) else AckCode.AA
    ack = build_ack(result.header, code, result.issues, ack_control_id=ack_id, now=NOW)
    return {"outcome": code.value, "kind": kind.value, "result": to_json(result), "ack": ack.split("\r")}


def render(raw: bytes) -> list[dict[str, Any]]:
    decoded = decode(raw)
    return [render_one(text, n) for n, text in enumerate(split_batch(decoded.text), start=1)]


def _cases() -> list[Path]:
    return sorted(FIXTURES.glob("*.hl7"))


def test_fixture_set_is_complete() -> None:
    stems = {p.stem for p in _cases()}
    assert len(stems) >= 15
    assert {"chem-panel-beaker", "batch-fhs-bhs", "pdf-report-ed", "escapes-utf8", "latin1-8859"} <= stems


@pytest.mark.parametrize("path", _cases(), ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    actual = json.loads(json.dumps(render(path.read_bytes())))
    expected_path = path.with_suffix(".expected.json")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert expected_path.exists(), f"missing golden file {expected_path.name}; run with UPDATE_GOLDEN=1"
    assert actual == json.loads(expected_path.read_text(encoding="utf-8"))
