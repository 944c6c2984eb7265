"""The layout itself: modules import each other without a circle, and the engine stands alone.

A module's size follows its concept: there is no line budget (a class cut across two files to
stay under a number is worse than a long file; ``../shared/STYLE.md``, 2).

The one circle allowed is the documented one: the start-up hook (``_sched_accel_boot``,
which imports only ``os`` and ``sys`` at start-up) calls ``sched_accel._activation`` once a
target module is imported, and the package reads the flag's values from the hook.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "sched_accel"
#: importer -> imported: the one edge of a circle that is allowed.
DOCUMENTED = {("_sched_accel_boot", "sched_accel._activation")}


def module_name(path: Path) -> str:
    """``src/sched_accel/_policy/_limiter.py`` -> ``sched_accel._policy._limiter``."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of ours, by name."""
    found = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    found["_sched_accel_boot"] = SRC / "_sched_accel_boot.py"
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ours that ``name`` imports anywhere in it (type-only imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names]
            targets = names if node.module is None else [base, *names]  # `from . import x`: x only
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    """Who imports whom, among our modules."""
    known = modules()
    return {name: imports(name, path, set(known)) for name, path in known.items()}


def test_no_import_circle_but_the_documented_one() -> None:
    """Without the start-up hook's edge to _activation, the import graph has no cycle."""
    edges = graph()
    for importer, imported in DOCUMENTED:
        assert imported in edges[importer], "the documented edge is gone: update DOCUMENTED"
        edges[importer].discard(imported)
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in path, f"import circle: {' -> '.join(path[path.index(name) :] + [name])}"
        path.append(name)
        for imported in sorted(edges[name]):
            visit(imported)
        path.pop()
        done.add(name)

    for name in sorted(edges):
        visit(name)


def test_subpackages_are_the_data_path() -> None:
    """The stages have their folders: state on disk, engine, policy, prefetch."""
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert {"_state", "_engine", "_policy", "_prefetch"} <= folders


def test_the_integrations_import_nothing_else_of_ours() -> None:
    """What is known of each library stands alone: the registry is read, it reads nothing."""
    edges = graph()
    inside = {name for name in edges if name.startswith("sched_accel._integrations")}
    assert inside, "the integrations moved: update this test"
    outside = {
        imported for name in inside for imported in edges[name] if not imported.startswith("sched_accel._integrations")
    }
    assert outside <= {"sched_accel"}  # the package itself, which any submodule's import runs


def test_the_engine_knows_nothing_of_the_policy() -> None:
    """The engine imports none of the other stages: it runs slots, whatever they are."""
    edges = graph()
    engine = {name for name in edges if name.startswith("sched_accel._engine")}
    outside = {
        imported for name in engine for imported in edges[name] if not imported.startswith("sched_accel._engine")
    }
    assert outside == set()


#: The data path's stages, lowest first: a stage imports only the stages before it. The
#: integrations (what is known of each HTTP library) are below them all: every stage reads them.
STAGES = (
    "sched_accel._integrations",
    "sched_accel._state",
    "sched_accel._engine",
    "sched_accel._policy",
    "sched_accel._prefetch",
)
#: Turning it on: what installs, patches and answers the command line; no stage imports them.
INSTALL = {
    "sched_accel",
    "sched_accel.__main__",
    "sched_accel._activation",
    "sched_accel._checks",
    "sched_accel._cli",
    "sched_accel._companions",
    "sched_accel._discover",
    "sched_accel._replace",
    "sched_accel._switch",
}


def stage(name: str) -> int | None:
    return next((index for index, prefix in enumerate(STAGES) if name.startswith(prefix)), None)


def test_the_stages_import_only_the_stages_before_them() -> None:
    """integrations <- state <- engine <- policy <- prefetch <- install (``DESIGN.md``): never upwards."""
    edges = graph()
    upwards = [
        f"{importer} -> {imported}"
        for importer, targets in edges.items()
        for imported in targets
        if (mine := stage(importer)) is not None and (theirs := stage(imported)) is not None and theirs > mine
    ]
    assert upwards == []


def test_no_stage_imports_what_installs() -> None:
    edges = graph()
    assert INSTALL <= set(edges), "a module of the install layer was renamed: update INSTALL"
    found = [f"{a} -> {b}" for a, targets in edges.items() if stage(a) is not None for b in targets if b in INSTALL]
    assert found == []
