"""Apply one mapped message to the store, inside the caller's transaction.

Mirrors what ``Records`` does for a client write, without the client policy (the
feed is a system actor): deterministic ids from natural keys, server-derived ACL
columns (``links.acl_columns``), a ``_Version`` row per change and AuditLog entries in
the same transaction. A problem found against the store raises :class:`Unappliable`;
the caller rolls the effects back and answers AE.

Care team (DESIGN.md "Authorization": a provider sees the patients whose careTeam names
them): the ordering provider of an ORU (ORC-12/OBR-16, the provider an OBX's order names)
is added to the patient's care team when not already on it, so the clinician who ordered
a test can read its results in the portal; without this a patient created by the feed
has nobody on its care team. Only added, never removed or reordered (staff curate the
team); inactive providers are not added; the change is a new PatientProfile version with
an AuditLog ``update`` entry, and the ``careTeam_<patient>`` role is re-synced through
``links.sync_care_team_role`` like any other care-team change. The feed is an
authenticated, trusted system actor: it may name who ordered a result just as it may
state the result.

Lean on purpose (issue #4's throughput target): the new LabResults of a message go in
with one multi-row INSERT and their first ``_Version`` rows with another (not one
INSERT + savepoint + version per OBX), and the message's audit entries are collected in
``Effects.audit`` and appended once, under one head lock, by the caller. Inside a group
commit the new rows are staged with the group's and inserted at its end (``hl7v2.staged``).
A statement costs far more in the async driver than in SQLite, so the count per message matters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.audit.writer import AuditAction, AuditEntry
from gateway.hl7v2 import prefetch, staged
from gateway.hl7v2.ordering import replaces
from gateway.policy.principal import Principal
from gateway.policy.rules import PUBLISHED_STATUSES, PatientLink
from gateway.records import links
from gateway.store.anyof import any_of, by_dialect
from gateway.store.classes import CLASSES
from gateway.store.ids import clustered_object_id, derived_object_id
from gateway.store.models import CareTeam, Hl7ResultIds, Version, table_of
from gateway.store.objects import Record, get_record, insert_record, now, update_record
from gateway.store.types import UTCDateTime, utc_iso
from mappings.hl7v2 import ErrorCode, Hl7Error, PatientDraft, ProviderDraft, ResultDraft, to_json
from mappings.hl7v2.drafts import key_id_text

__all__ = [
    "Effects",
    "Unappliable",
    "apply_patient",
    "apply_results",
    "has_legacy_result_ids",
    "legacy_result_id",
    "result_id",
]

_PATIENT = CLASSES["PatientProfile"]
_PROVIDER = CLASSES["ProviderProfile"]
_RESULT = CLASSES["LabResult"]
_VERSIONS = table_of(Version)
_CARE = table_of(CareTeam)

# Hot-path statements built once (building a statement per message costs more than running it).
_BY_MRN = select(_PATIENT.table).where(_PATIENT.table.c.medicalRecordNumber == bindparam("mrn"))
_TEAM = select(_CARE.c.relatedId).where(_CARE.c.owningId == bindparam("patient"))
_PROVIDER_BY_NPI = select(_PROVIDER.table.c.objectId).where(_PROVIDER.table.c.npi == bindparam("key"))
_PROVIDER_BY_ID = select(_PROVIDER.table.c.objectId).where(_PROVIDER.table.c.objectId == bindparam("key"))
_RESULTS = select(_RESULT.table).where(_RESULT.pk.in_(bindparam("ids", expanding=True)))
_RESULTS_LOCKED = select(_RESULT.table).where(any_of(_RESULT.pk, "ids")).with_for_update()
"""PostgreSQL's results lookup: the keys as one array (``store.anyof``), the rows locked."""
_PATIENTS_BY_MRNS = by_dialect(
    lambda one_of: select(_PATIENT.table).where(one_of(_PATIENT.table.c.medicalRecordNumber, "mrns"))
)
_TEAMS_OF = by_dialect(
    lambda one_of: select(_CARE.c.owningId, _CARE.c.relatedId).where(one_of(_CARE.c.owningId, "patients"))
)


