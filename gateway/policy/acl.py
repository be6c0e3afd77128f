"""Parse ACLs: validation and the flattening into ``_rperm``/``_wperm`` used by SQL filters.

An ACL is ``{"*": {"read": true}, "<userId>": {"read": true, "write": true},
"role:admin": {...}}`` (Parse REST format). Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.errors import Invalid, ParseCode
from gateway.store.ids import is_valid_object_id

ACL = dict[str, dict[str, bool]]


def validate_acl(value: object) -> ACL:
    """Reject malformed ACLs with Parse code 123 (INVALID_ACL), as Parse Server does."""
    if not isinstance(value, Mapping):
        raise Invalid("ACL must be an object", parse_code=ParseCode.INVALID_ACL)
    acl: ACL = {}
    for key, perms in value.items():
        if not isinstance(key, str) or not _valid_acl_key(key):
            raise Invalid(f"invalid ACL key {key!r}", parse_code=ParseCode.INVALID_ACL)
        if not isinstance(perms, Mapping) or not perms:
            raise Invalid(f"invalid permissions for {key!r}", parse_code=ParseCode.INVALID_ACL)
        entry: dict[str, bool] = {}
        for perm, allowed in perms.items():
            if perm not in ("read", "write") or not isinstance(allowed, bool):
                raise Invalid(f"invalid permission {perm!r} for {key!r}", parse_code=ParseCode.INVALID_ACL)
            if allowed:
                entry[perm] = True
        if entry:
            acl[key] = entry
    return acl


def _valid_acl_key(key: str) -> bool:
    if key == "*":
        return True
    if key.startswith("role:"):
        name = key[5:]
        return bool(name) and all(c.isalnum() or c in "_- " for c in name)
    return is_valid_object_id(key)


def flatten(acl: Mapping[str, Mapping[str, bool]] | None) -> tuple[list[str], list[str]]:
    """ACL -> (``_rperm``, ``_wperm``) sorted lists; the SQL read filter tests overlap with perms."""
    if not acl:
        return [], []
    read = sorted(k for k, v in acl.items() if v.get("read"))
    write = sorted(k for k, v in acl.items() if v.get("write"))
    return read, write


def build_acl(read: Iterable[str], write: Iterable[str]) -> ACL:
    acl: ACL = {}
    for key in read:
        acl.setdefault(key, {})["read"] = True
    for key in write:
        acl.setdefault(key, {})["write"] = True
    return acl


def allows(perm_list: Iterable[str] | None, perms: frozenset[str]) -> bool:
    return perm_list is not None and not perms.isdisjoint(perm_list)


def acl_from_row(row: Mapping[str, Any]) -> ACL | None:
    value = row.get("ACL")
    return value if isinstance(value, dict) else None
