"""Layers: portal -> billing -> instances -> accounts -> common; nothing imports upward, and no
app imports the sandbox (the dev/test stand-ins)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"common", "accounts", "instances", "billing", "portal", "sandbox"}
# What each package may import from the project (besides itself).
ALLOWED = {
    "common": set(),
    "accounts": {"common"},
    "instances": {"accounts", "common"},
    "billing": {"instances", "accounts", "common"},
    "portal": {"billing", "instances", "accounts", "common"},
}


def project_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & PROJECT
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_module_imports_a_layer_above_it(package):
    wrong = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        above = project_imports(path) - ALLOWED[package] - {package}
        if above:
            wrong[str(path.relative_to(ROOT))] = sorted(above)
    assert wrong == {}
