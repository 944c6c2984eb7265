"""_configfile.py: reading the config within bounds (size, file type, encoding, nesting), and
values shown briefly in messages."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from sched_accel import ConfigError, load_config
from sched_accel._configfile import MAX_BYTES, MAX_DEPTH, read_table, shown, shown_key, shown_text

TARGET = '[[targets]]\nloop = "jobs:update"\nreplacement = "accel:update"\n'


def refused(path: Path, data: bytes | str) -> str:
    """The message of the ConfigError that reading ``data`` from ``path`` raises."""
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        read_table(str(path))
    return str(info.value)


@pytest.mark.parametrize("opening", ["[", "{a = "], ids=["arrays", "inline-tables"])
def test_nesting_is_bounded_before_parsing(tmp_path: Path, opening: str) -> None:
    """MAX_DEPTH levels of arrays or inline tables are read; one more is refused, with its line."""
    closing = "]" if opening == "[" else "}"
    ok = "x = " + opening * MAX_DEPTH + "1" + closing * MAX_DEPTH + "\n"
    (tmp_path / "ok.toml").write_text(ok)
    assert read_table(str(tmp_path / "ok.toml"))[1:] == ("", ok)
    deep = "\n\nx = " + opening * (MAX_DEPTH + 1) + "1" + closing * (MAX_DEPTH + 1) + "\n"
    message = refused(tmp_path / "deep.toml", deep)
    assert message.endswith(
        f"deep.toml: nests arrays or tables more than {MAX_DEPTH} levels deep (line 3), "
        "deeper than any config needs: fix the brackets"
    )


def test_brackets_in_strings_and_comments_are_not_nesting(tmp_path: Path) -> None:
    """Brackets inside basic, literal and multi-line strings and comments do not count."""
    many = "[" * 100 + "{" * 100
    text = (
        f'a = "{many} \\" {many}"\nb = \'{many}\'\nc = """\n{many} "" {many}\n"""\n'
        f"d = '''{many}'''  # {many}\n# {many}\n" + TARGET
    )
    path = tmp_path / "sched_accel.toml"
    path.write_text(text)
    table, _, _ = read_table(str(path))
    assert table["a"] == f'{many} " {many}' and table["c"] == f'{many} "" {many}\n'


def test_tables_nested_by_dotted_keys_are_bounded(tmp_path: Path) -> None:
    """Dotted keys nest tables without brackets: too deep is refused too, naming where."""
    message = refused(tmp_path / "sched_accel.toml", "x" + ".a" * (MAX_DEPTH + 5) + " = 1\n")
    assert f"nests tables or arrays more than {MAX_DEPTH} levels deep (under 'x.a.a." in message
    assert message.endswith("deeper than any config needs: flatten it")


def test_a_recursion_error_in_the_parser_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the parser still recurse too deep (a host deep in its own stack), that is a ConfigError."""
    import tomllib

    def deep(text: str) -> dict[str, object]:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(tomllib, "loads", deep)
    assert "nests arrays or tables too deeply to be read" in refused(tmp_path / "sched_accel.toml", TARGET)


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    """A file larger than MAX_BYTES (1 MiB) is refused unparsed; one of MAX_BYTES is read."""
    path = tmp_path / "sched_accel.toml"
    path.write_bytes(TARGET.encode() + b"#" * (MAX_BYTES - len(TARGET)))
    assert read_table(str(path))[0]["targets"][0]["loop"] == "jobs:update"
    message = refused(path, TARGET.encode() + b"#" * MAX_BYTES)
    assert "is larger than 1 MiB, the most a config may be" in message and len(message) < 400


def test_text_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    """Invalid UTF-8 is refused with where it starts and what to do."""
    message = refused(tmp_path / "sched_accel.toml", b'log = "\xff"\n')
    assert message.endswith("not valid TOML: it is not UTF-8 text (invalid start byte at byte 7); save it as UTF-8")