def _providers_by(column: Any) -> dict[str, Any]:
    return by_dialect(
        lambda one_of: select(_PROVIDER.table.c.objectId, column.label("key")).where(one_of(column, "keys"))
    )


_PROVIDERS_BY = {"npi": _providers_by(_PROVIDER.table.c.npi), "id": _providers_by(_PROVIDER.table.c.objectId)}
"""The reads ahead of a group (see ``read_ahead``), built once per dialect (``store.anyof``)."""
_INSERT_RESULTS = insert(_RESULT.table)
_RESULT_COLUMNS = frozenset(_RESULT.table.c.keys())
"""A set, not ``table.c``: its membership test is a Python method call per key, twenty keys a result."""
_PRIVATE_COLUMNS = frozenset(k for k in _RESULT_COLUMNS if k.startswith("_"))
_DATE_COLUMNS = tuple(c.key for c in _RESULT.table.c if isinstance(c.type, UTCDateTime))
_INSERT_VERSIONS = insert(_VERSIONS)

_RESULT_IDS = table_of(Hl7ResultIds)
_LEGACY_FLAG = select(_RESULT_IDS.c.legacy).where(_RESULT_IDS.c.id == 1)


def result_id(sender: str, draft: ResultDraft) -> str:
    """The LabResult an OBX maps to: derived from (sender, natural key), clustered by its order so
    that a message's results share index pages (``ids.clustered_object_id``)."""
    return _result_id(sender, draft.key)


@lru_cache(maxsize=4096)
def _result_id(sender: str, key: tuple[str, str, str, str]) -> str:
    """Remembered: on PostgreSQL a group's read-ahead asks for the ids its jobs ask for again (two
    hashes a result each time)."""
    return clustered_object_id(("LabResult", sender, key[0]), key_id_text(key))


def legacy_result_id(sender: str, draft: ResultDraft) -> str:
    """The id the feed gave the same result before ids were clustered (10 characters): a result
    stored then keeps its id, and a later message for it (a correction) must still find it."""
    return derived_object_id("LabResult", sender, str(draft.key_id))


async def has_legacy_result_ids(conn: AsyncConnection) -> bool:
    """Whether the store holds feed results under ``legacy_result_id``s, as migration 0012 found
    when it upgraded the store (nothing writes them since, so the answer can be kept for the life
    of a process). When it does not, which is every store created since, results are looked up
    under one id only. No row (a store edited by hand) counts as yes: looking twice is safe."""
    row = (await conn.execute(_LEGACY_FLAG)).first()
    return True if row is None else bool(row[0])


_LIMITS = {
    "orderId": 128,
    "testCode": 64,
    "codeSystem": 64,
    "testName": 255,
    "valueType": 16,
    "units": 64,
    "referenceRange": 128,
    "interpretation": 16,
}
"""Column widths of LabResult (gateway.store.models): longer values are an AE, never a silent cut."""


class Unappliable(Exception):
    """The message is understood but cannot be applied: located errors for the AE."""

    def __init__(self, errors: list[Hl7Error]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


@dataclass
class Effects:
    """What a message changed, kept on its message-log row."""

    patient: str | None = None
    patient_change: str | None = None
    providers: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    care_team: list[str] = field(default_factory=list)
    """Ordering providers this message added to the patient's care team."""
    audit: list[AuditEntry] = field(default_factory=list)
    """Entries the caller appends in one go after the effects (not part of ``as_dict``)."""
    at: datetime = field(default_factory=now)
    """The message's one instant: every row it creates or changes carries it as createdAt,
    updatedAt and publishedAt (one transaction, one time; and one date text to bind)."""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v and k not in ("audit", "at")}


def _demographics(draft: PatientDraft) -> dict[str, Any]:
    values = {
        "givenName": draft.given_name or None,
        "familyName": draft.family_name or None,
        "displayName": draft.display_name or None,
        "dateOfBirth": draft.date_of_birth,
        "gender": draft.gender,
    }
    return {k: v for k, v in values.items() if v is not None}


