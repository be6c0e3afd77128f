"""Differential test: the SQL compiler and the in-memory evaluator agree row for row.

A small seeded dataset goes into the real database (SQLite, and PostgreSQL when
GATEWAY_TEST_DATABASE_URL is set); hypothesis generates ``where`` documents over
every operator, and for each one ``SELECT objectId WHERE compile(...)`` must equal
the ids ``matches(...)`` accepts. Hypothesis runs in a worker thread and sends each
query to the test's event loop, so the async engine fixture can be used as is.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import ColumnElement, event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.native import query
from gateway.native.query import ast
from gateway.store import models
from gateway.store.classes import CLASSES, ClassSpec

LAB = CLASSES["LabResult"]
PATIENT = CLASSES["PatientProfile"]
PROVIDER = CLASSES["ProviderProfile"]
LIMITS = query.QueryLimits()

STRINGS = ["", "a", "A", "ab", "a%", "%", "_", "a_b", "'", '"', "\\", "é", "É", "a\nb", "b", "ba", "x y"]
NUMBERS: list[int | float] = [0, 1, 2, 2.5, -1, 3]
BASE = datetime(2024, 1, 1, tzinfo=UTC)
DATES = [BASE + timedelta(days=d, hours=h) for d in range(4) for h in (0, 12)]
PROVIDER_IDS = ["prov0", "prov1", "prov2"]
PATIENT_IDS = ["pat0", "pat1", "pat2", "pat3"]
HIDDEN = {"PatientProfile": "pat3", "ProviderProfile": "prov2", "LabResult": "lab0"}
"""One row per class the caller "cannot read": sub-queries must never see it."""
REGEXES = [
    "a",
    "^a",
    "b$",
    "a.b",
    "^$",
    "A",
    "[ab]",
    "[^a]",
    "é",
    "a|%",
    r"\\",
    "_",
    "%",
    r"\.",
    "a*b+",
    "(?:ab)+",
    r"\d",
    r"\w+",
    "^a.*b$",
    r"\bb",
    "a b # comment",
    "^b",
    "x",
]


def _json_value(rng: random.Random) -> Any:
    return rng.choice([*STRINGS[:6], *NUMBERS, True, False, None])


def build_dataset(seed: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    now = BASE

    def common(object_id: str) -> dict[str, Any]:
        return {"objectId": object_id, "createdAt": now, "updatedAt": now, "version": 1, "_rperm": ["*"]}

    providers = [
        {**common(pid), "displayName": rng.choice(STRINGS), "specialty": rng.choice(["lab", "gp", None])}
        for pid in PROVIDER_IDS
    ]
    patients = [
        {
            **common(pid),
            "medicalRecordNumber": f"MRN-{i}",
            "displayName": rng.choice([*STRINGS, None]),
            "isActive": rng.random() < 0.7,
            "careTeam": rng.sample(PROVIDER_IDS, rng.randint(0, 3)),
        }
        for i, pid in enumerate(PATIENT_IDS)
    ]
    labs = []
    for i in range(36):
        result_data: Any = None
        if rng.random() < 0.8:
            result_data = {}
            for key in ("value", "flag"):
                if rng.random() < 0.75:
                    result_data[key] = _json_value(rng)
            if rng.random() < 0.5:
                result_data["nested"] = {"x": _json_value(rng)} if rng.random() < 0.7 else rng.choice(STRINGS)
        labs.append(
            {
                **common(f"lab{i}"),
                "patient": rng.choice(PATIENT_IDS),
                "orderedBy": rng.choice([*PROVIDER_IDS, None]),
                "orderId": rng.choice(["o1", "o2", "o3", None]),
                "testName": rng.choice([*STRINGS, None]),
                "units": rng.choice([*STRINGS[:5], None]),
                "status": rng.choice(["final", "preliminary", "corrected"]),
                "version": rng.choice([1, 2, 3]),
                "effectiveAt": rng.choice([*DATES, None]),
                "attachments": rng.choice(
                    [None, [], *[rng.sample([*STRINGS[:8], 1, 2.5, True], rng.randint(1, 3)) for _ in range(4)]]
                ),
                "resultData": result_data,
            }
        )
    return {"ProviderProfile": providers, "PatientProfile": patients, "LabResult": labs}


async def insert_dataset(engine: AsyncEngine, data: dict[str, list[dict[str, Any]]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(models.ProviderProfile.__table__), data["ProviderProfile"])
        patients = [{k: v for k, v in p.items() if k != "careTeam"} for p in data["PatientProfile"]]
        await conn.execute(insert(models.PatientProfile.__table__), patients)
        team = [
            {"owningId": p["objectId"], "relatedId": r, "position": n}
            for p in data["PatientProfile"]
            for n, r in enumerate(p["careTeam"])
        ]
        if team:
            await conn.execute(insert(models.CareTeam.__table__), team)
        await conn.execute(insert(models.LabResult.__table__), data["LabResult"])


def acl(spec: ClassSpec) -> ColumnElement[bool]:
    return spec.pk != HIDDEN[spec.name]


def resolver(data: dict[str, list[dict[str, Any]]]) -> query.SubqueryResolver:
    cache: dict[int, tuple[ast.SubqueryNode, Collection[object]]] = {}

    def resolve(node: ast.SubqueryNode) -> Collection[object]:
        if id(node) not in cache:
            cache[id(node)] = (node, compute(node))
        return cache[id(node)][1]

    def compute(node: ast.SubqueryNode) -> Collection[object]:
        if isinstance(node, ast.RelatedTo):
            owners = [r for r in data[node.owner] if r["objectId"] == node.object_id != HIDDEN[node.owner]]
            return {v for r in owners for v in r.get(node.key.name) or []}
        rows = [
            r
            for r in data[node.class_name]
            if r["objectId"] != HIDDEN[node.class_name] and query.matches(node.where, r, resolve)
        ]
        key = "objectId" if isinstance(node, ast.InQuery | ast.NotInQuery) else node.key.name
        return {r[key] for r in rows if r.get(key) is not None}

    return resolve


# ---------------------------------------------------------------- strategies

strings = st.sampled_from(STRINGS)
numbers = st.sampled_from(NUMBERS)
dates = st.sampled_from(DATES).map(lambda d: {"__type": "Date", "iso": d.isoformat().replace("+00:00", "Z")})
json_scalars = st.one_of(st.sampled_from(STRINGS[:6]), numbers, st.booleans())
json_ordered = st.one_of(st.sampled_from(STRINGS[:6]), numbers)


def pointer(class_name: str, ids: list[str]) -> st.SearchStrategy[Any]:
    good = st.sampled_from(ids).map(lambda i: {"__type": "Pointer", "className": class_name, "objectId": i})
    wrong = st.just({"__type": "Pointer", "className": "_User", "objectId": ids[0]})
    return st.one_of(good, good, wrong)


def ops(
    values: st.SearchStrategy[Any], *, ordered: bool, regex: bool, ranged: st.SearchStrategy[Any] | None = None
) -> st.SearchStrategy[Any]:
    ranged = ranged if ranged is not None else values
    lists = st.lists(st.one_of(values, st.none()), max_size=4)
    choices: list[st.SearchStrategy[Any]] = [
        values,
        st.none(),
        st.builds(lambda v: {"$eq": v}, values),
        st.builds(lambda v: {"$ne": v}, st.one_of(values, st.none())),
        st.builds(lambda v: {"$in": v}, lists),
        st.builds(lambda v: {"$nin": v}, lists),
        st.builds(lambda v: {"$exists": v}, st.booleans()),
    ]
    if ordered:
        choices.append(st.builds(lambda o, v: {o: v}, st.sampled_from(["$lt", "$lte", "$gt", "$gte"]), ranged))
        choices.append(st.builds(lambda a, b: {"$gte": a, "$lt": b}, ranged, ranged))
    if regex:
        choices.append(
            st.builds(
                lambda p, o: {"$regex": p, "$options": o} if o else {"$regex": p},
                st.sampled_from(REGEXES),
                st.sampled_from(["", "i", "m", "s", "x", "ims"]),
            )
        )
    return st.one_of(choices)


def array_ops() -> st.SearchStrategy[Any]:
    items = st.lists(json_scalars, max_size=3)
    return st.one_of(
        ops(json_scalars, ordered=False, regex=False),
        items,
        st.builds(lambda v: {"$all": v}, items),
        st.builds(lambda v: {"$containedBy": v}, items),
        st.builds(lambda v: {"$ne": v}, items),
    )


def care_team_ops() -> st.SearchStrategy[Any]:
    ptrs = pointer("ProviderProfile", PROVIDER_IDS)
    items = st.lists(ptrs, max_size=3)
    return st.one_of(
        ops(ptrs, ordered=False, regex=False),
        st.builds(lambda v: {"$all": v}, items),
        st.builds(lambda v: {"$containedBy": v}, items),
    )


def patient_where() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "displayName": ops(strings, ordered=True, regex=True),
            "isActive": st.booleans(),
            "careTeam": care_team_ops(),
        },
    )


def provider_where() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {}, optional={"specialty": ops(st.sampled_from(["lab", "gp"]), ordered=True, regex=False)}
    )


def lab_fields() -> dict[str, st.SearchStrategy[Any]]:
    return {
        "testName": ops(strings, ordered=True, regex=True),
        "units": ops(strings, ordered=True, regex=True),
        "status": ops(st.sampled_from(["final", "preliminary", "corrected"]), ordered=True, regex=False),
        "version": ops(numbers, ordered=True, regex=False),
        "effectiveAt": ops(dates, ordered=True, regex=False),
        "orderedBy": st.one_of(
            ops(pointer("ProviderProfile", PROVIDER_IDS), ordered=False, regex=False),
            st.builds(lambda w: {"$inQuery": {"className": "ProviderProfile", "where": w}}, provider_where()),
        ),
        "patient": st.one_of(
            ops(pointer("PatientProfile", PATIENT_IDS), ordered=False, regex=False),
            st.builds(lambda w: {"$inQuery": {"className": "PatientProfile", "where": w}}, patient_where()),
            st.builds(lambda w: {"$notInQuery": {"className": "PatientProfile", "where": w}}, patient_where()),
        ),
        "orderId": st.one_of(
            ops(st.sampled_from(["o1", "o2", "o3"]), ordered=True, regex=False),
            st.builds(
                lambda op, s: {op: {"query": {"className": "LabResult", "where": {"status": s}}, "key": "orderId"}},
                st.sampled_from(["$select", "$dontSelect"]),
                st.sampled_from(["final", "preliminary"]),
            ),
        ),
        "attachments": array_ops(),
        "resultData.value": ops(json_scalars, ordered=True, regex=True, ranged=json_ordered),
        "resultData.flag": ops(json_scalars, ordered=False, regex=False),
        "resultData.nested.x": ops(json_scalars, ordered=True, regex=False, ranged=json_ordered),
        "resultData": st.one_of(st.none(), st.builds(lambda b: {"$exists": b}, st.booleans())),
        "noSuchField": ops(strings, ordered=True, regex=True),
    }


def lab_where() -> st.SearchStrategy[dict[str, Any]]:
    fields = lab_fields()
    leaf = st.fixed_dictionaries({}, optional=fields).filter(lambda d: len(d) <= 3)
    return st.recursive(
        leaf,
        lambda inner: st.builds(
            lambda op, items, base: {**base, op: items},
            st.sampled_from(["$or", "$and", "$nor"]),
            st.lists(inner, min_size=1, max_size=3),
            leaf,
        ),
        max_leaves=4,
    )


# ---------------------------------------------------------------- the test


async def _prepared(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", lambda conn, _rec: query.install_sqlite_functions(conn))
    data = build_dataset(20260423)
    await insert_dataset(engine, data)
    return data


async def test_sql_matches_evaluator(engine: AsyncEngine) -> None:
    data = await _prepared(engine)
    loop = asyncio.get_running_loop()
    ctx = query.CompileContext(dialect=engine.dialect.name, subquery_filter=acl)
    resolve = resolver(data)
    checked: list[int] = []

    async def run(cond: ColumnElement[bool]) -> set[str]:
        async with engine.connect() as conn:
            rows = await conn.execute(select(LAB.pk).where(cond))
            return {r[0] for r in rows}

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(lab_where())
    def check(where: dict[str, Any]) -> None:
        node = query.parse_where(LAB, where, LIMITS)
        cond = query.compile_where(node, LAB, ctx)
        got = asyncio.run_coroutine_threadsafe(run(cond), loop).result(timeout=30)
        expected = {r["objectId"] for r in data["LabResult"] if query.matches(node, r, resolve)}
        assert got == expected, (where, node)
        checked.append(len(expected))

    await asyncio.to_thread(check)
    assert len(checked) >= 100
    assert len(set(checked)) > 3, "the generated queries should select varied subsets"


async def test_relatedto_and_care_team_on_patients(engine: AsyncEngine) -> None:
    data = await _prepared(engine)
    ctx = query.CompileContext(dialect=engine.dialect.name, subquery_filter=acl)
    resolve = resolver(data)
    wheres: list[Mapping[str, Any]] = [
        {"careTeam": {"__type": "Pointer", "className": "ProviderProfile", "objectId": "prov0"}},
        {"careTeam": {"$exists": False}},
        {"careTeam": None},
        {"careTeam": {"$nin": ["prov0", "prov1"]}},
        {"displayName": {"$inQuery": {"className": "PatientProfile", "where": {}}}},
    ]
    for where in wheres[:4]:
        node = query.parse_where(PATIENT, where, LIMITS)
        async with engine.connect() as conn:
            got = {r[0] for r in await conn.execute(select(PATIENT.pk).where(query.compile_where(node, PATIENT, ctx)))}
        assert got == {p["objectId"] for p in data["PatientProfile"] if query.matches(node, p, resolve)}, where
    for owner in PATIENT_IDS:
        rel = {
            "$relatedTo": {
                "object": {"__type": "Pointer", "className": "PatientProfile", "objectId": owner},
                "key": "careTeam",
            }
        }
        node = query.parse_where(PROVIDER, rel, LIMITS)
        async with engine.connect() as conn:
            got = {
                r[0] for r in await conn.execute(select(PROVIDER.pk).where(query.compile_where(node, PROVIDER, ctx)))
            }
        expected = {p["objectId"] for p in data["ProviderProfile"] if query.matches(node, p, resolve)}
        assert got == expected
        if owner == HIDDEN["PatientProfile"]:
            assert got == set(), "a relation of an unreadable owner must stay hidden"


async def test_order_is_code_point_with_nulls_first(engine: AsyncEngine) -> None:
    data = await _prepared(engine)
    order = query.compile_order(query.parse_order(LAB, "testName,-version"), LAB)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(LAB.pk).order_by(*order))).all()
    labs = data["LabResult"]
    expected = sorted(labs, key=lambda r: r["objectId"])
    expected.sort(key=lambda r: -r["version"])
    expected.sort(key=lambda r: (r["testName"] is not None, r["testName"] or ""))
    assert [r[0] for r in rows] == [r["objectId"] for r in expected]


@pytest.mark.parametrize("options", ["", "i"])
async def test_regex_is_linear_time(engine: AsyncEngine, options: str) -> None:
    await _prepared(engine)
    subject = "a" * 5000 + "!"
    async with engine.begin() as conn:
        await conn.execute(
            LAB.table.update().where(LAB.pk == "lab1").values(testName=None, notes=None, resultValue=subject)
        )
        await conn.execute(LAB.table.update().where(LAB.pk == "lab2").values(resultValue="a" * 5000))
    ctx = query.CompileContext(dialect=engine.dialect.name, subquery_filter=acl)
    node = query.parse_where(LAB, {"resultValue": {"$regex": "^(a+)+$", "$options": options}}, LIMITS)
    started = time.perf_counter()
    async with engine.connect() as conn:
        got = {r[0] for r in await conn.execute(select(LAB.pk).where(query.compile_where(node, LAB, ctx)))}
    assert time.perf_counter() - started < 1.0
    assert got == {"lab2"}
    assert query.matches(node, {"resultValue": subject}) is False


@pytest.mark.parametrize("pattern", [r"\w", r"^\w+$", r"[\w]", r"\W", r"^\D*$", r"\s", r"^[^\s]+$", r"\d"])
async def test_shorthand_classes_are_ascii_on_every_backend(engine: AsyncEngine, pattern: str) -> None:
    """RE2 and Mongo's PCRE read ``\\w \\d \\s`` as ASCII; PostgreSQL's follow the locale (``\\w``
    matched ``É`` in a UTF-8 database) unless spelled out (``regex._ASCII_CLASSES``)."""
    data = await _prepared(engine)
    assert any(not str(r.get("testName") or "").isascii() for r in data["LabResult"])  # the case that differed
    ctx = query.CompileContext(dialect=engine.dialect.name, subquery_filter=acl)
    node = query.parse_where(LAB, {"testName": {"$regex": pattern}}, LIMITS)
    async with engine.connect() as conn:
        got = {r[0] for r in await conn.execute(select(LAB.pk).where(query.compile_where(node, LAB, ctx)))}
    expected = {r["objectId"] for r in data["LabResult"] if query.matches(node, r, resolver(data))}
    assert got == expected, pattern
