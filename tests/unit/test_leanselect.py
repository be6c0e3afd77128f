"""leanselect must return exactly what SQLAlchemy's own ``execute`` returns for the same statement.

A differential test on the seeded demo store: each statement runs both ways on SQLite
(types that need bind or result processing: dates, JSON, booleans, NULLs, expanding IN,
sub-selects from the ACL filter) and the rows must be equal, value for value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import and_, func, select

from gateway.policy.filters import read_filter
from gateway.policy.principal import Principal, PrincipalKind
from gateway.store.classes import CLASSES
from gateway.store.database import Database, InlineConnection


def _statements(alice: str) -> list[Any]:
    labs = CLASSES["LabResult"]
    patients = CLASSES["PatientProfile"]
    c = labs.table.c
    principal = Principal(PrincipalKind.USER, user_id="u1", roles=frozenset({"patient", f"careTeam_{alice}"}))
    return [
        select(*labs.table.columns),
        select(*labs.table.columns).where(c.effectiveAt <= datetime(2100, 1, 1, tzinfo=UTC)).order_by(c.effectiveAt),
        select(*labs.table.columns).where(c.effectiveAt > datetime(1900, 1, 1, tzinfo=UTC)).limit(3).offset(1),
        select(c.objectId, c.ACL, c._rperm).where(c.status.in_(["final", "corrected", "nope"])),
        select(c.objectId).where(and_(c.objectId.in_(["a", "b"]), c.status.is_(None))),
        select(*patients.table.columns).where(patients.table.c.isActive.is_(True)),
        select(func.count()).select_from(labs.table).where(read_filter(labs, principal, "sqlite")),
        select(c.objectId, c.publishedAt)
        .where(read_filter(labs, principal, "sqlite"))
        .order_by(c.publishedAt.desc())
        .limit(20),
    ]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_fetch_matches_sqlalchemy_execute(demo_database: tuple[str, dict[str, str]]) -> None:
    url, _ = demo_database
    db = Database(url)
    patients = CLASSES["PatientProfile"]
    try:
        async with db.read() as conn:
            assert isinstance(conn, InlineConnection)
            alice = (
                (await conn.execute(select(patients.pk).where(patients.table.c.user.is_not(None)))).scalars().first()
            )
            assert alice
            compared = 0
            for stmt in _statements(alice):
                for _ in range(2):  # the second run takes the cached plan with new bound values
                    expected = [dict(r) for r in (await conn.execute(stmt)).mappings()]
                    assert conn.fetch_dicts(stmt) == expected, str(stmt)
                    assert [tuple(d.values()) for d in expected] == list(conn.fetch_tuples(stmt))
                    compared += len(expected)
            assert compared > 0
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_cached_plan_binds_each_runs_own_values(demo_database: tuple[str, dict[str, str]]) -> None:
    """Same statement shape, different values: the cache must not replay the first run's values."""
    url, _ = demo_database
    db = Database(url)
    labs = CLASSES["LabResult"]
    c = labs.table.c
    try:
        async with db.read() as conn:
            assert isinstance(conn, InlineConnection)
            everything = conn.fetch_dicts(select(c.objectId).where(c.effectiveAt < datetime(2100, 1, 1, tzinfo=UTC)))
            nothing = conn.fetch_dicts(select(c.objectId).where(c.effectiveAt < datetime(1900, 1, 1, tzinfo=UTC)))
            assert everything and nothing == []
            some = sorted(r["objectId"] for r in everything)[:2]
            assert (
                sorted(r["objectId"] for r in conn.fetch_dicts(select(c.objectId).where(c.objectId.in_(some)))) == some
            )
            one = conn.fetch_dicts(select(c.objectId).where(c.objectId.in_(some[:1])))
            assert [r["objectId"] for r in one] == some[:1]
            # Dates are bound through the column type (UTC text on SQLite): an aware datetime
            # passed raw would compare as "...+00:00" text and miss the equal row.
            latest = conn.fetch_dicts(select(c.objectId, c.effectiveAt).order_by(c.effectiveAt.desc()).limit(1))[0]
            at_most = conn.fetch_dicts(select(c.objectId).where(c.effectiveAt <= latest["effectiveAt"]))
            assert latest["objectId"] in {r["objectId"] for r in at_most}
            equal = conn.fetch_dicts(select(c.objectId).where(c.effectiveAt == latest["effectiveAt"]))
            assert latest["objectId"] in {r["objectId"] for r in equal}
    finally:
        await db.dispose()


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql"])
def test_remembered_in_list_expansions_bind_as_sqlalchemy_expands(dialect_name: str) -> None:
    """``bound_statement`` remembers the expanded SQL per list lengths (``_expansion``): for every
    run, first or remembered, the SQL and positional values must be SQLAlchemy's own expansion of
    that run's values, with two IN lists and plain parameters (one processed, a datetime) between
    them, lists of the same length but other values, and an empty list."""
    from sqlalchemy import bindparam
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.dialects.postgresql import asyncpg

    from gateway.store import leanselect

    c = CLASSES["LabResult"].table.c
    stmt = select(c.objectId).where(
        c.objectId.in_(bindparam("ids", expanding=True)),
        c.patient == bindparam("p"),
        c.effectiveAt > bindparam("t"),
        c.status.in_(bindparam("st", expanding=True)),
    )
    dialect = sqlite.dialect() if dialect_name == "sqlite" else asyncpg.dialect()
    key = stmt._generate_cache_key()
    assert key is not None
    compiled = stmt.compile(dialect=dialect, cache_key=key)
    runs = [(3, 1, "a"), (0, 2, "b"), (3, 1, "c"), (12, 2, "d"), (3, 1, "e"), (0, 2, "f")]
    for n, m, tag in runs:
        params = {
            "ids": [f"{tag}{k}" for k in range(n)],
            "p": f"patient-{tag}",
            "t": datetime(2026, 1, len(tag), tzinfo=UTC),
            "st": ["final", tag][:m],
        }
        values = compiled.construct_params(
            params, extracted_parameters=key.bindparams, escape_names=False, _no_postcompile=True
        )
        state = compiled._process_parameters_for_postcompile(values)
        processors = {**compiled._bind_processors, **state.processors}
        expected = [
            processors[k](state.parameters[k]) if processors.get(k) else state.parameters[k]
            for k in state.positiontup or ()
        ]
        assert leanselect.bound_statement(compiled, params, key.bindparams) == (state.statement, expected), (n, m)
