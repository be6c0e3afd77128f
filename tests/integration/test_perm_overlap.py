"""The SQL read filter's ACL test (``perm_overlap``) agrees with the Python one (``acl.allows``).

On SQLite a caller with few perms is checked by a quoted-substring search of the stored
``_rperm`` text, with many by ``json_each``; PostgreSQL uses JSONB ``?|``. Rows are stored
in both JSON forms a store can hold (the store's msgspec codec, which keeps UTF-8, and the
standard library's, which escapes it), with keys that are prefixes, suffixes and near
misses of each other, so a substring that is not a whole element would show up as a
wrongly readable row.
"""

from __future__ import annotations

import json
from itertools import combinations

import msgspec
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.policy.acl import allows, validate_acl
from gateway.policy.filters import perm_overlap

KEYS = [
    "*",
    "AaewqH1Z7s",
    "AaewqH1Z7",
    "aewqH1Z7s",
    "role:admin",
    "role:admin2",
    "role:admi",
    "role:careTeam_GxL7ScNHQz",
    "role:careTeam_GxL7ScNHQ",
    "role:café",
    "role:caf",
    "role:night shift",
    "role:night-shift",
]
for key in KEYS:
    validate_acl({key: {"read": True}})  # every key here is one a client could store


async def _table(engine: AsyncEngine) -> tuple[Table, list[tuple[int, list[str]]]]:
    sqlite = engine.dialect.name == "sqlite"
    meta = MetaData()
    table = Table(
        "perm_rows", meta, Column("id", Integer, primary_key=True), Column("_rperm", String if sqlite else JSONB)
    )
    rows = [(i, list(c)) for i, c in enumerate(c for n in (0, 1, 2, 3) for c in combinations(KEYS, n))]
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
        values = [
            {"id": i, "_rperm": (msgspec.json.encode(p).decode() if i % 2 else json.dumps(p)) if sqlite else p}
            for i, p in rows
        ]
        await conn.execute(insert(table), values)
    return table, rows


PERM_SETS = (
    [frozenset({k}) for k in KEYS]
    + [frozenset(c) for c in combinations(KEYS, 2)]
    + [frozenset(KEYS[i : i + n]) for n in (8, 9, 12) for i in range(len(KEYS) - n + 1)]
)


async def test_sql_overlap_matches_python(engine: AsyncEngine) -> None:
    table, rows = await _table(engine)
    dialect = engine.dialect.name
    async with engine.connect() as conn:
        for perms in PERM_SETS:
            cond = perm_overlap(table.c._rperm, perms, dialect)
            got = {r[0] for r in await conn.execute(select(table.c.id).where(cond))}
            want = {i for i, stored in rows if allows(stored, perms)}
            assert got == want, (sorted(perms), sorted(got ^ want)[:5])
    assert len(rows) > 300 and len(PERM_SETS) > 90
