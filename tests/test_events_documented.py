"""The registry of events (``_events``) is what the code logs and what the README says.

- every ``event(...)`` call names a registry entry (a constant, never a string), at one of its
  levels, with fields the entry lists;
- the README's table of events is the registry, row for row (events that say one thing share a
  row: their names and levels joined by `` / ``);
- the start-up hook, which imports nothing of ours, writes only registered names.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sched_accel import _events
from sched_accel._events import EVENTS, Event

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}
BY_CONSTANT = {name: value for name, value in vars(_events).items() if isinstance(value, Event)}


def calls() -> list[tuple[str, ast.Call]]:
    """Every ``event(...)`` call in the package and the start-up hook, with its file and line."""
    found = []
    for path in [*SRC.joinpath("sched_accel").rglob("*.py"), SRC / "_sched_accel_boot.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args:
                called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                if called == "event":
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return found


def test_every_call_names_a_registered_event_at_its_level_with_its_fields() -> None:
    problems = []
    for where, call in calls():
        first = call.args[0]
        if not isinstance(first, ast.Name) or first.id not in BY_CONSTANT:
            problems.append(f"{where}: names no event of the registry ({ast.unparse(first)})")
            continue
        what = BY_CONSTANT[first.id]
        assert what.name == first.id.lower(), f"{first.id} names {what.name!r}"
        for keyword in call.keywords:
            if keyword.arg == "level":
                levels = {n.value for n in ast.walk(keyword.value) if isinstance(n, ast.Constant) and n.value in LEVELS}
                if not levels <= set(what.levels):
                    problems.append(f"{where}: {what.name} at {sorted(levels)}, not one of {what.levels}")
            elif keyword.arg is not None and keyword.arg not in what.fields:
                problems.append(f"{where}: {what.name} carries {keyword.arg}=, not in its fields {what.fields}")
        if len(what.levels) > 1 and not any(k.arg == "level" for k in call.keywords):
            problems.append(f"{where}: {what.name} is logged at {what.levels}: the call says which")
    assert problems == []


def test_every_registered_event_is_logged_somewhere() -> None:
    named = {call.args[0].id for _, call in calls() if isinstance(call.args[0], ast.Name)}
    boot = (SRC / "_sched_accel_boot.py").read_text(encoding="utf-8")
    written = set(re.findall(r'_say\(\s*f?"([a-z_]+) ', boot))
    assert written <= {what.name for what in EVENTS}, "the start-up hook writes an event not registered"
    assert [what.name for what in EVENTS if what.name.upper() not in named and what.name not in written] == []


def rows() -> list[str]:
    """The registry as the README's table rows: consecutive events that say the same share one."""
    groups: list[list[Event]] = []
    for what in EVENTS:
        if groups and groups[-1][0].says == what.says:
            groups[-1].append(what)
        else:
            groups.append([what])
    lines = []
    for group in groups:
        names = " / ".join(f"`{what.name}`" for what in group)
        levels = " / ".join(dict.fromkeys(level for what in group for level in what.levels))
        lines.append(f"| {names} | {levels} | {group[0].says} |")
    return lines


def test_the_readme_table_is_the_registry() -> None:
    """On a difference, the expected rows are printed: paste them into the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("**Every event**") : text.index("### Metrics")]
    documented = [line for line in table.splitlines() if line.startswith("| `")]
    assert documented == rows(), "\n".join(rows())


def test_the_registry_is_well_formed() -> None:
    levels = LEVELS
    assert len({what.name for what in EVENTS}) == len(EVENTS)
    assert set(EVENTS) == set(BY_CONSTANT.values())
    assert all(what.levels and set(what.levels) <= levels and what.says for what in EVENTS)
    assert all(re.fullmatch(r"[a-z_]+", what.name) for what in EVENTS)
