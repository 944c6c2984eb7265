"""Each config key is declared once, on the settings field it fills (``_keys``): the reader, the
settings' own checks, the errors' words and the README's key table all follow that declaration
(issue 22, item 3)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from sched_accel import ConfigError, load_config
from sched_accel._bounds import BOUNDS, describe
from sched_accel._coordination import COORDINATION_KEYS, CoordinationSettings
from sched_accel._exceptions import Problem
from sched_accel._keys import declared
from sched_accel._settings import (
    HOST_KEYS,
    METRICS_KEYS,
    RETRY_KEYS,
    TARGET_KEYS,
    TOP_KEYS,
    HostSettings,
    MetricsSettings,
    RetrySettings,
    Settings,
    Target,
)
from sched_accel._targets import TargetSpec

README = Path(__file__).resolve().parent.parent / "README.md"
#: Each table of the config: its keys, and the row of the README's key table that names them.
TABLES: dict[str, tuple[type, dict[str, str]]] = {
    "top": (Settings, TOP_KEYS),
    "target": (Target, TARGET_KEYS),
    "retry": (RetrySettings, RETRY_KEYS),
    "hosts": (HostSettings, HOST_KEYS),
    "coordination": (CoordinationSettings, COORDINATION_KEYS),
    "metrics": (MetricsSettings, METRICS_KEYS),
}


def readme_rows() -> list[tuple[list[str], list[str], str]]:
    """The README's key table: each row's keys, where they go, and what it says."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("### Keys") :].split("\n\n")[1]
    rows = []
    for line in table.splitlines()[2:]:
        key, where, meaning = (cell.strip() for cell in line.strip("|").split("|", 2))
        rows.append((re.findall(r"`([a-z_]+)`", key), [w.strip() for w in where.split(",")], meaning))
    return rows


@pytest.mark.parametrize("table", sorted(TABLES))
def test_each_table_lists_the_keys_declared_on_its_fields(table: str) -> None:
    """A table's keys are exactly its settings class's declared fields, by their TOML names."""
    cls, listed = TABLES[table]
    assert list(listed) == [k.toml or f.name for f, k in declared(cls)]
    assert all(text for text in listed.values())


def test_every_ranged_key_names_a_range_and_says_it() -> None:
    """A key with a range names one of ``_bounds``, and its words end with it (or its default)."""
    for cls, _ in TABLES.values():
        for f, k in declared(cls):
            if k.range is not None:
                assert k.range in BOUNDS, f"{cls.__name__}.{f.name}"
                assert describe(k.range) in k.text


def test_the_readme_names_every_top_level_and_target_key_where_it_goes() -> None:
    """Each row of the README's key table names declared keys, at the level it says; every top
    and target key has its row (``targets`` is the table the target rows are in)."""
    named: dict[str, set[str]] = {"top": set(), "target": set()}
    for keys, wheres, _ in readme_rows():
        for where in wheres:
            assert where in named, f"a README row says {where!r}"
            for name in keys:
                assert name in TABLES[where][1], f"README names `{name}` at {where}: not declared there"
                named[where].add(name)
    assert named["top"] == set(TOP_KEYS) - {"targets"}
    assert named["target"] == set(TARGET_KEYS)


@pytest.mark.parametrize("table", ["retry", "hosts", "coordination", "metrics"])
def test_the_readme_row_of_a_table_names_each_of_its_keys(table: str) -> None:
    """The row of a ``[retry]``, ``[hosts."..."]``, ``[coordination]`` or ``[metrics]`` table
    names each of its keys, and none that is not declared."""
    [meaning] = [meaning for keys, _, meaning in readme_rows() if keys == [table]]
    listed = TABLES[table][1]
    said = set(re.findall(r"`([a-z_]+)`", meaning))
    assert set(listed) <= said, set(listed) - said


def value_out_of(range_name: str) -> Any:
    low, high, whole = BOUNDS[range_name]
    return int(high) + 1 if whole else high * 2


