"""schemathesis against the committed OpenAPI document, through the real app (catalog C01).

Every documented operation is called with generated path parameters and query
strings, as an anonymous client, as a patient and with the master key; the app must
never answer 5xx, must answer only documented status codes and content types, and
must send the documented body shapes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from gateway.app import create_app
from gateway.cli import OPENAPI_PATH
from tests.api_support import APP_ID, MASTER_KEY, make_settings
from tests.api_support import _seed as seed_demo_with_sessions

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def contract_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, str]]:
    path = Path(tmp_path_factory.mktemp("contract")) / "contract.db"
    url = f"sqlite+aiosqlite:///{path}"
    from gateway.store.migrate import upgrade

    upgrade(url)
    ids = asyncio.run(seed_demo_with_sessions(url))
    return create_app(make_settings(url)), ids


@pytest.fixture(scope="module")
def contract_schema(contract_app: tuple[Any, dict[str, str]]) -> Any:
    app, _ = contract_app
    loaded = schemathesis.openapi.from_dict(json.loads(OPENAPI_PATH.read_text()))
    loaded.app = app
    return loaded


@pytest.fixture(scope="module")
def auth_profiles(contract_app: tuple[Any, dict[str, str]]) -> list[dict[str, str]]:
    """Anonymous (app id only), a patient, a provider and the master key."""
    _, ids = contract_app
    base = {"X-Parse-Application-Id": APP_ID}
    return [
        base,
        {**base, "X-Parse-Session-Token": ids["token:alice@example.org"]},
        {**base, "X-Parse-Session-Token": ids["token:dr.smith@example.org"]},
        {**base, "X-Parse-Master-Key": MASTER_KEY},
    ]


def test_api_contract(contract_schema: Any, auth_profiles: list[dict[str, str]]) -> None:
    operations = [result.ok() for result in contract_schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: Any) -> None:
            for headers in auth_profiles:
                case.call_and_validate(headers=headers, checks=CHECKS)

        exercise()
