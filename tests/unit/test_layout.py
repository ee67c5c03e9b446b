"""The package's layering, read from its source: what imports what at module level.

Checked here so that a newcomer's map (docs/architecture.md) stays true: no import cycle,
the store knows no wire format, the pure core imports no I/O framework.
"""

from __future__ import annotations

import ast
from pathlib import Path

import livespace

ROOT = Path(livespace.__file__).parent
#: Modules that must stay pure: no asyncio, no web framework, no socket layer.
PURE = ("livespace.codes", "livespace.commands", "livespace.times", "livespace.protocol",
        "livespace.envelope", "livespace.outbox", "livespace.resume", "livespace.jsoncodec",
        "livespace.roster",
        "livespace.store.domain", "livespace.notes.ywire", "livespace.notes.awareness",
        "livespace.notes.relay")
IO = ("asyncio", "fastapi", "starlette", "uvicorn", "websockets", "redis", "asyncpg",
      "aiosqlite", "httpx", "livespace.wire", "livespace.connection")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, everywhere: bool = False) -> set[str]:
    """What ``path`` imports when it is imported (module level, not TYPE_CHECKING); with
    ``everywhere`` also in functions and for type checking."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree) if everywhere else tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def graph(*, everywhere: bool = False) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {
        name: {m for m in imports(path, everywhere=everywhere) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_no_import_cycle() -> None:
    """Not even through a lazy import or one for type checking only."""
    edges = graph(everywhere=True)
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name):], name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for target in sorted(edges[name]):
            # a package imports its submodules lazily; importing the package is fine
            if not name.startswith(target + "."):
                visit(target, [*path, name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])


def test_the_store_imports_no_wire_format() -> None:
    edges = graph()
    for name, targets in edges.items():
        if name.startswith("livespace.store"):
            wire = {t for t in targets if t.startswith(("livespace.protocol", "livespace.wire",
                                                        "livespace.api", "livespace.session"))}
            assert not wire, f"{name} imports {sorted(wire)}"


def test_the_pure_core_imports_no_io() -> None:
    for name in PURE:
        path = ROOT.parent / (name.replace(".", "/") + ".py")
        io = {m for m in imports(path) if m.split(".")[0] in IO or m in IO}
        assert not io, f"{name} imports {sorted(io)}"


def test_every_module_is_named_in_the_architecture_page() -> None:
    """docs/architecture.md draws the layout: a module it does not name is missing there."""
    page = (ROOT.parents[1] / "docs" / "architecture.md").read_text()
    unnamed = sorted(str(path.relative_to(ROOT)) for path in ROOT.rglob("*.py")
                     if path.name != "__init__.py" and path.name not in page)
    assert not unnamed, f"add to docs/architecture.md: {unnamed}"