async def _find_patient(conn: AsyncConnection, mrn: str, authority: str) -> tuple[dict[str, Any] | None, bool]:
    """The PatientProfile a PID-3 MRN names, and whether its authority is to be recorded on it.

    The identity is (MRN, assigning authority PID-3.4): the same MRN from two authorities is
    two patients, never merged. A profile registered locally (authority '') is the one an
    authority's MRN refers to until an authority claims it: the first message that names it
    records its authority (so a second authority with that MRN gets a patient of its own).
    A message without an authority matches the MRN when exactly one profile has it; when
    several do (two authorities), it is ambiguous: an AE asking for PID-3.4.
    """
    rows = _read_ahead_patients(mrn)
    if rows is None:
        rows = [dict(r) for r in (await conn.execute(_BY_MRN, {"mrn": mrn})).mappings()]
    exact = [r for r in rows if (r.get("mrnAuthority") or "") == authority]
    if exact:
        return exact[0], False
    if authority:
        local = [r for r in rows if not r.get("mrnAuthority")]
        return (local[0], True) if local else (None, False)
    if len(rows) > 1:
        raise Unappliable(
            [
                Hl7Error(
                    ErrorCode.REQUIRED_FIELD_MISSING,
                    "PID",
                    1,
                    3,
                    "this MRN is used by several assigning authorities; send PID-3.4 to say which patient",
                )
            ]
        )
    return (rows[0], False) if rows else (None, False)


async def apply_patient(
    conn: AsyncConnection, draft: PatientDraft, principal: Principal, effects: Effects
) -> PatientLink:
    """PatientProfile by (MRN, assigning authority) from PID-3: created if new, demographics updated,
    never merged across MRNs or authorities (see ``_find_patient``)."""
    authority = (draft.mrn_authority or "").strip()
    if not draft.mrn or len(draft.mrn) > 64:
        raise Unappliable([Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING, "PID", 1, 3, "no usable MRN in PID-3")])
    if len(authority) > 64:
        raise Unappliable([Hl7Error(ErrorCode.VALUE_TOO_LONG, "PID", 1, 3, "assigning authority over 64 characters")])
    row, claim = await _find_patient(conn, draft.mrn, authority)
    demo = _demographics(draft)
    if row is None:
        ts = effects.at
        oid = (
            derived_object_id("PatientProfile", authority, draft.mrn)
            if authority
            else derived_object_id("PatientProfile", draft.mrn)
        )
        link = PatientLink(oid, None)
        values: dict[str, Any] = {
            "objectId": oid,
            "createdAt": ts,
            "updatedAt": ts,
            "medicalRecordNumber": draft.mrn,
            "mrnAuthority": authority,
            "isActive": True,
            **demo,
        }
        values.update(links.acl_columns("PatientProfile", values, link))
        await insert_record(conn, _PATIENT, values, actor=principal.actor_name)
        prefetch.changed(("mrn", draft.mrn), ("patient", oid))
        await links.sync_care_team_role(conn, oid)
        effects.patient, effects.patient_change = oid, "created"
        return link
    current = row
    link = PatientLink(str(current["objectId"]), current.get("user"))
    changes = {k: v for k, v in demo.items() if current.get(k) != v}
    if claim:
        changes["mrnAuthority"] = authority
    effects.patient, effects.patient_change = link.patient_id, "unchanged"
    if changes:
        current = (await get_record(conn, _PATIENT, link.patient_id, keep_internal=True, for_update=True)) or current
        changes["updatedAt"] = effects.at
        merged = {**current, **changes}
        changes.update(links.acl_columns("PatientProfile", merged, link))
        await update_record(conn, _PATIENT, current, changes, actor=principal.actor_name)
        prefetch.changed(("mrn", draft.mrn), ("patient", link.patient_id))
        effects.patient_change = "updated"
    return link


