"""Reads and writes of Parse classes under the one policy, with audit, for every door.

Handlers call these methods with decoded values and a ``Principal``; the methods ask
``gateway.policy`` (CLP, ACL, field rules), call the store, keep derived state
(care-team roles, ACLs) in step and write the AuditLog entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.audit import AuditAction, AuditEntry, append
from gateway.audit.reads import ReadAuditor
from gateway.auth import roles as role_store
from gateway.auth.passwords import Passwords
from gateway.errors import Forbidden, Invalid, NotFound, ParseCode
from gateway.policy import clp as clp_mod
from gateway.policy.acl import allows
from gateway.policy.clp import Op
from gateway.policy.fields import Relation, check_writable, hidden_fields, relation_of
from gateway.policy.filters import read_filter, readable
from gateway.policy.principal import Principal, Role
from gateway.policy.rules import PLAN_TRANSITIONS, PUBLISHED_STATUSES, PatientLink, PlanStatus
from gateway.records import links
from gateway.records.ops import FieldOp, OpKind, apply_ops
from gateway.settings import Settings
from gateway.store import hotpath
from gateway.store.classes import CLASSES, ClassSpec, FieldType
from gateway.store.database import Database
from gateway.store.ids import new_object_id
from gateway.store.models import SchemaCLP, table_of
from gateway.store.objects import (
    Record,
    delete_record,
    get_record,
    insert_record,
    load_join_arrays,
    now,
    record_from_row,
    update_record,
)
from gateway.store.statements import Built


@dataclass(slots=True)
class Expanded:
    """A pointer replaced by the object it points to (Parse ``include``)."""

    class_name: str
    record: Record
    hidden: frozenset[str] = frozenset()


@dataclass(slots=True)
class WriteResult:
    record: Record
    op_results: dict[str, Any] = field(default_factory=dict)


class Records:
    def __init__(self, db: Database, settings: Settings, passwords: Passwords) -> None:
        self.db = db
        self.settings = settings
        self.passwords = passwords
        self._clp_cache: dict[str, dict[str, Any]] | None = None
        self._effective: dict[str, dict[str, Any]] = {}
        self.reads = ReadAuditor(db, enabled=settings.audit_reads)
        """Read auditing for every door (``gateway.audit.reads``: classes, entry shape, group commit)."""

    # ------------------------------------------------------------ class permissions

    def spec(self, class_name: str, principal: Principal) -> ClassSpec:
        spec = CLASSES.get(class_name)
        if spec is None:
            if principal.is_master:
                raise Invalid(f"Class {class_name} does not exist.", parse_code=ParseCode.INVALID_CLASS_NAME)
            raise Forbidden(f"This user is not allowed to access non-existent class: {class_name}")
        return spec

    async def stored_clps(self, conn: AsyncConnection) -> dict[str, dict[str, Any]]:
        if self._clp_cache is None:
            rows = await conn.execute(select(table_of(SchemaCLP)))
            self._clp_cache = {r.className: dict(r.classLevelPermissions) for r in rows}
        return self._clp_cache

    def invalidate_clps(self) -> None:
        """Called after ``/schemas`` changes a CLP (single process; a multi-worker setup re-reads on restart)."""
        self._clp_cache = None
        self._effective.clear()

    async def clp(self, conn: AsyncConnection, class_name: str) -> dict[str, Any]:
        cached = self._effective.get(class_name)
        if cached is None:
            stored = (await self.stored_clps(conn)).get(class_name)
            cached = self._effective[class_name] = clp_mod.effective_clp(class_name, stored)
        return cached

    async def preload_clps(self) -> None:
        if self._clp_cache is None:
            async with self.db.read() as conn:
                await self.stored_clps(conn)

    def check_loaded(self, class_name: str, op: Op, principal: Principal) -> None:
        """CLP check without I/O; ``preload_clps`` must have run (sub-query compilation is synchronous)."""
        assert self._clp_cache is not None
        cached = self._effective.get(class_name)
        if cached is None:
            cached = self._effective[class_name] = clp_mod.effective_clp(class_name, self._clp_cache.get(class_name))
        clp_mod.check(class_name, op, principal, cached)

    async def check(self, conn: AsyncConnection, class_name: str, op: Op, principal: Principal) -> None:
        clp_mod.check(class_name, op, principal, await self.clp(conn, class_name))

    def hidden_fields(self, spec: ClassSpec, principal: Principal, record: Mapping[str, Any]) -> frozenset[str]:
        return hidden_fields(spec.name, principal, record)

    # ------------------------------------------------------------ reads

    async def get(
        self,
        principal: Principal,
        class_name: str,
        object_id: str,
        *,
        include: Mapping[str, Any] | None = None,
        audit: bool = True,
    ) -> Record:
        """One record the caller may read, with ``include`` pointers expanded; audited as a read
        unless ``audit`` is False, which a caller passes only when it reads in order to write
        (the write's own entry covers it)."""
        spec = self.spec(class_name, principal)
        async with self.db.read() as conn:
            await self.check(conn, class_name, Op.GET, principal)
            row = await hotpath.row_by_id(conn, spec, object_id)
            if row is None or not readable(spec, principal, row):
                raise NotFound()
            record = record_from_row(row)
            await load_join_arrays(conn, spec, [record])
            if include:
                await self.expand(conn, principal, spec, [record], include)
        if audit:
            await self.reads.read(
                principal, class_name, record, included=included_records([record]) if include else [], db=self.db
            )
        return record

    async def audit_read(
        self, principal: Principal, class_name: str, record: Mapping[str, Any], *, interaction: str | None = None
    ) -> None:
        """For reads that do not go through ``get`` (FHIR vread/history): same rules, same entry."""
        await self.reads.read(principal, class_name, record, interaction=interaction, db=self.db)

    async def audit_search(
        self,
        principal: Principal,
        class_name: str,
        records: Sequence[Mapping[str, Any]],
        *,
        query: str | None = None,
        included: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> None:
        """For searches that do not go through ``find_records`` (the FHIR door's keyset search)."""
        await self.reads.search(principal, class_name, records, query=query, included=included, db=self.db)

    def filter_for(self, spec: ClassSpec, principal: Principal) -> ColumnElement[bool]:
        return read_filter(spec, principal, self.db.dialect)

    async def expand(
        self,
        conn: AsyncConnection,
        principal: Principal,
        spec: ClassSpec,
        records: Sequence[Record],
        tree: Mapping[str, Any],
    ) -> None:
        """Replace pointers named by ``tree`` with the objects, each filtered by its own CLP and ACL."""
        for name, subtree in tree.items():
            fspec = spec.fields.get(name)
            if fspec is None or fspec.target is None or fspec.type not in (FieldType.POINTER, FieldType.ARRAY):
                continue
            target = CLASSES.get(fspec.target)
            if target is None:
                continue
            try:
                await self.check(conn, target.name, Op.GET, principal)
            except (Forbidden, NotFound):
                continue
            ids: set[str] = set()
            for rec in records:
                value = rec.get(name)
                if isinstance(value, str):
                    ids.add(value)
                elif isinstance(value, list):
                    ids.update(v for v in value if isinstance(v, str))
            if not ids:
                continue
            rows = await hotpath.rows_by_ids(conn, target, sorted(ids))
            found = [record_from_row(r) for r in rows if readable(target, principal, r)]
            await load_join_arrays(conn, target, found)
            if subtree:
                await self.expand(conn, principal, target, found, subtree)
            # One Expanded per object, however many records point at it (a page's common provider).
            by_id = {r["objectId"]: Expanded(target.name, r, self.hidden_fields(target, principal, r)) for r in found}
            for rec in records:
                value = rec.get(name)
                if isinstance(value, str):
                    if value in by_id:
                        rec[name] = by_id[value]
                elif isinstance(value, list):
                    rec[name] = [by_id[v] if isinstance(v, str) and v in by_id else v for v in value]

    # ------------------------------------------------------------ writes

    async def create(self, principal: Principal, class_name: str, ops: Sequence[FieldOp]) -> WriteResult:
        spec = self.spec(class_name, principal)
        if class_name == "_User":
            raise Forbidden(
                "Users are created by signing up (POST /parse/users).",
                parse_code=ParseCode.MUST_CREATE_USER_THROUGH_SIGNUP,
            )
        if class_name == "_Session":
            raise Forbidden("Sessions are created by logging in.")
        if class_name == "Message" and not principal.is_master:
            # The sender is always the caller; naming yourself is accepted, anyone else is refused below.
            ops = [op for op in ops if not (op.field == "from" and op.value == principal.user_id)]
        async with self._audited_write(principal, AuditAction.CREATE, class_name) as conn:
            await self.check(conn, class_name, Op.CREATE, principal)
            applied = apply_ops(spec, None, [op for op in ops if op.kind is not OpKind.ADD_RELATION])
            values: dict[str, Any] = dict(applied.columns)
            values.update({k: v for k, v in applied.joins.items()})
            link = await self._target_link(conn, principal, class_name, values)
            relation = relation_of(principal, class_name, values, link)
            if relation is Relation.OTHER and class_name in ("LabResult", "TreatmentPlan", "Appointment", "Message"):
                raise NotFound()
            check_writable(class_name, {op.field for op in ops}, relation, creating=True)
            await self._server_defaults(conn, principal, class_name, values, link)
            self._validate(spec, values)
            ts = now()
            values.update(objectId=new_object_id(), createdAt=ts, updatedAt=ts)
            if spec.versioned:
                values["version"] = 1
            if class_name == "PatientProfile":
                link = PatientLink(values["objectId"], values.get("user"))
            values.update(links.acl_columns(class_name, values, link))
            joins = {
                k: values.pop(k) for k in list(values) if spec.fields.get(k) is not None and spec.fields[k].is_join
            }
            record = await insert_record(conn, spec, values, actor=principal.actor_name, joins=joins)
            await self._relations(conn, spec, record["objectId"], ops)
            await self._after_write(conn, class_name, None, record)
            await append(conn, AuditEntry(AuditAction.CREATE, principal, class_name, record["objectId"], link))
        return WriteResult(record)

    async def update(
        self, principal: Principal, class_name: str, object_id: str, ops: Sequence[FieldOp]
    ) -> WriteResult:
        spec = self.spec(class_name, principal)
        if class_name == "_Session":
            raise Forbidden("Sessions cannot be edited.")
        async with self._audited_write(principal, AuditAction.UPDATE, class_name, object_id) as conn:
            await self.check(conn, class_name, Op.UPDATE, principal)
            current = await self._writable(conn, principal, spec, object_id)
            link = await links.link_for(conn, class_name, current)
            relation = relation_of(principal, class_name, current, link)
            check_writable(class_name, {op.field for op in ops}, relation, creating=False)
            plain = [op for op in ops if op.field != "password"]
            applied = apply_ops(spec, current, plain)
            changes: dict[str, Any] = dict(applied.columns)
            if class_name == "_User":
                await self._user_changes(principal, ops, changes)
            merged = {**current, **changes, **applied.joins}
            self._check_transition(class_name, current, merged, relation)
            self._auto_fields(class_name, current, merged, changes, principal)
            self._validate(spec, merged)
            new_link = await links.link_for(conn, class_name, merged)
            changes["updatedAt"] = now()
            merged["updatedAt"] = changes["updatedAt"]
            changes.update(links.acl_columns(class_name, merged, new_link))
            record = await update_record(
                conn, spec, current, changes, actor=principal.actor_name, joins=applied.joins or None
            )
            await self._relations(conn, spec, object_id, ops)
            await self._after_write(conn, class_name, current, record)
            await append(
                conn,
                AuditEntry(
                    AuditAction.UPDATE,
                    principal,
                    class_name,
                    object_id,
                    new_link,
                    metadata={"fields": sorted({op.field for op in ops})},
                ),
            )
        return WriteResult(record, applied.op_results)

    async def delete(self, principal: Principal, class_name: str, object_id: str) -> None:
        spec = self.spec(class_name, principal)
        async with self._audited_write(principal, AuditAction.DELETE, class_name, object_id) as conn:
            await self.check(conn, class_name, Op.DELETE, principal)
            current = await self._writable(conn, principal, spec, object_id)
            link = await links.link_for(conn, class_name, current)
            await delete_record(conn, spec, current, actor=principal.actor_name)
            await append(conn, AuditEntry(AuditAction.DELETE, principal, class_name, object_id, link))

    # ------------------------------------------------------------ helpers

    @asynccontextmanager
    async def _audited_write(
        self, principal: Principal, action: AuditAction, class_name: str, object_id: str | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """The write transaction; a write the policy refuses (``Forbidden``: CLP, an immutable class
        such as AuditLog, a field or transition rule) is rolled back and then recorded as ``denied``
        in a transaction of its own, so refused attempts are in the trail too (catalog G01/G02)."""
        try:
            async with self.db.write() as conn:
                yield conn
        except Forbidden as exc:
            await self.record_refusal(principal, action, class_name, object_id, exc.message)
            raise

    async def record_refusal(
        self, principal: Principal, action: AuditAction, class_name: str, object_id: str | None, reason: str
    ) -> None:
        """A refused write attempt as a ``denied`` entry, in a transaction of its own (catalog G02:
        "attempts themselves audited"). Doors call it for refusals that happen before a write
        reaches ``Records`` (a read-only FHIR type, a schema change); ``_audited_write`` for the rest."""
        async with self.db.write() as conn:
            entry = AuditEntry(action, principal, class_name, object_id, summary=reason, outcome="denied")
            await append(conn, entry)

    async def _writable(self, conn: AsyncConnection, principal: Principal, spec: ClassSpec, object_id: str) -> Record:
        """Parse answers 101 both for an invisible object and for one the caller may read but not write."""
        current = await get_record(
            conn, spec, object_id, self.filter_for(spec, principal), keep_internal=True, for_update=True
        )
        if current is None or not (principal.is_master or allows(current.get("_wperm"), principal.perms)):
            raise NotFound()
        return {k: v for k, v in current.items() if not k.startswith("_") or k in ("_hashed_password",)}

    async def _target_link(
        self, conn: AsyncConnection, principal: Principal, class_name: str, values: Mapping[str, Any]
    ) -> PatientLink | None:
        if class_name not in ("LabResult", "TreatmentPlan", "Message", "Appointment"):
            return None
        patient_id = values.get("patient")
        if not patient_id:
            raise Invalid("patient is required.", parse_code=ParseCode.VALIDATION_ERROR)
        link = await links.patient_link(conn, str(patient_id))
        if link is None:
            raise NotFound()
        return link

    async def _server_defaults(
        self,
        conn: AsyncConnection,
        principal: Principal,
        class_name: str,
        values: dict[str, Any],
        link: PatientLink | None,
    ) -> None:
        ts = now()
        if class_name == "TreatmentPlan":
            values.setdefault("status", PlanStatus.DRAFT.value)
            if principal.user_id:
                values["createdBy"] = principal.user_id
            if not values.get("provider"):
                values["provider"] = await links.provider_of_user(conn, principal.user_id)
            if values["status"] == PlanStatus.ACTIVE:
                values["approvedAt"] = ts
        elif class_name == "Message":
            if principal.user_id:
                values["from"] = principal.user_id
            values.setdefault("sentAt", ts)
            values.setdefault("status", "sent")
            values.setdefault("isRead", False)
            if not values.get("conversationId"):
                values["conversationId"] = new_object_id()
            await self._check_recipient(conn, values, link)
        elif class_name == "LabResult":
            values.setdefault("status", "preliminary")
            values.setdefault("visibility", "shared")
            if values["status"] in PUBLISHED_STATUSES and not values.get("publishedAt"):
                values["publishedAt"] = ts
        elif class_name == "PatientProfile" and "careTeam" not in values and principal.is_provider:
            own = await links.provider_of_user(conn, principal.user_id)
            if own:
                values["careTeam"] = [own]
        elif class_name == "Appointment":
            values.setdefault("status", "scheduled")

    async def _check_recipient(
        self, conn: AsyncConnection, values: Mapping[str, Any], link: PatientLink | None
    ) -> None:
        """A message goes to the patient or to a member of the patient's care team, nobody else."""
        to = values.get("to")
        if to is None or link is None:
            return
        allowed = set(await role_store.role_user_ids(conn, f"careTeam_{link.patient_id}"))
        if link.patient_user_id:
            allowed.add(link.patient_user_id)
        if to not in allowed:
            raise Forbidden("The recipient is not part of this patient's care.")

    def _validate(self, spec: ClassSpec, values: Mapping[str, Any]) -> None:
        for name, fspec in spec.fields.items():
            if fspec.required and values.get(name) in (None, ""):
                raise Invalid(f"{name} is required.", parse_code=ParseCode.VALIDATION_ERROR)

    def _check_transition(
        self, class_name: str, current: Mapping[str, Any], merged: Mapping[str, Any], relation: Relation
    ) -> None:
        if class_name == "TreatmentPlan":
            old, new = PlanStatus(current["status"]), PlanStatus(merged["status"])
            if new not in PLAN_TRANSITIONS[old]:
                raise Invalid(f"A {old.value} plan cannot become {new.value}.", parse_code=ParseCode.VALIDATION_ERROR)
            if relation is Relation.PATIENT and old not in (PlanStatus.ACTIVE, PlanStatus.COMPLETED):
                raise Invalid("Only an active plan can be acknowledged.", parse_code=ParseCode.VALIDATION_ERROR)
        if class_name == "Appointment" and relation is Relation.PATIENT and merged.get("status") != "canceled":
            raise Forbidden("A patient may only cancel an appointment.")

    def _auto_fields(
        self,
        class_name: str,
        current: Mapping[str, Any],
        merged: dict[str, Any],
        changes: dict[str, Any],
        principal: Principal,
    ) -> None:
        ts = now()
        if class_name == "LabResult" and merged.get("status") in PUBLISHED_STATUSES and not merged.get("publishedAt"):
            merged["publishedAt"] = changes["publishedAt"] = ts
        if class_name == "TreatmentPlan":
            if merged["status"] == PlanStatus.ACTIVE and current["status"] == PlanStatus.DRAFT:
                merged["approvedAt"] = changes["approvedAt"] = ts
            if "acknowledgedAt" in changes and changes["acknowledgedAt"] is not None:
                merged["acknowledgedAt"] = changes["acknowledgedAt"] = current.get("acknowledgedAt") or ts
        if class_name == "Message" and merged.get("isRead") and not current.get("isRead"):
            merged["readAt"] = changes["readAt"] = merged.get("readAt") or ts
            merged["status"] = changes["status"] = "read"

    async def _user_changes(self, principal: Principal, ops: Sequence[FieldOp], changes: dict[str, Any]) -> None:
        for op in ops:
            if op.field == "password":
                changes["_hashed_password"] = await self.passwords.hash(str(op.value))

    async def _relations(self, conn: AsyncConnection, spec: ClassSpec, object_id: str, ops: Sequence[FieldOp]) -> None:
        for op in ops:
            if op.kind not in (OpKind.ADD_RELATION, OpKind.REMOVE_RELATION):
                continue
            join = spec.fields[op.field].join
            assert join is not None
            from sqlalchemy import delete, insert

            for rid in op.value:
                await conn.execute(delete(join.table).where((join.owning == object_id) & (join.related == rid)))
                if op.kind is OpKind.ADD_RELATION:
                    await conn.execute(insert(join.table), {"owningId": object_id, "relatedId": rid})

    async def _after_write(
        self, conn: AsyncConnection, class_name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]
    ) -> None:
        """Keep roles and ACLs in step with care teams and user links."""
        if class_name == "PatientProfile":
            if before is None or before.get("careTeam") != after.get("careTeam"):
                await links.sync_care_team_role(conn, after["objectId"])
            if after.get("user") and (before is None or before.get("user") != after.get("user")):
                await links.ensure_built_in_role(conn, Role.PATIENT, after["user"])
                await links.resync_patient_acls(conn, after["objectId"])
        elif class_name == "ProviderProfile":
            changed = (
                before is None
                or before.get("user") != after.get("user")
                or before.get("isActive") != after.get("isActive")
            )
            if after.get("user") and changed:
                await links.ensure_built_in_role(conn, Role.PROVIDER, after["user"])
            if changed and before is not None:
                await links.sync_provider_teams(conn, after["objectId"])


@dataclass(slots=True)
class FindResult:
    records: list[Record]
    count: int | None = None


async def find_records(
    records: Records,
    principal: Principal,
    class_name: str,
    *,
    where: ColumnElement[bool] | None = None,
    order: Sequence[ColumnElement[Any]] = (),
    limit: int,
    skip: int,
    count: bool,
    include: Mapping[str, Any] | None = None,
    op: Op = Op.FIND,
    query: str | None = None,
    built: Built | None = None,
) -> FindResult:
    """One page of the rows the caller may read (and, when asked, how many there are in all).

    ``built`` is the page's statement when the caller remembered it (``gateway.store.statements``;
    made by ``find_statement`` from the same ``where``/``order``), so the policy predicate is
    in it either way. Audited as one search (``query`` is the caller's query as they sent
    it); a count-only request returns no records and writes no entry."""
    from gateway.store.objects import count_records, select_records

    spec = records.spec(class_name, principal)
    if built is None:
        built = find_statement(records, principal, spec, where, order, limit, skip)
    async with records.db.read() as conn:
        await records.check(conn, class_name, Op.COUNT if count and limit == 0 else op, principal)
        rows: list[Record] = []
        if limit > 0:
            rows = await select_records(conn, spec, built=built)
            if include:
                await records.expand(conn, principal, spec, rows, include)
        total = await count_records(conn, spec, built.cond) if count else None
    if limit > 0 and records.reads.enabled:
        await records.audit_search(
            principal, class_name, rows, query=query, included=included_records(rows) if include else []
        )
    return FindResult(rows, total)


def find_statement(
    records: Records,
    principal: Principal,
    spec: ClassSpec,
    where: ColumnElement[bool] | None,
    order: Sequence[ColumnElement[Any]],
    limit: int,
    skip: int,
) -> Built:
    """The page statement of ``find_records``: the caller's query ANDed with the read policy."""
    from gateway.store.objects import select_statement

    cond = records.filter_for(spec, principal)
    if where is not None:
        cond = and_(cond, where)
    return Built(select_statement(spec, cond, order=order, limit=limit, offset=skip), cond=cond)


def included_records(records: Sequence[Record]) -> list[tuple[str, Record]]:
    """(class, record) for every object ``include`` expanded into ``records``, at any depth.

    Only pointer values and pointer arrays can hold an ``Expanded``; checking ``type`` per
    value keeps this a single pass over the page (it runs on every audited list request)."""
    out: list[tuple[str, Record]] = []

    def visit(record: Mapping[str, Any]) -> None:
        for value in record.values():
            kind = type(value)
            if kind is Expanded:
                out.append((value.class_name, value.record))
                visit(value.record)
            elif kind is list:
                for item in value:
                    if type(item) is Expanded:
                        out.append((item.class_name, item.record))
                        visit(item.record)

    for rec in records:
        visit(rec)
    return out
