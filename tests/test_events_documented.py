"""Every event the code logs is in the README's table of events, and every event in that
table is logged somewhere: the table is the registry an on-call engineer greps by."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def logged() -> set[str]:
    """The names of ``event(level, "name", ...)`` calls, and the start-up hook's plain lines."""
    names: set[str] = set()
    for path in [*SRC.joinpath("sched_accel").rglob("*.py"), SRC / "_sched_accel_boot.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if called == "event" and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                names.add(node.args[1].value)
    boot = (SRC / "_sched_accel_boot.py").read_text(encoding="utf-8")
    names.update(re.findall(r'_say\(\s*f?"([a-z_]+) ', boot))
    return names


def documented() -> set[str]:
    """The event names in the README's table (``| `a` / `b` | level | says |`` rows)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("**Every event**") : text.index("### Metrics")]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def test_every_event_logged_is_in_the_readme_table() -> None:
    assert logged() - documented() == set()


def test_every_event_in_the_readme_table_is_logged() -> None:
    assert documented() - logged() == set()
