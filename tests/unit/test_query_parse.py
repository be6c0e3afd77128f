"""``parse_where``/``parse_order``/``parse_keys``/``parse_include``: shapes, limits and Parse error codes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.errors import Forbidden, Invalid, ParseCode
from gateway.native import query
from gateway.native.query import ast
from gateway.store.classes import CLASSES

LAB = CLASSES["LabResult"]
PATIENT = CLASSES["PatientProfile"]
PROVIDER = CLASSES["ProviderProfile"]
LIMITS = query.QueryLimits()


def parse(where: Any, spec: Any = LAB, **kw: Any) -> ast.Node:
    return query.parse_where(spec, where, kw.pop("limits", LIMITS), **kw)


def ptr(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


DATE = {"__type": "Date", "iso": "2024-05-01T10:00:00.000Z"}
WHEN = datetime(2024, 5, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("where", "kind"),
    [
        ({"testName": "x"}, ast.Compare),
        ({"testName": {"$eq": "x"}}, ast.Compare),
        ({"testName": {"$ne": "x"}}, ast.Compare),
        ({"version": {"$lt": 2}}, ast.Compare),
        ({"version": {"$lte": 2}}, ast.Compare),
        ({"version": {"$gt": 2}}, ast.Compare),
        ({"effectiveAt": {"$gte": DATE}}, ast.Compare),
        ({"testName": {"$in": ["a", "b"]}}, ast.In),
        ({"testName": {"$nin": ["a"]}}, ast.NotIn),
        ({"testName": {"$exists": True}}, ast.Exists),
        ({"attachments": {"$all": ["a"]}}, ast.All),
        ({"attachments": {"$containedBy": ["a"]}}, ast.ContainedBy),
        ({"attachments": ["a", "b"]}, ast.ArrayEquals),
        ({"testName": {"$regex": "^a", "$options": "i"}}, ast.Regex),
        ({"$or": [{"testName": "a"}, {"units": "b"}]}, ast.Or),
        ({"$and": [{"testName": "a"}, {"units": "b"}]}, ast.And),
        ({"$nor": [{"testName": "a"}]}, ast.Nor),
        ({"patient": {"$inQuery": {"className": "PatientProfile", "where": {"gender": "f"}}}}, ast.InQuery),
        ({"patient": {"$notInQuery": {"className": "PatientProfile", "where": {}}}}, ast.NotInQuery),
        ({"orderId": {"$select": {"query": {"className": "LabResult", "where": {}}, "key": "orderId"}}}, ast.Select),
        (
            {"orderId": {"$dontSelect": {"query": {"className": "LabResult", "where": {}}, "key": "orderId"}}},
            ast.DontSelect,
        ),
        ({"resultData.value": {"$gt": 3}}, ast.Compare),
    ],
)
def test_every_operator_parses(where: dict[str, Any], kind: type) -> None:
    assert isinstance(parse(where), kind)


def test_related_to_parses_for_relations_and_care_team() -> None:
    node = parse({"$relatedTo": {"object": ptr("_Role", "r1"), "key": "users"}}, CLASSES["_User"])
    assert node == ast.RelatedTo("_Role", "r1", CLASSES["_Role"].fields["users"])
    node = parse({"$relatedTo": {"object": ptr("PatientProfile", "p1"), "key": "careTeam"}}, PROVIDER)
    assert isinstance(node, ast.RelatedTo)


def test_values_are_decoded() -> None:
    node = parse({"effectiveAt": DATE, "orderedBy": ptr("ProviderProfile", "d1")})
    assert isinstance(node, ast.And)
    first, second = node.children
    assert isinstance(first, ast.Compare) and first.value == WHEN
    assert isinstance(second, ast.Compare) and second.value == "d1"


def test_pointer_to_another_class_never_matches() -> None:
    assert parse({"orderedBy": ptr("_User", "d1")}) == ast.FALSE
    assert parse({"orderedBy": {"$ne": ptr("_User", "d1")}}) == ast.TRUE
    node = parse({"orderedBy": {"$in": [ptr("_User", "x"), ptr("ProviderProfile", "d1")]}})
    assert isinstance(node, ast.In) and node.values == ("d1",)
    assert parse({"careTeam": {"$all": [ptr("_User", "x")]}}, PATIENT) == ast.FALSE


def test_dot_notation_reaches_into_objects() -> None:
    node = parse({"contact.email": "a@b.c"}, PATIENT)
    assert isinstance(node, ast.Compare)
    assert node.field.path == ("email",) and node.field.kind is ast.FieldKind.JSON_PATH
    assert node.field.dotted == "contact.email"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"noSuch": "x"}, ast.FALSE),
        ({"noSuch": None}, ast.TRUE),
        ({"noSuch": {"$exists": False}}, ast.TRUE),
        ({"noSuch": {"$exists": True}}, ast.FALSE),
        ({"noSuch": {"$ne": "x"}}, ast.TRUE),
        ({"noSuch": {"$nin": ["x"]}}, ast.TRUE),
        ({"noSuch": {"$in": ["x"]}}, ast.FALSE),
        ({"noSuch": {"$gt": 1}}, ast.FALSE),
        ({"testName.deep": "x"}, ast.FALSE),
        ({"$or": [{"noSuch": "x"}, {"noSuch": None}]}, ast.TRUE),
        ({"$nor": [{"noSuch": None}]}, ast.FALSE),
    ],
)
def test_unknown_fields_are_always_undefined(where: dict[str, Any], expected: ast.Node) -> None:
    assert parse(where) == expected


def _code(where: Any, **kw: Any) -> ParseCode:
    with pytest.raises(Invalid) as info:
        parse(where, **kw)
    return info.value.parse_code


@pytest.mark.parametrize(
    ("where", "code"),
    [
        ([1], ParseCode.INVALID_QUERY),
        ({"testName": {"$foo": 1}}, ParseCode.INVALID_QUERY),
        ({"$foo": 1}, ParseCode.INVALID_QUERY),
        ({"$or": {}}, ParseCode.INVALID_QUERY),
        ({"$or": []}, ParseCode.INVALID_QUERY),
        ({"testName": {"$in": "a"}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$nin": 1}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$exists": "yes"}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$options": "i"}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$regex": 5}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$regex": "a", "$options": "q"}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$regex": "(a)\\1"}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$regex": "(?=a)"}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$regex": "a{300}"}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$regex": "[a"}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$text": {"$search": "x"}}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$nearSphere": {}}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$gt": None}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$eq": "a", "plain": 1}}, ParseCode.INVALID_QUERY),
        ({"effectiveAt": {"$gt": 5}}, ParseCode.INCORRECT_TYPE),
        ({"effectiveAt": {"__type": "Date", "iso": "not a date"}}, ParseCode.INCORRECT_TYPE),
        ({"version": "two"}, ParseCode.INCORRECT_TYPE),
        ({"testName": 5}, ParseCode.INCORRECT_TYPE),
        ({"orderedBy": 5}, ParseCode.INCORRECT_TYPE),
        ({"resultData": {"a": 1}}, ParseCode.INVALID_QUERY),
        ({"ACL": None}, ParseCode.INVALID_QUERY),
        ({"status": {"$all": ["a"]}}, ParseCode.INVALID_QUERY),
        ({"orderedBy": {"$regex": "a"}}, ParseCode.INVALID_QUERY),
        ({"orderedBy": {"$lt": ptr("ProviderProfile", "a")}}, ParseCode.INVALID_QUERY),
        ({"testName": {"$inQuery": {"className": "PatientProfile", "where": {}}}}, ParseCode.INVALID_QUERY),
        ({"patient": {"$inQuery": {"where": {}}}}, ParseCode.INVALID_QUERY),
        ({"orderId": {"$select": {"query": {"className": "LabResult"}}}}, ParseCode.INVALID_QUERY),
        ({"version": {"$select": {"query": {"className": "LabResult"}, "key": "orderId"}}}, ParseCode.INVALID_QUERY),
        ({"$relatedTo": {"object": ptr("_Role", "r"), "key": "users"}}, ParseCode.INVALID_QUERY),
        ({"_rperm": {"$in": ["*"]}}, ParseCode.INVALID_KEY_NAME),
        ({"_hashed_password": "x"}, ParseCode.INVALID_KEY_NAME),
        ({"test-name": "x"}, ParseCode.INVALID_KEY_NAME),
        ({"1abc": "x"}, ParseCode.INVALID_KEY_NAME),
        ({"contact.e mail": "x"}, ParseCode.INVALID_KEY_NAME),
        ({"resultData.items.0": "x"}, ParseCode.INVALID_QUERY),
    ],
)
def test_errors_carry_parse_codes(where: Any, code: ParseCode) -> None:
    assert _code(where) == code


def test_depth_limit() -> None:
    doc: dict[str, Any] = {"testName": "x"}
    for _ in range(7):
        doc = {"$or": [doc]}
    parse(doc)  # 8 levels
    with pytest.raises(Invalid, match="limit of 8") as info:
        parse({"$and": [doc]})
    assert info.value.parse_code == ParseCode.INVALID_QUERY
    sub = {"patient": {"$inQuery": {"className": "PatientProfile", "where": {"gender": "f"}}}}
    parse(sub, limits=query.QueryLimits(max_depth=2))
    assert _code(sub, limits=query.QueryLimits(max_depth=1)) == ParseCode.INVALID_QUERY


def test_size_limits() -> None:
    limits = query.QueryLimits(in_max_items=3, regex_max_length=5)
    parse({"testName": {"$in": ["a", "b", "c"]}}, limits=limits)
    for op in ("$in", "$nin", "$all", "$containedBy"):
        field = "attachments" if op in ("$all", "$containedBy") else "testName"
        assert _code({field: {op: ["a", "b", "c", "d"]}}, limits=limits) == ParseCode.INVALID_QUERY
    parse({"testName": {"$regex": "abcde"}}, limits=limits)
    with pytest.raises(Invalid, match="limit of 5"):
        parse({"testName": {"$regex": "abcdef"}}, limits=limits)


def test_protected_fields_are_forbidden() -> None:
    hidden = frozenset({"notes"})
    with pytest.raises(Forbidden) as info:
        parse({"notes": "x"}, protected=hidden)
    assert info.value.parse_code == ParseCode.OPERATION_FORBIDDEN
    with pytest.raises(Forbidden):
        parse({"$or": [{"notes": {"$exists": True}}]}, protected=hidden)
    with pytest.raises(Forbidden):
        query.parse_order(LAB, "-notes", protected=hidden)
    sub = {"patient": {"$inQuery": {"className": "PatientProfile", "where": {"dateOfBirth": "2000-01-01"}}}}
    with pytest.raises(Forbidden):
        parse(sub, protected_for=lambda s: frozenset({"dateOfBirth"}) if s.name == "PatientProfile" else frozenset())


def test_regex_extended_option_strips_whitespace_and_comments() -> None:
    node = parse({"testName": {"$regex": "a b # note\n c", "$options": "xi"}})
    assert node == ast.Regex(ast.FieldRef(LAB.fields["testName"]), "abc", "i")


def test_order_keys_and_include() -> None:
    keys = query.parse_order(LAB, "-effectiveAt, testName,noSuch,_created_at")
    assert [(k.field.name, k.descending) for k in keys] == [
        ("effectiveAt", True),
        ("testName", False),
        ("createdAt", False),
    ]
    with pytest.raises(Invalid):
        query.parse_order(LAB, "attachments")
    with pytest.raises(Invalid) as info:
        query.parse_order(LAB, "_rperm")
    assert info.value.parse_code == ParseCode.INVALID_KEY_NAME
    assert query.parse_keys(LAB, "testName,patient.displayName") == frozenset({"testName", "patient"})
    assert query.parse_include(LAB, "patient.user,orderedBy,testName,noSuch", 3) == {
        "patient": {"user": {}},
        "orderedBy": {},
    }
    assert query.parse_include(LAB, "*", 3) == {"patient": {}, "orderedBy": {}}
    assert query.parse_include(PATIENT, "careTeam.user", 3) == {"careTeam": {"user": {}}}
    with pytest.raises(Invalid, match="limit of 2"):
        query.parse_include(LAB, "patient.user.x", 2)


def test_evaluator_follows_mongo_null_semantics() -> None:
    record: dict[str, Any] = {"testName": None, "version": 2, "resultData": {"value": None}, "attachments": ["a", 1]}
    assert query.matches(parse({"testName": {"$ne": "x"}}), record)
    assert query.matches(parse({"testName": {"$nin": ["x"]}}), record)
    assert not query.matches(parse({"testName": {"$lt": "x"}}), record)
    assert query.matches(parse({"testName": None}), record)
    assert query.matches(parse({"resultData.value": {"$exists": True}}), record)
    assert query.matches(parse({"resultData.other": None}), record)
    assert not query.matches(parse({"resultData.other": {"$exists": True}}), record)
    assert query.matches(parse({"attachments": 1}), record)
    assert not query.matches(parse({"attachments": True}), record)  # true is not 1
    assert query.matches(parse({"attachments": {"$containedBy": ["a", 1, "b"]}}), record)
    assert not query.matches(parse({"attachments": {"$all": []}}), record)


def test_pcre_quoted_literals_from_the_sdks_are_expanded() -> None:
    """The Parse SDKs send startsWith("Dr. (x)") as ``^\\QDr. (x)\\E``; both engines must read it literally."""
    from gateway.native.query.regex import check_regex

    pattern, _ = check_regex("^\\QDr. (x)+\\E", None, 256)
    assert pattern == "^Dr\\. \\(x\\)\\+"
    pattern, _ = check_regex("\\Qa.b", None, 256)
    assert pattern == "a\\.b"
