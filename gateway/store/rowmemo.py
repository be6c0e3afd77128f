"""Decoded rows remembered by the values SQLite returned for them, for the read path's repeat reads.

A portal reads the same rows over and over (a patient's latest results, their care
team's providers), and on SQLite most of a page's cost after the query is Python:
turning stored text into dates and JSON, then into Parse JSON or a FHIR resource. All
of that is a pure function of the row's stored values, so an entry is used only while
the row's values equal the ones it was made from: any write to the row makes it a new
entry, nothing needs invalidating, and a stale entry can never be served. A query
still runs with the caller's policy in it; only the decoding and rendering of an
unchanged row is shared. The one exception is a fetch by id (``hotpath.row_by_id``):
it reuses an entry without a query while its class's change counter proves the row
unchanged (``RowEntry.counter``, ``gateway.store.changes``), and the caller's policy
then checks the reused row as it would a fetched one.

Renderers keep their output for a row in its entry (``RowEntry.renders``) under a key
of their own that must capture everything besides the row the output depends on (who
asks, which fields, which options).

Entries hold shared values: a ``MemoRow`` is a fresh dict per caller, but the dates,
ACL dicts and JSON lists in it are the entry's own and must not be mutated in place
(the read path never does; writes build new values, see ``gateway.records.ops``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

Converter = Callable[[Any], Any]
INTERNAL_PREFIX = "_"
SECRET_COLUMNS = frozenset({"_hashed_password", "_token_hash", "codeHash", "secretHash"})
"""Rows holding credentials (password and token hashes) are decoded afresh and never kept:
a credential should stay in memory no longer than the request that reads it."""


class MemoRow(dict[str, Any]):
    """A decoded row (a plain dict to every caller) that knows the entry it was copied from."""

    __slots__ = ("memo",)
    memo: RowEntry


class RowEntry:
    """One stored row: its decoded form, the same without internal columns, and its renderings."""

    __slots__ = ("_public", "counter", "raw", "record", "renders")

    def __init__(self, raw: tuple[Any, ...], record: dict[str, Any]) -> None:
        self.raw = raw
        """The values as stored: the entry stands for the row only while they are equal."""
        self.record = record
        self._public: dict[str, Any] | None = None
        self.renders: dict[Any, Any] = {}
        self.counter: int | None = None
        """Its class's change counter as read before these values were fetched (``gateway.store.changes``):
        while the counter still reads this, the row is unchanged and need not be fetched."""

    def row(self) -> MemoRow:
        out = MemoRow(self.record)
        out.memo = self
        return out

    def public(self) -> dict[str, Any]:
        """The row without internal columns (``_rperm``, ``_wperm``, ...); built once, never handed out."""
        if self._public is None:
            self._public = {k: v for k, v in self.record.items() if not k.startswith(INTERNAL_PREFIX)}
        return self._public

    def public_row(self) -> MemoRow:
        out = MemoRow(self.public())
        out.memo = self
        return out


def _decode(
    names: tuple[str, ...], convert_at: tuple[tuple[int, Converter], ...], raw: Sequence[Any]
) -> dict[str, Any]:
    """One row to a dict, converting only the columns that need it and only when not NULL (every
    converter, ours and SQLAlchemy's, maps NULL to None): a third faster than a converter call
    per column, on the read path's every row."""
    values = list(raw)
    for i, convert in convert_at:
        value = values[i]
        if value is not None:
            values[i] = convert(value)
    return dict(zip(names, values, strict=True))


class RowMemo:
    """Least-recently-used entries, at most ``capacity`` (0 turns remembering off).

    An entry is found by the row's shape (its column names and how each decodes) and its
    objectId, and used only when its stored values equal the row's: a changed row replaces
    its entry rather than leaving the old version to age out, and the lookup hashes one id
    instead of every value. Rows without an objectId column are found by all their values."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[int, Any], RowEntry] = OrderedDict()
        self._shapes: dict[tuple[Any, ...], tuple[int, int, bool]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[RowEntry]:
        """What is kept now, oldest first (for tests and diagnostics)."""
        return list(self._entries.values())

    def clear(self) -> None:
        self._entries.clear()
        self._shapes.clear()

    def current(
        self, names: tuple[str, ...], convert_at: tuple[tuple[int, Converter], ...], object_id: str, counter: int
    ) -> MemoRow | None:
        """The kept row ``object_id`` of this shape if it was fetched under ``counter``, else None."""
        found = self._shapes.get((names, convert_at))
        if found is None:
            return None
        key = (found[0], object_id)
        entry = self._entries.get(key)
        if entry is None or entry.counter != counter:
            return None
        self._entries.move_to_end(key)
        return entry.row()

    def rows(
        self,
        names: tuple[str, ...],
        convert_at: tuple[tuple[int, Converter], ...],
        raw_rows: Sequence[tuple[Any, ...]],
    ) -> list[dict[str, Any]]:
        """``raw_rows`` (as ``fetchall`` returned them) decoded, each a fresh ``MemoRow``."""
        if not self.capacity:
            return [_decode(names, convert_at, raw) for raw in raw_rows]
        shapes = self._shapes
        found = shapes.get((names, convert_at))
        if found is None:
            if len(shapes) >= 256:  # statements with ever new column sets: start over
                self.clear()
            at = names.index("objectId") if "objectId" in names else -1
            found = shapes[(names, convert_at)] = (len(shapes), at, SECRET_COLUMNS.isdisjoint(names))
        shape, at, kept = found
        if not kept:
            return [_decode(names, convert_at, raw) for raw in raw_rows]
        entries = self._entries
        out: list[dict[str, Any]] = []
        for raw in raw_rows:
            key = (shape, raw[at] if at >= 0 else raw)
            entry = entries.get(key)
            if entry is not None and entry.raw == raw:
                entries.move_to_end(key)
            else:
                entry = RowEntry(raw, _decode(names, convert_at, raw))
                if key in entries:
                    entries.move_to_end(key)
                entries[key] = entry
                if len(entries) > self.capacity:
                    entries.popitem(last=False)
            out.append(entry.row())
        return out
