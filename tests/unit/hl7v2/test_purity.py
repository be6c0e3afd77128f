"""mappings/hl7v2 is pure: stdlib, python-hl7 and itself only (STYLE.md convention 1)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "mappings" / "hl7v2"
FORBIDDEN = ("gateway", "litestar", "sqlalchemy", "aiosqlite", "asyncpg", "msgspec", "fhir")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_framework_or_io_imports() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 10
    for path in modules:
        imported = _imports(path)
        assert not imported & set(FORBIDDEN), (path.name, imported)
        assert imported <= set(sys.stdlib_module_names) | {"hl7", "__future__"}, (path.name, imported)


def test_modules_stay_small() -> None:
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 400, path.name