async def _provider(conn: AsyncConnection, draft: ProviderDraft, principal: Principal, ts: datetime) -> str | None:
    """ProviderProfile by NPI, else by (assigning authority, XCN.1); created when new, never rewritten."""
    found = _provider_lookup(draft)
    if found is None:
        return None
    oid, by, key = found
    hit, known = prefetch.lookup(("provider", by, key))
    if hit:
        if known is not None:
            return str(known)
    else:
        row = (await conn.execute(_PROVIDER_BY_NPI if by == "npi" else _PROVIDER_BY_ID, {"key": key})).first()
        if row is not None:
            return str(row.objectId)
    values: dict[str, Any] = {
        "objectId": oid,
        "createdAt": ts,
        "updatedAt": ts,
        "displayName": (draft.display_name or draft.provider_id)[:255],
        "npi": draft.npi,
        "isActive": True,
    }
    values.update(links.acl_columns("ProviderProfile", values, None))
    await insert_record(conn, _PROVIDER, values, actor=principal.actor_name)
    prefetch.changed(("provider", by, key))
    return oid


def _provider_lookup(draft: ProviderDraft) -> tuple[str, str, str] | None:
    """(the id a new profile gets, what it is looked up by, the key): by NPI, else by (assigning
    authority, XCN.1) through the id derived from them; None when the draft names neither."""
    if draft.npi:
        return derived_object_id("ProviderProfile", "NPI", draft.npi), "npi", draft.npi
    if draft.provider_id:
        oid = derived_object_id("ProviderProfile", draft.id_authority, draft.provider_id)
        return oid, "id", oid
    return None


def _values(draft: ResultDraft, provider: str | None) -> dict[str, Any]:
    data = dict(to_json(draft.result_data) or {})
    data.update(
        {
            "statusCode": draft.status_code,
            "subId": draft.sub_id,
            "placerOrder": draft.placer_order,
            "fillerOrder": draft.filler_order,
            "unitsSystem": draft.units_system,
            "interpretations": draft.interpretations,
            "effectivePrecision": draft.effective_precision,
            "effectiveSource": draft.effective_source,
            "reportedAt": draft.reported_at.isoformat() if draft.reported_at else None,
            "reportStatus": draft.report_status,
            "codeSystemUri": draft.code_system_uri,
            "alternateCode": draft.alternate_code,
        }
    )
    return {
        "orderedBy": provider,
        "orderId": draft.order_id,
        "testCode": draft.test_code,
        "codeSystem": draft.code_system or None,
        "testName": draft.test_name or None,
        "resultValue": draft.result_value,
        "valueType": draft.value_type or None,
        "units": draft.units,
        "referenceRange": draft.reference_range,
        "interpretation": draft.interpretation,
        "status": draft.status or "unknown",
        "effectiveAt": draft.effective_at,
        "notes": draft.notes,
        "attachments": list(draft.attachments) or None,
        "resultData": {k: v for k, v in data.items() if v not in (None, "", [], {})},
    }


def _check(draft: ResultDraft, values: Mapping[str, Any]) -> None:
    errors = [
        Hl7Error(ErrorCode.VALUE_TOO_LONG, "OBX", draft.obx_position, None, f"{name} longer than {limit} characters")
        for name, limit in _LIMITS.items()
        if isinstance(values.get(name), str) and len(values[name]) > limit
    ]
    if not draft.order_id:
        errors.append(
            Hl7Error(ErrorCode.REQUIRED_FIELD_MISSING, "OBR", None, 3, "no filler or placer order number for an OBX")
        )
    if isinstance(values.get("effectiveAt"), datetime) and values["effectiveAt"].tzinfo is None:
        errors.append(Hl7Error(ErrorCode.DATA_TYPE_ERROR, "OBX", draft.obx_position, 14, "time without a zone"))
    if errors:
        raise Unappliable(errors)