@pytest.mark.parametrize(
    ("cls", "field", "section", "made"),
    [
        (cls, f.name, section, made)
        for cls, section, made in (
            (RetrySettings, "retry", lambda **kw: RetrySettings(**kw)),
            (HostSettings, 'hosts."api.test"', lambda **kw: HostSettings(**kw)),
            (
                Target,
                "targets",
                lambda **kw: Target(TargetSpec.parse("job:loop"), "prefetch", **{"concurrency": 8, **kw}),
            ),
            (Settings, "", lambda **kw: Settings(path=None, control_file="", **kw)),
        )
        for f, k in declared(cls)
        if k.range is not None and f.name != "tick"  # tick: single_run's, checked with it (test_single)
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_reader_and_the_settings_refuse_a_value_out_of_range_alike(
    tmp_path: Path, cls: type, field: str, section: str, made: Any
) -> None:
    """One range per key: a value past it is refused by the settings made in code (ValueError
    naming the key and the range) and by the reader (one :class:`Problem` holding the key, the
    value and what is allowed, its range's words among them)."""
    key = next(k for f, k in declared(cls) if f.name == field)
    assert key.range is not None
    bad = value_out_of(key.range)
    with pytest.raises(ValueError, match=re.escape(describe(key.range))):
        made(**{field: bad})
    name = key.toml or field
    body = {"": f"{name} = {bad!r}\n", "retry": f"[retry]\n{name} = {bad!r}\n"}.get(section)
    if section.startswith("hosts"):
        body = f'[hosts."api.test"]\n{name} = {bad!r}\n'
    target = (
        f'[[targets]]\nloop = "job:loop"\n{name} = {bad!r}\n'
        if section == "targets"
        else '[[targets]]\nloop = "job:loop"\n'
    )
    config = tmp_path / "sched_accel.toml"
    config.write_text((body or "") + target)
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    [problem] = raised.value.problems
    assert isinstance(problem, Problem)
    assert problem.key.endswith(name) and problem.value == bad
    assert describe(key.range) in problem.allowed
    assert str(raised.value) == f"{config}: {problem}"


def test_a_config_with_several_problems_holds_each_in_order(tmp_path: Path) -> None:
    """``ConfigError.problems``: every problem found, structured, in the order of the message."""
    config = tmp_path / "sched_accel.toml"
    config.write_text('concurrency = 0\nnonsense = 1\n[[targets]]\nloop = "job:loop"\nmax_age = -1\n')
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    problems = raised.value.problems
    assert [p.key for p in problems if p.key] == ["concurrency", "targets.max_age"]
    assert any("unknown key nonsense" in p.text for p in problems)
    assert all(p.text in str(raised.value) for p in problems)


def test_no_field_is_read_twice() -> None:
    """Every declared key fills one field of its class, and no two keys share a TOML name."""
    for cls, listed in TABLES.values():
        names = [k.toml or f.name for f, k in declared(cls)]
        assert len(names) == len(set(names)) == len(listed)
        assert {f.name for f, _ in declared(cls)} <= {f.name for f in fields(cls)}


#: A value no parsing key allows: not a list, not a choice, not an address, not an item source.
NOTHING = "a b!"


@pytest.mark.parametrize(
    ("cls", "field", "made", "section"),
    [
        (cls, f.name, made, section)
        for cls, made, section in (
            (RetrySettings, lambda **kw: RetrySettings(**kw), "[retry]\n"),
            (HostSettings, lambda **kw: HostSettings(**kw), '[hosts."api.test"]\n'),
            (MetricsSettings, lambda **kw: MetricsSettings(**kw), "[metrics]\n"),
            (
                Target,
                lambda **kw: Target(TargetSpec.parse("job:loop"), **{"mode": "prefetch", "concurrency": 8, **kw}),
                "targets",
            ),
            (Settings, lambda **kw: Settings(path=None, control_file="", **kw), ""),
        )
        for f, k in declared(cls)
        if k.parse is not None
    ],
    ids=lambda value: value if isinstance(value, str) and not value.startswith(("[", "targets")) else "",
)
def test_a_key_that_parses_refuses_alike_in_the_reader_and_the_settings(
    tmp_path: Path, cls: type, field: str, made: Any, section: str
) -> None:
    """A key that is neither a number nor a flag (a choice, a list, an address, an item source)
    is parsed by one function, its key's: the settings made in code and the reader refuse the
    same value, each saying the key's own words."""
    key = next(k for f, k in declared(cls) if f.name == field)
    name = key.toml or field
    with pytest.raises(ValueError) as raised:
        made(**{field: NOTHING})
    assert str(raised.value).endswith(f"{name} = {NOTHING!r} is not allowed: {key.text}")
    config = tmp_path / "sched_accel.toml"
    line = f"{name} = {NOTHING!r}\n".replace("'", '"')
    if section == "targets":
        config.write_text(f'[[targets]]\nloop = "job:loop"\n{line}')
    else:
        config.write_text(f'{section}{line}[[targets]]\nloop = "job:loop"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    [problem] = refused.value.problems
    assert problem.key.endswith(name) and problem.value == NOTHING and problem.allowed == key.text
