"""mappings/ stays pure: no gateway, web framework, SQL or fhir.resources imports."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = ROOT / "mappings"
FORBIDDEN = ("gateway", "litestar", "sqlalchemy", "fhir", "fhirclient", "pydantic", "msgspec")


def _modules() -> list[str]:
    names = []
    for path in sorted(MAPPINGS.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_importing_every_mapping_module_loads_nothing_forbidden() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout)
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert not bad, bad


def test_native_fhir_imports_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"mappings"}
    for path in sorted((MAPPINGS / "native_fhir").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            assert set(roots) <= allowed, f"{path.name}: {roots}"