async def apply_results(
    conn: AsyncConnection,
    results: list[ResultDraft],
    providers: list[ProviderDraft],
    link: PatientLink,
    principal: Principal,
    *,
    sender: str,
    message_id: str,
    effects: Effects,
    legacy_ids: bool = False,
) -> None:
    """One LabResult per natural key; corrections and later statuses are new versions of the same row.

    ``legacy_ids``: also look for each result under ``legacy_result_id`` (``has_legacy_result_ids``)
    and keep updating a row found there under its own id."""
    by_source: dict[str, str] = {}
    for p in providers:
        oid = await _provider(conn, p, principal, effects.at)
        if oid is not None:
            by_source.setdefault(p.provider_id or p.npi or "", oid)
            if oid not in effects.providers:
                effects.providers.append(oid)
    planned = []
    ordering: list[str] = []
    for draft in results:
        provider = by_source.get(draft.ordering_provider or "") if draft.ordering_provider else None
        values = _values(draft, provider)
        _check(draft, values)
        planned.append((result_id(sender, draft), draft, values))
        if provider is not None and provider not in ordering:
            ordering.append(provider)
    await _add_to_care_team(conn, link, ordering, principal, effects)
    # One read for every row the message touches (not one per OBX); later OBX with the same key see
    # the row as the earlier one left it.
    ids = [oid for oid, _, _ in planned]
    legacy = [legacy_result_id(sender, draft) for _, draft, _ in planned] if legacy_ids else []
    group = staged.current()
    if group is not None and group.holds(_staged_keys(ids)):  # an earlier message of the group made them
        await group.flush(conn)
    rows = _read_ahead_results(ids + legacy)
    if rows is None:
        rows = [dict(r) for r in (await conn.execute(_results_of(conn), {"ids": ids + legacy})).mappings()]
    current_of: dict[str, Record] = {str(r["objectId"]): r for r in rows}
    if legacy:
        planned = [
            (old if oid not in current_of and old in current_of else oid, draft, values)
            for (oid, draft, values), old in zip(planned, legacy, strict=True)
        ]
    fresh: dict[str, dict[str, Any]] = {}  # new rows not inserted yet, by objectId
    for oid, draft, values in planned:
        current = current_of.get(oid)
        if current is not None and current["patient"] != link.patient_id:
            raise Unappliable(
                [
                    Hl7Error(
                        ErrorCode.DUPLICATE_KEY_IDENTIFIER,
                        "OBX",
                        draft.obx_position,
                        3,
                        "this order/test/sub-id already belongs to another patient; nothing applied",
                    )
                ]
            )
        if current is None:
            current_of[oid] = fresh[oid] = _new_result(oid, values, link, message_id, effects, principal)
            continue
        if oid in fresh:  # the same key again in this message: the first row must exist before its update
            await _insert_fresh(conn, fresh, principal.actor_name, now=True)
        current_of[oid] = await _update_result(conn, current, values, draft, link, principal, message_id, effects)
    await _insert_fresh(conn, fresh, principal.actor_name)


async def _add_to_care_team(
    conn: AsyncConnection, link: PatientLink, providers: list[str], principal: Principal, effects: Effects
) -> None:
    """Append the active ordering providers missing from the patient's care team (see the module docstring)."""
    if not providers:
        return
    hit, team = prefetch.lookup(("team", link.patient_id))
    present = team if hit else {str(r.relatedId) for r in await conn.execute(_TEAM, {"patient": link.patient_id})}
    missing = [p for p in providers if p not in present]
    if not missing:
        return
    table = _PROVIDER.table
    active = {
        str(r.objectId)
        for r in await conn.execute(select(table.c.objectId).where(table.c.objectId.in_(missing) & table.c.isActive))
    }
    added = [p for p in missing if p in active]
    if not added:
        return
    current = await get_record(conn, _PATIENT, link.patient_id, keep_internal=True, for_update=True)
    if current is None:
        return
    team = [*current.get("careTeam", []), *added]
    record = await update_record(
        conn, _PATIENT, current, {"updatedAt": effects.at}, actor=principal.actor_name, joins={"careTeam": team}
    )
    prefetch.changed(("team", link.patient_id), ("patient", link.patient_id))
    await links.sync_care_team_role(conn, link.patient_id)
    effects.care_team.extend(added)
    effects.audit.append(
        AuditEntry(
            AuditAction.UPDATE,
            principal,
            "PatientProfile",
            link.patient_id,
            link,
            summary=f"ordering provider added to the care team (version {record['version']})",
            metadata={"careTeamAdded": added},
        )
    )


