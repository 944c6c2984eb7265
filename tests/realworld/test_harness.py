"""The corpus's harness itself: that it sees what it claims to compare (fast; no program runs)."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from .corpus import PROGRAMS, by_name
from .harness import PROGRAMS_DIR, Observed, collect_files, compare, dump_sqlite, split_stderr
from .upstream import Upstream, canonical_body


def observed(**changes: object) -> Observed:
    base: dict[str, object] = {
        "returncode": 0,
        "stdout": "a\nb\n",
        "stderr": ["INFO:app:one"],
        "exceptions": [],
        "ours": [],
        "files": {"out.csv": b"x,1\n"},
        "tables": {"db:t": [(1, "a")]},
        "requests": Counter({("GET", "/a", (), ""): 1}),
        "span": 1.0,
        "wall": 1.2,
    }
    base.update(changes)
    return Observed(**base)  # type: ignore[arg-type]


def test_every_program_has_its_folder_and_config() -> None:
    """Each program of the corpus has a folder, its config, and a module docstring naming its model."""
    assert len({p.name for p in PROGRAMS}) == len(PROGRAMS) >= 15
    for program in PROGRAMS:
        folder = PROGRAMS_DIR / program.folder
        assert (folder / program.config).is_file(), program.name
        sources = "".join(path.read_text(encoding="utf-8") for path in folder.rglob("*.py"))
        assert f"Modelled on {program.modelled_on}" in " ".join(sources.split()), program.name


def test_the_upstream_counts_a_request_by_what_the_server_understands() -> None:
    """``+`` and ``%20`` are one request; JSON bodies count by content, not by key order."""
    with Upstream() as api:
        for query in ("q=New+York", "q=New%20York"):
            with urllib.request.urlopen(f"{api.url}/owm/data/2.5/weather?{query}&appid=k") as answer:
                assert json.load(answer)["name"] == "New York"
        counts, span = api.snapshot()
    assert counts == Counter({("GET", "/owm/data/2.5/weather", (("q", "New York"), ("appid", "k")), ""): 2})
    assert span >= 0.1  # two answers of at least 50 ms each
    assert canonical_body(b'{"b": 1, "a": 2}') == canonical_body(b'{"a":2,"b":1}')


def test_stderr_is_split_into_ours_the_apps_and_exceptions() -> None:
    """Our lines (loguru's, or in the app's logging format) and the frames of a traceback are set aside; the exception line is kept."""
    text = "\n".join(
        [
            "2026-12-07 04:20:39.245 | INFO     | sched_accel:_patch:214 - sched_accel.patched target=a:b mode=prefetch",
            "WARNING:urlchecker:down",
            "INFO:sched_accel:sched_accel.run target=a:b outcome=ok pid=7",
            "2026-12-07 09:00:02,118 WARNING [4242] sched_accel: sched_accel.fallback target=a:b pid=7 - why",
            "Traceback (most recent call last):",
            '  File "main.py", line 3, in <module>',
            "    store_prices(conn, COINS)",
            "    ^^^^^^^^^^^^^^^^^^^^^^^^^",
            "KeyError: 'terra-luna'",
        ]
    )
    ours, app, exceptions = split_stderr(text)
    assert ours == [
        "sched_accel.patched target=a:b mode=prefetch",
        "sched_accel.run target=a:b outcome=ok pid=7",
        "sched_accel.fallback target=a:b pid=7 - why",
    ]
    assert app == ["WARNING:urlchecker:down"]
    assert exceptions == ["KeyError: 'terra-luna'"]


def test_our_lines_in_an_apps_log_file_are_set_aside(tmp_path: Path) -> None:
    """An app that logs to a file has our lines there (its logging is set up): they count as
    ours, and the file compares without them."""
    (tmp_path / "pipeline.log").write_text(
        "INFO pipeline.prices stored bitcoin\n"
        "INFO sched_accel sched_accel.run target=a:b outcome=ok pid=9\n"
        "INFO pipeline.prices stored ethereum\n"
    )
    files, tables, ours = collect_files(tmp_path)
    assert files == {"pipeline.log": b"INFO pipeline.prices stored bitcoin\nINFO pipeline.prices stored ethereum\n"}
    assert ours == ["sched_accel.run target=a:b outcome=ok pid=9"] and tables == {}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"stdout": "a\nc\n"}, "stdout line, item 2"),
        ({"stderr": ["INFO:app:two"]}, "stderr line, item 1"),
        ({"exceptions": ["KeyError: 'x'"]}, "exception"),
        ({"returncode": 1}, "exit code"),
        ({"files": {"out.csv": b"x,2\n"}}, "file out.csv line, item 1"),
        ({"files": {}}, "file out.csv only in the off run"),
        ({"tables": {"db:t": [(1, "a"), (2, "b")]}}, "table db:t row"),
        ({"requests": Counter({("GET", "/b", (), ""): 1})}, "never made"),
    ],
)
def test_every_observable_difference_is_found(change: dict[str, object], expected: str) -> None:
    """A run that differs in any one observable is not identical, and says where."""
    result = compare(by_name("url_health"), observed(), observed(**change))
    assert not result.identical
    assert expected in result.differences[0]


def test_requests_sent_more_often_and_wasted_ones_are_told_apart() -> None:
    """A request the sequential run made once and the accelerated run twice is repeated; one it
    never made is wasted."""
    once = ("GET", "/a", (), "")
    result = compare(by_name("url_health"), observed(), observed(requests=Counter({once: 2, ("GET", "/z", (), ""): 3})))
    assert result.identical
    assert result.repeated == {once: (1, 2)}
    assert result.wasted == 3


def test_sqlite_rows_are_read_in_rowid_order(tmp_path: Path) -> None:
    """Rows are compared in the order they were written."""
    import sqlite3

    path = tmp_path / "t.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("b",), ("a",)])
    conn.commit()
    conn.close()
    assert dump_sqlite(path) == {"t": [("b",), ("a",)]}
