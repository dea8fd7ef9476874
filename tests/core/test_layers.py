"""The import graph of DESIGN.md: export and bench stand side by side on runtime; nothing below the CLI imports it."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "edgekd"


def imports(folder: str) -> set[tuple[str, str]]:
    """(file, imported module) for every import, top-level or inside a function, under edgekd/<folder>."""
    found = set()
    for f in (PKG / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add((f.name, node.module))
            elif isinstance(node, ast.Import):
                found.update((f.name, a.name) for a in node.names)
    return found


@pytest.mark.parametrize("folder, forbidden", [
    ("export", ("edgekd.bench", "edgekd.cli")),
    ("bench", ("edgekd.export", "edgekd.cli")),
    ("runtime", ("edgekd.export", "edgekd.bench", "edgekd.cli", "edgekd.distill")),
    ("teachers", ("edgekd.cli",)),
    ("distill", ("edgekd.cli",)),
])
def test_layers_only_import_downward(folder, forbidden):
    bad = sorted(f"{f} imports {m}" for f, m in imports(folder) if m.startswith(forbidden))
    assert not bad, bad