def _publish(
    effects: Effects, principal: Principal, oid: str, record: Mapping[str, Any], link: PatientLink, message_id: str
) -> None:
    effects.published.append(oid)
    effects.audit.append(
        AuditEntry(
            AuditAction.PUBLISH,
            principal,
            "LabResult",
            oid,
            link,
            summary=f"result {record['status']} (version {record['version']})",
            metadata={"version": record["version"], "status": record["status"], "message": message_id},
        )
    )


def _new_result(
    oid: str, values: dict[str, Any], link: PatientLink, message_id: str, effects: Effects, principal: Principal
) -> dict[str, Any]:
    """The full row of a new LabResult (version 1), inserted later with the others of the message."""
    ts = effects.at
    published = values["status"] in PUBLISHED_STATUSES
    values.update(
        objectId=oid,
        createdAt=ts,
        updatedAt=ts,
        patient=link.patient_id,
        visibility="shared",
        publishedAt=ts if published else None,
        sourceMessageId=message_id,
        version=1,
    )
    values.update(links.acl_columns("LabResult", values, link))
    row = {k: v for k, v in values.items() if k in _RESULT_COLUMNS}
    effects.created.append(oid)
    if published:
        _publish(effects, principal, oid, row, link, message_id)
    return row


def _version_data(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``_Version.data`` snapshot, as ``objects.write_version`` writes it (public fields, ISO dates).
    Only the date columns can hold a datetime, so only they are looked at."""
    data = {k: v for k, v in row.items() if k not in _PRIVATE_COLUMNS}
    for k in _DATE_COLUMNS:
        v = data.get(k)
        if isinstance(v, datetime):
            data[k] = utc_iso(v)
    return data


def _results_of(conn: AsyncConnection) -> Any:
    """The results lookup: on PostgreSQL it locks the rows it finds, as the message will change them."""
    return _RESULTS_LOCKED if conn.dialect.name == "postgresql" else _RESULTS


def _staged_keys(ids: list[str]) -> list[tuple[str, str]]:
    return [("LabResult", oid) for oid in ids]


async def _insert_fresh(
    conn: AsyncConnection, fresh: dict[str, dict[str, Any]], actor: str | None, *, now: bool = False
) -> None:
    """One multi-row INSERT for the new LabResults and one for their first versions; inside a
    group commit they are staged with the group's (``hl7v2.staged``), unless ``now``: the rows
    must then be in the store before the caller's next statement."""
    if not fresh:
        return
    rows = list(fresh.values())
    fresh.clear()
    prefetch.changed(*(("result", r["objectId"]) for r in rows))
    versions = [
        {
            "className": "LabResult",
            "objectId": r["objectId"],
            "version": 1,
            "data": _version_data(r),
            "deleted": False,
            "createdAt": r["updatedAt"],
            "actor": actor,
        }
        for r in rows
    ]
    group = staged.current()
    if group is None:
        await conn.execute(_INSERT_RESULTS, rows)
        await conn.execute(_INSERT_VERSIONS, versions)
        return
    group.add(_INSERT_RESULTS, rows, _staged_keys([r["objectId"] for r in rows]))
    group.add(_INSERT_VERSIONS, versions)
    if now:
        await group.flush(conn)


async def _update_result(
    conn: AsyncConnection,
    current: Record,
    values: dict[str, Any],
    draft: ResultDraft,
    link: PatientLink,
    principal: Principal,
    message_id: str,
    effects: Effects,
) -> Record:
    """Version the row, or leave it (older or identical); returns the row as it now stands."""
    oid = str(current["objectId"])
    if not replaces(current, values["status"], draft.effective_at, draft.reported_at):
        effects.superseded.append(oid)
        return current
    changes = {k: v for k, v in values.items() if current.get(k) != v}
    if not changes:
        effects.unchanged.append(oid)
        return current
    # Every accepted change to a final/corrected/amended result is a new published version: the
    # patient sees it from now on, so it gets its own publishedAt and AuditLog entry (a second C too).
    republish = values["status"] in PUBLISHED_STATUSES
    changes.update(updatedAt=effects.at, sourceMessageId=message_id)
    if republish:
        changes["publishedAt"] = changes["updatedAt"]
    changes.update(links.acl_columns("LabResult", {**current, **changes}, link))
    record = await update_record(conn, _RESULT, current, changes, actor=principal.actor_name)
    prefetch.changed(("result", oid))
    effects.updated.append(oid)
    if republish:
        _publish(effects, principal, oid, record, link, message_id)
    return {**current, **changes, "version": record["version"]}


# ---- reading a group's lookups ahead (``hl7v2.prefetch``) ------------------------------------


def _read_ahead_patients(mrn: str) -> list[dict[str, Any]] | None:
    """The profiles with ``mrn`` as read ahead, or None (read the store): also when a job of the
    group has changed one of them (a care team added) since."""
    reads = prefetch.current()
    if reads is None:
        return None
    hit, rows = reads.lookup(("mrn", mrn))
    if not hit or any(reads.is_changed(("patient", row["objectId"])) for row in rows):
        return None
    return [dict(row) for row in rows]


def _read_ahead_results(ids: list[str]) -> list[dict[str, Any]] | None:
    """The stored rows of ``ids`` as read ahead, or None when any of them was not read ahead or has
    been written by the group since (read the store)."""
    reads = prefetch.current()
    if reads is None:
        return None
    rows = []
    for oid in ids:
        hit, row = reads.lookup(("result", oid))
        if not hit:
            return None
        if row is not None:
            rows.append(dict(row))
    return rows


async def read_ahead(conn: AsyncConnection, reads: prefetch.GroupReads, mapped: list[Any], *, legacy_ids: bool) -> None:
    """Read what the ``apply_patient``/``apply_results`` of these messages will look up: profiles by
    MRN and their care teams, ordering providers, the results (locked on PostgreSQL, as their
    lookup locks them). Keys that find nothing are recorded as such. With ``legacy_ids`` the
    results are not read ahead (their lookup also asks for pre-clustering ids)."""
    mrns = sorted({m.patient.mrn for m in mapped if m.patient is not None and m.patient.mrn})
    if mrns:
        by_mrn: dict[str, list[dict[str, Any]]] = {mrn: [] for mrn in mrns}
        by_mrns = _PATIENTS_BY_MRNS[conn.dialect.name]
        for person in (await conn.execute(by_mrns, {"mrns": mrns})).mappings():
            by_mrn[str(person["medicalRecordNumber"])].append(dict(person))
        for mrn, rows in by_mrn.items():
            reads.put(("mrn", mrn), rows)
        patients = sorted({str(row["objectId"]) for rows in by_mrn.values() for row in rows})
        if patients:
            teams: dict[str, set[str]] = {p: set() for p in patients}
            for member in await conn.execute(_TEAMS_OF[conn.dialect.name], {"patients": patients}):
                teams[str(member.owningId)].add(str(member.relatedId))
            for patient, team in teams.items():
                reads.put(("team", patient), team)
    oru = [m for m in mapped if hasattr(m, "results")]
    lookups = [named for m in oru for p in m.providers if (named := _provider_lookup(p)) is not None]
    for by, by_keys in _PROVIDERS_BY.items():
        keys = sorted({key for _, kind, key in lookups if kind == by})
        if not keys:
            continue
        known: dict[str, str | None] = dict.fromkeys(keys)
        for doctor in await conn.execute(by_keys[conn.dialect.name], {"keys": keys}):
            known[str(doctor.key)] = known[str(doctor.key)] or str(doctor.objectId)
        for key, oid in known.items():
            reads.put(("provider", by, key), oid)
    if legacy_ids or not oru:
        return
    ids = sorted({result_id(m.header.sending_facility, d) for m in oru for d in m.results if d.order_id})
    if not ids:
        return
    stored = {str(r["objectId"]): dict(r) for r in (await conn.execute(_results_of(conn), {"ids": ids})).mappings()}
    for oid in ids:
        reads.put(("result", oid), stored.get(oid))
