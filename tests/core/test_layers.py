"""The import graph of DESIGN.md: export and bench stand side by side on runtime; pretrain sits between
teachers and distill; nothing below the CLI imports it; no private name crosses a module boundary."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "edgekd"


def _nodes(folder: str = ""):
    """(module name, import node) for every import, top-level or inside a function, under edgekd/<folder>."""
    for f in sorted((PKG / folder).rglob("*.py")):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield name, node


def imports(folder: str) -> set[tuple[str, str]]:
    """(file, imported module) for every import under edgekd/<folder>."""
    found = set()
    for name, node in _nodes(folder):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add((name.rsplit(".", 1)[-1] + ".py", node.module))
        elif isinstance(node, ast.Import):
            found.update((name.rsplit(".", 1)[-1] + ".py", a.name) for a in node.names)
    return found


ABOVE_DATA = ("edgekd.checkpoint", "edgekd.teachers", "edgekd.pretrain", "edgekd.distill", "edgekd.runtime",
              "edgekd.export", "edgekd.bench", "edgekd.stream", "edgekd.cli")


@pytest.mark.parametrize("folder, forbidden", [
    ("data", ABOVE_DATA),
    ("export", ("edgekd.bench", "edgekd.stream", "edgekd.cli")),
    ("bench", ("edgekd.export", "edgekd.stream", "edgekd.cli")),
    ("runtime", ("edgekd.export", "edgekd.bench", "edgekd.stream", "edgekd.cli", "edgekd.distill", "edgekd.pretrain")),
    ("stream", ("edgekd.export", "edgekd.bench", "edgekd.distill", "edgekd.pretrain", "edgekd.teachers", "edgekd.cli")),
    ("teachers", ("edgekd.cli", "edgekd.pretrain", "edgekd.distill")),
    ("pretrain", ("edgekd.distill", "edgekd.export", "edgekd.bench", "edgekd.cli")),
    ("distill", ("edgekd.cli",)),
])
def test_layers_only_import_downward(folder, forbidden):
    bad = sorted(f"{f} imports {m}" for f, m in imports(folder) if m.startswith(forbidden))
    assert not bad, bad


def test_no_private_name_is_imported_across_modules():
    bad = sorted(f"{name} imports {node.module}.{a.name}" for name, node in _nodes()
                 if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgekd")
                 for a in node.names if a.name.startswith("_") and not a.name.endswith("__"))
    assert not bad, bad


def test_cli_modules_share_only_the_console():
    """Each command group is its own module: only main (which registers them) imports the others."""
    used = {(name, f"{node.module}.{a.name}" if node.module == "edgekd.cli" else node.module)
            for name, node in _nodes("cli") if isinstance(node, ast.ImportFrom) for a in node.names}
    bad = sorted(f"{name} imports {m}" for name, m in used
                 if name != "edgekd.cli.main" and m.startswith("edgekd.cli.") and m != "edgekd.cli.console")
    assert not bad, bad


# runtime (host <-> profiles), data (manifest <-> synthetic) and distill (config <-> recipes) still have
# function-level circles; the packages listed here have none and must keep it that way.
@pytest.mark.parametrize("package", ["teachers", "pretrain", "export", "bench", "stream"])
def test_modules_of_a_package_import_no_circle(package):
    graph: dict[str, set[str]] = {}
    for name, node in _nodes(package):
        targets = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
        graph.setdefault(name, set()).update(t for t in targets if t.startswith(f"edgekd.{package}.") and t != name)

    def circle_from(start: str, path: list[str]) -> list[str] | None:
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == start:
                return path + [nxt]
            if nxt not in path and (found := circle_from(start, path + [nxt])):
                return found
        return None

    circles = [" -> ".join(c) for m in sorted(graph) if (c := circle_from(m, [m]))]
    assert not circles, circles
