"""``column = ANY(:name)``: a lookup by a list of keys as one array parameter, for PostgreSQL.

An ``IN`` list is rendered with one placeholder per key, so each list length is another SQL text:
asyncpg prepares each text it has not seen on that connection (a Parse round trip and PostgreSQL
planning it), keeps at most 100 of them, and SQLAlchemy renders every placeholder with its cast on
each run (about 45 us for three keys). A group commit's reads ahead look up 1 to 64 messages' worth
of keys, so their texts kept changing. With the keys as one ``varchar[]`` the statement is one text,
built once at import, prepared once per connection, and PostgreSQL plans ``= ANY`` as it plans
``IN`` (an index scan over the array's values). SQLite has no arrays: its paths keep ``IN``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Select, any_, bindparam

__all__ = ["any_of", "by_dialect"]


def any_of(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column = ANY(:name)``, the parameter a list of the column's values (PostgreSQL only)."""
    return column == any_(bindparam(name, type_=ARRAY(column.type)))


def by_dialect(
    build: Callable[[Callable[[ColumnElement[Any], str], ColumnElement[bool]]], Select[Any]],
) -> dict[str, Select[Any]]:
    """A statement built once per dialect: ``build`` is given how to say "column in the list :name",
    ``any_of`` on PostgreSQL, an expanding ``IN`` on SQLite. Pick with ``[conn.dialect.name]``."""
    return {"postgresql": build(any_of), "sqlite": build(_expanding_in)}


def _expanding_in(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    return column.in_(bindparam(name, expanding=True))
