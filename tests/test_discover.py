"""``sched-accel discover -- COMMAND``: the app run once, unaccelerated, its HTTP requests
recorded with their stacks, and the config for the loops that wait on them, printed. Real
apps in real interpreters against a real server on 127.0.0.1; the config it prints is then
used as it is."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from sched_accel._discover import analyse

from .conftest import App
from .faultserver import FaultServer

pytestmark = pytest.mark.slow

FLAG = "ENABLE_SCHEDULER_OPTIMIZATION"

# Our small APScheduler app: 30 ids from SQLite, a requests.Session GET per id, a row and a
# log line per id (the app of issue 21's first hour).
CLIENT = """
    import requests

    class PriceClient:
        def __init__(self, base):
            self.base = base
            self.session = requests.Session()

        def price(self, item_id):
            answer = self.session.get(f"{self.base}/item/{item_id}", timeout=5)
            answer.raise_for_status()
            return answer.json()["value"]
"""
JOBS = """
    import logging
    import sqlite3

    from tracker.client import PriceClient

    log = logging.getLogger("tracker.jobs")


    def item_ids(db):
        return [row[0] for row in db.execute("SELECT id FROM items ORDER BY id")]


    def refresh_prices(db, client, ids):
        for item_id in ids:
            value = client.price(item_id)
            db.execute("INSERT INTO prices VALUES (?, ?)", (item_id, value))
            log.info("price of %s is %s", item_id, value)
        db.commit()


    def tick(base, path):
        db = sqlite3.connect(path)
        refresh_prices(db, PriceClient(base), item_ids(db))
"""
APP = """
    import logging, sqlite3, sys

    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
    from apscheduler.schedulers.blocking import BlockingScheduler

    from tracker.jobs import tick

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    base, path = sys.argv[1], sys.argv[2]
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE items (id TEXT)")
    db.execute("CREATE TABLE prices (id TEXT, value INTEGER)")
    db.executemany("INSERT INTO items VALUES (?)", [(f"id{i}",) for i in range(30)])
    db.commit()
    scheduler = BlockingScheduler()
    scheduler.add_job(tick, "date", args=[base, path], id="tick")
    scheduler.add_listener(lambda event: scheduler.shutdown(wait=False), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
"""
# A script whose loop makes its requests itself: HTTP level, its items a parameter.
SCRIPT = """
    import sys
    import httpx

    def check_all(base, names):
        with httpx.Client() as client:
            return [client.get(f"{base}/item/{name}").status_code for name in names]

    if __name__ == "__main__":
        print(check_all(sys.argv[1], ["alpha", "beta", "gamma", "delta"]))
"""


def discover(app: App, *command: str, **env: str) -> Any:
    return app.run("-m", "sched_accel", "discover", "--", sys.executable, *command, env=env)


def tables(stdout: str) -> list[str]:
    """The [[targets]] tables printed, each as its text."""
    found, current = [], None
    for line in stdout.splitlines():
        if line == "[[targets]]":
            current = [line]
            found.append(current)
        elif current is not None and line and not line.startswith("#"):
            current.append(line)
        else:
            current = None
    return ["\n".join(table) for table in found]


def rows(path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT id, value FROM prices ORDER BY rowid"))


@pytest.mark.usefixtures("unmeasured_children")
def test_the_apscheduler_app_reaches_a_working_config_through_discover(app: App) -> None:
    """discover prints the loop, its per-item function and where its items are; that table,
    pasted as it is, accelerates the app with every row and log line as before."""
    app.write("tracker/__init__.py", "")
    app.write("tracker/client.py", CLIENT)
    app.write("tracker/jobs.py", JOBS)
    app.write("app.py", APP)
    with FaultServer(latency=0.05) as server:
        found = discover(app, "app.py", server.url, str(app.root / "seen.sqlite"), **{FLAG: "1"})
        assert found.returncode == 0, found.stderr
        assert "sched_accel.patched" not in found.stderr  # recorded, never accelerated (the flag is dropped)
        assert len(server.requests) == 30
        [table] = tables(found.stdout)
        assert table == (
            '[[targets]]\nloop = "tracker.jobs:refresh_prices"\nfetch = "tracker.client:PriceClient.price"\n'
            'items = "ids"\nconcurrency = 8'
        ), found.stdout
        assert "30 items, 30 requests" in found.stdout
        (app.root / "sched_accel.toml").write_text(table + "\n")
        off = app.run("app.py", server.url, str(app.root / "off.sqlite"))
        on = app.run("app.py", server.url, str(app.root / "on.sqlite"), env={FLAG: "1"})
    assert off.returncode == on.returncode == 0, on.stderr
    assert rows(app.root / "off.sqlite") == rows(app.root / "on.sqlite") != []
    own = [line for line in on.stderr.splitlines() if line.startswith("INFO tracker.jobs")]
    assert own == [line for line in off.stderr.splitlines() if line.startswith("INFO tracker.jobs")]
    [run] = [line for line in on.stderr.splitlines() if "sched_accel.run " in line]
    assert "outcome=ok items=30" in run and "prefetched=30" in run


@pytest.mark.usefixtures("unmeasured_children")
def test_a_loop_that_makes_its_requests_itself_is_found_with_its_parameter(app: App) -> None:
    app.write("check.py", SCRIPT)
    with FaultServer(latency=0.01) as server:
        found = discover(app, "check.py", server.url)
    assert found.returncode == 0, found.stderr
    [table] = tables(found.stdout)
    assert table.startswith(f'[[targets]]\nloop = "{app.root / "check.py"}:check_all"\nitems = "names"'), found.stdout


@pytest.mark.usefixtures("unmeasured_children")
def test_a_command_without_a_loop_of_requests_says_so(app: App) -> None:
    app.write("one.py", "import sys, httpx\nprint(httpx.get(sys.argv[1] + '/item/x').status_code)\n")
    with FaultServer(latency=0.0) as server:
        found = discover(app, "one.py", server.url)
    assert found.returncode == 1
    assert "1 HTTP request(s) recorded" in found.stdout and "nothing to accelerate here" in found.stdout


def test_nothing_to_run_is_a_usage_error(app: App) -> None:
    done = app.run("-m", "sched_accel", "discover")
    assert done.returncode == 2 and "usage: sched-accel discover -- python job.py" in done.stderr


def frame(spec: str, call: int, argument: str, held: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "spec": spec,
        "file": "jobs.py",
        "line": 3,
        "function": spec,
        "call": call,
        "argument": argument,
        "held_as": held,
    }


def test_a_function_making_one_request_per_call_is_the_loops_per_item_call_not_a_loop() -> None:
    """The per-item function's frame id is reused by its next call: by id alone it looks like a
    loop over its requests; it is the loop's per-item call, and only the loop is reported."""
    held = {"kind": "parameter", "name": "ids", "position": 2}
    requests = [
        {
            "took": 0.1,
            "host": "api",
            "frames": [frame("m:get", 7, f"http://api/{i}"), frame("m:loop", 1, f"id={i}", held)],
        }
        for i in range(5)
    ]
    [loop] = analyse(requests)
    assert (loop.loop, loop.fetch, loop.items, loop.iterations, loop.requests) == ("m:loop", "m:get", "ids", 5, 5)
    assert loop.seconds == pytest.approx(0.5)


def test_items_the_loop_makes_itself_are_learned() -> None:
    requests = [
        {"took": 0.1, "host": "api", "frames": [frame("m:get", 7, f"u{i}"), frame("m:loop", 1, f"id={i}")]}
        for i in range(3)
    ]
    [loop] = analyse(requests)
    assert loop.items is None and "learned" in loop.notes[0]
