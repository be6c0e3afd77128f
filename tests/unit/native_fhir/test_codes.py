"""Status tables only produce codes of the FHIR R4 required value sets (copied here independently)."""

from __future__ import annotations

from mappings.native_fhir import codes

EVENT_STATUS = {
    "preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error",
    "unknown",
}  # fmt: skip
REQUEST_STATUS = {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
APPOINTMENT_STATUS = {
    "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow", "entered-in-error",
    "checked-in", "waitlist",
}  # fmt: skip
OBSERVATION_STATUS = {
    "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown",
}  # fmt: skip
ACTIONS = {"C", "R", "U", "D", "E"}
OUTCOMES = {"0", "4", "8", "12"}


def test_status_tables_map_into_required_value_sets() -> None:
    assert set(codes.MESSAGE_STATUS.values()) <= EVENT_STATUS
    assert set(codes.CAREPLAN_STATUS.values()) <= REQUEST_STATUS
    assert set(codes.APPOINTMENT_STATUS.values()) <= APPOINTMENT_STATUS
    assert codes.OBSERVATION_STATUS <= OBSERVATION_STATUS


def test_one_to_one_tables_invert() -> None:
    for table in (codes.CAREPLAN_STATUS, codes.APPOINTMENT_STATUS):
        assert codes.invert(codes.invert(table)) == table


def test_audit_tables() -> None:
    assert {action for action, _, _ in codes.AUDIT_ACTIONS.values()} <= ACTIONS
    assert set(codes.AUDIT_OUTCOMES.values()) <= OUTCOMES


def test_coding_system_ids_round_trip() -> None:
    base = "https://x.example/fhir"
    for sid in ["LN", "SCT", "L", "99LAB", "LOCAL LAB", "a/b"]:
        assert codes.system_id(base, codes.system_uri(base, sid)) == sid
    assert codes.system_id(base, "http://example.org/unknown") is None