def test_a_folder_is_not_a_config(tmp_path: Path) -> None:
    """A folder named as the config is refused, saying so."""
    with pytest.raises(ConfigError, match="cannot read the config|is a folder, not a regular file"):
        read_table(str(tmp_path))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
@pytest.mark.timeout(10)
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO (which nobody writes) is refused at once: opening it never waits for a writer."""
    fifo = tmp_path / "sched_accel.toml"
    os.mkfifo(fifo)
    with pytest.raises(
        ConfigError, match="is a FIFO, not a regular file; point \\$SCHED_ACCEL_CONFIG at the TOML file"
    ):
        load_config(fifo)


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("tool = 1\n", "pyproject.toml", "tool = 1 is not allowed: a table"),
        ('tool = "x"\n', "pyproject.toml", "tool = 'x' is not allowed: a table"),
        ("[tool]\nsched_accel = 3\n", "sched_accel.toml", "tool.sched_accel = 3 is not allowed: a table"),
        ("[tool]\nsched_accel = [1]\n", "pyproject.toml", "tool.sched_accel = [1] is not allowed: a table"),
        ("[tool.black]\nx = 1\n", "pyproject.toml", "has no [tool.sched_accel] table"),
    ],
    ids=["tool-int", "tool-str", "our-table-int", "our-table-array", "no-table"],
)
def test_a_tool_table_of_the_wrong_type_is_refused(tmp_path: Path, text: str, name: str, message: str) -> None:
    """``tool`` and ``tool.sched_accel`` must be tables: anything else says so, never a TypeError."""
    assert message in refused(tmp_path / name, text)


def test_a_top_level_tool_in_a_standalone_file_is_an_unknown_key(tmp_path: Path) -> None:
    """In sched_accel.toml a ``tool = 1`` is just a key we do not know."""
    path = tmp_path / "sched_accel.toml"
    path.write_text("tool = 1\n" + TARGET)
    with pytest.raises(ConfigError, match="unknown key tool; the keys here are"):
        load_config(path)


def test_messages_stay_short_whatever_the_values(tmp_path: Path) -> None:
    """A huge value and a key with a newline are shown cut short and escaped: one short line."""
    path = tmp_path / "sched_accel.toml"
    path.write_text(f'log = "{"x" * 100_000}"\n"a\\nb" = 1\n' + TARGET)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and len(message) < 600
    assert re.search(r"log = 'x+\.\.\.x+' is not allowed", message)
    assert "unknown key 'a\\nb'" in message


def test_many_problems_are_counted_not_all_listed(tmp_path: Path) -> None:
    """Hundreds of problems: the first few are named, the rest counted."""
    path = tmp_path / "sched_accel.toml"
    path.write_text("".join(f"k{i} = 1\n" for i in range(200)) + TARGET)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "unknown key k0;" in message and "unknown key k5;" in message and "unknown key k6;" not in message
    assert "(and 199 more: " in message and message.endswith("; ...)") and len(message) < 2000


def test_shown_values_are_cut_short() -> None:
    """shown() is repr, cut short; a deep table is shown to a few levels; keys stay bare when they can."""
    assert shown(3) == "3" and shown("jobs:update") == "'jobs:update'" and shown([1, 2]) == "[1, 2]"
    assert len(shown("x" * 10_000)) < 120
    deep: list[object] = []
    for _ in range(sys.getrecursionlimit() * 2):
        deep = [deep]
    assert shown(deep) == "[[[[...]]]]"
    assert (shown_key("concurrancy"), shown_key("a b"), shown_key(3)) == ("concurrancy", "'a b'", "3")
    assert (shown_text("jobs:update"), shown_text("a\nb")) == ("jobs:update", "'a\\nb'")


def test_a_path_that_is_not_a_path_is_a_config_error() -> None:
    """load_config(5) or a NUL in the path: a ConfigError, not a TypeError or ValueError."""
    with pytest.raises(ConfigError, match="5 is not a config: name a TOML file by its path"):
        load_config(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cannot read the config: (open: )?embedded null (byte|character)"):
        load_config("bad\0.toml")
