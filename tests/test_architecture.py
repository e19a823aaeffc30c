"""The layout keeps its promises: no import cycles, a standalone core, one seam into the core."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sqlitequeue"
MAX_LINES = 700
MAX_BENCH_TOP_MODULES = 12


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """Every sqlitequeue module ``name`` imports anywhere (top level, functions, TYPE_CHECKING)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                )
            submodules = {f"{base}.{alias.name}" for alias in node.names} & MODULES.keys()
            found.update(submodules or {base})  # ``from pkg import module``: only the module
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name) for name in MODULES}


def _cycle_from(start: str) -> list[str] | None:
    stack, path, on_path = [(start, iter(sorted(GRAPH[start])))], [start], {start}
    while stack:
        children = stack[-1][1]
        child = next(children, None)
        if child is None:
            stack.pop()
            on_path.discard(path.pop())
        elif child == start:
            return [*path, start]
        elif child not in on_path and child > start:  # each cycle found from its smallest node
            stack.append((child, iter(sorted(GRAPH[child]))))
            path.append(child)
            on_path.add(child)
    return None


def test_no_import_cycles_at_run_time_or_for_typing() -> None:
    cycles = [c for c in map(_cycle_from, sorted(MODULES)) if c]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_core_never_imports_the_workbench() -> None:
    core = [m for m in MODULES if not m.startswith("sqlitequeue.bench")]
    wrong = {m: sorted(i for i in GRAPH[m] if i.startswith("sqlitequeue.bench")) for m in core}
    assert not any(wrong.values()), wrong


def test_the_workbench_reaches_core_internals_only_through_one_interface() -> None:
    def private(module: str) -> bool:
        return any(part.startswith("_") and part != "__init__" for part in module.split(".")[1:2])

    bench = [m for m in MODULES if m.startswith("sqlitequeue.bench")]
    wrong = {m: sorted(i for i in GRAPH[m] if private(i)) for m in bench}
    assert not any(wrong.values()), f"use sqlitequeue.internals instead: {wrong}"


def test_no_module_is_over_700_lines() -> None:
    long = {n: c for n, p in MODULES.items() if (c := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_workbench_top_holds_at_most_12_modules() -> None:
    top = sorted(p.name for p in (PACKAGE / "bench").glob("*.py"))
    assert len(top) <= MAX_BENCH_TOP_MODULES, top
