"""_audit and _threads: the backstop stops a shadow at any audited effect, names the app's
line, and leaves the rest of the process (and the shadow's reads) alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest

from sched_accel._exceptions import Stopped
from sched_accel._shadow import Shadow, reading, shadowed

from .helpers import in_thread

pytestmark = [pytest.mark.usefixtures("active"), pytest.mark.audit]
HERE = "tests/shadow/test_audit.py:"


def line_of(function: Callable[..., Any], text: str) -> int:
    """The line of ``function``'s source that holds ``text``."""
    import inspect

    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


def test_a_file_opened_for_writing_stops_the_shadow_at_the_apps_line(tmp_path: Path) -> None:
    """open(..., "w") raises Stopped (not the open), nothing is created, why names file:line."""
    target = tmp_path / "out.csv"

    def job() -> None:
        with open(target, "w") as file:  # the effect
            file.write("row\n")

    outcome = in_thread(job)
    assert isinstance(outcome.error, Stopped)
    assert not target.exists()
    assert outcome.shadow.stopped is not None and outcome.shadow.stopped.startswith("opened '")
    assert outcome.shadow.stopped.endswith(f"/out.csv' for writing ({HERE}{line_of(job, 'the effect')})")


def test_reads_go_on(tmp_path: Path) -> None:
    """Opening for reading, listing and globbing a folder are no effects."""
    (tmp_path / "in.txt").write_text("data")

    def job() -> tuple[str, list[str], list[Path]]:
        return (tmp_path / "in.txt").read_text(), os.listdir(tmp_path), list(tmp_path.glob("*.txt"))

    outcome = in_thread(job)
    assert outcome.error is None and outcome.shadow.stopped is None
    assert outcome.value == ("data", ["in.txt"], [tmp_path / "in.txt"])


def test_except_exception_does_not_swallow_it(tmp_path: Path) -> None:
    """The app's ``except Exception`` around the effect lets Stopped through."""
    swallowed: list[BaseException] = []

    def job() -> None:
        try:
            open(tmp_path / "x", "a")  # noqa: SIM115
        except Exception as exc:
            swallowed.append(exc)

    outcome = in_thread(job)
    assert isinstance(outcome.error, Stopped) and swallowed == []


def test_a_second_effect_in_a_bare_except_or_finally_stops_again(tmp_path: Path) -> None:
    """A bare ``except`` (or ``finally``) that tries another effect is stopped there too; the
    first reason is kept."""
    keep = tmp_path / "keep.txt"
    keep.write_text("keep")

    def bare() -> None:
        try:
            open(tmp_path / "a", "w")  # noqa: SIM115
        except:  # noqa: E722 - the app's own
            os.remove(keep)

    def final() -> None:
        try:
            open(tmp_path / "b", "w")  # noqa: SIM115
        finally:
            keep.unlink()

    for job in (bare, final):
        outcome = in_thread(job)
        assert isinstance(outcome.error, Stopped) and "remove" in outcome.error.why
        assert outcome.shadow.stopped is not None and "for writing" in outcome.shadow.stopped
        assert keep.exists()


def test_a_subprocess_stops_the_shadow_before_it_starts(tmp_path: Path) -> None:
    """subprocess.run raises Stopped; the child never ran."""
    marker = tmp_path / "ran"
    outcome = in_thread(lambda: subprocess.run([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], check=True))
    assert isinstance(outcome.error, Stopped) and "started a subprocess" in outcome.error.why
    assert not marker.exists()


@pytest.mark.parametrize(
    ("effect", "name"),
    [
        (lambda d: os.mkdir(d / "new"), "os.mkdir"),
        (lambda d: os.rename(d / "f", d / "g"), "os.rename"),
        (lambda d: os.replace(d / "f", d / "g"), "os.rename"),
        (lambda d: os.chmod(d / "f", 0o600), "os.chmod"),
        (lambda d: os.utime(d / "f"), "os.utime"),
        (lambda d: os.truncate(d / "f", 0), "os.truncate"),
        (lambda d: os.symlink(d / "f", d / "l"), "os.symlink"),
        (lambda d: os.environ.__setitem__("SCHED_ACCEL_SHADOW_TEST", "1"), "os.putenv"),
        (lambda d: os.system("true"), "ran a shell command"),
        (lambda d: __import__("shutil").copyfile(d / "f", d / "g"), "shutil.copyfile"),
        (lambda d: __import__("tempfile").mkstemp(dir=d), "tempfile.mkstemp"),
        (lambda d: os.close(os.open(d / "f", os.O_WRONLY)), "for writing"),
        (lambda d: threading.Thread(target=print).start(), "started a thread"),
    ],
)
def test_os_writes_are_stopped(tmp_path: Path, effect: Callable[[Path], object], name: str) -> None:
    """Each kind of OS-level effect stops the shadow, and the file system is unchanged."""
    (tmp_path / "f").write_text("data")
    before = sorted(os.listdir(tmp_path)), os.stat(tmp_path / "f").st_mtime_ns
    outcome = in_thread(lambda: effect(tmp_path))
    assert isinstance(outcome.error, Stopped) and name in outcome.error.why
    assert (sorted(os.listdir(tmp_path)), os.stat(tmp_path / "f").st_mtime_ns) == before
    assert "SCHED_ACCEL_SHADOW_TEST" not in os.environ


def test_the_main_thread_writes_while_a_shadow_is_stopped(tmp_path: Path) -> None:
    """While a shadow runs (and is stopped), the main thread's writes go through."""
    running, written = threading.Event(), threading.Event()

    def job() -> None:
        running.set()
        assert written.wait(10)
        open(tmp_path / "shadow.txt", "w")  # noqa: SIM115

    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(in_thread(job)))
    thread.start()
    assert running.wait(10)
    (tmp_path / "main.txt").write_text("main")
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    written.set()
    thread.join()
    assert isinstance(results[0].error, Stopped)
    assert (tmp_path / "main.txt").read_text() == "main" and not (tmp_path / "shadow.txt").exists()


def test_a_socket_connects_only_inside_reading() -> None:
    """Connecting outside reading() stops the shadow; inside it (our own send) it goes on."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = server.getsockname()

        def job() -> None:
            with reading(), socket.socket() as ours:
                ours.connect(address)
            with socket.socket() as apps:
                apps.connect(address)

        outcome = in_thread(job)
    assert isinstance(outcome.error, Stopped) and "connected a socket to" in outcome.error.why
    assert "outside a read" in outcome.error.why


def test_work_handed_to_a_thread_pool_stays_shadowed(tmp_path: Path) -> None:
    """ThreadPoolExecutor work submitted by a shadow runs as the shadow: its effect stops;
    the pool's new worker thread is allowed to start."""

    def job() -> None:
        with ThreadPoolExecutor(2) as pool:
            assert pool.submit(lambda: (tmp_path / "in.txt").exists()).result() is False
            pool.submit(lambda: open(tmp_path / "out.txt", "w")).result()  # noqa: SIM115

    outcome = in_thread(job)
    assert isinstance(outcome.error, Stopped) and "for writing" in outcome.error.why
    assert not (tmp_path / "out.txt").exists()


def test_a_process_pool_stops_the_shadow() -> None:
    """Work handed to a process pool would run elsewhere: submit() stops the shadow."""
    pool = ProcessPoolExecutor(1)
    try:
        outcome = in_thread(lambda: pool.submit(print, "child"))
    finally:
        pool.shutdown()
    assert isinstance(outcome.error, Stopped) and "process pool" in outcome.error.why


@pytest.mark.anyio
async def test_only_the_shadow_task_is_stopped_on_a_shared_event_loop(tmp_path: Path) -> None:
    """A shadow task and a normal task on one event loop: the shadow's write is stopped, the
    normal task's, at the same time, goes through."""
    shadow = Shadow()
    stopped: list[Stopped] = []
    step = anyio.Event()

    async def shadow_task() -> None:
        with shadowed(shadow):
            await step.wait()
            try:
                (tmp_path / "shadow.txt").write_text("x")
            except Stopped as exc:
                stopped.append(exc)

    async def normal_task() -> None:
        (tmp_path / "normal.txt").write_text("x")
        step.set()
        await anyio.sleep(0)
        (tmp_path / "normal2.txt").write_text("x")

    async with anyio.create_task_group() as group:
        group.start_soon(shadow_task)
        group.start_soon(normal_task)
    assert len(stopped) == 1 and shadow.stopped is not None
    assert sorted(os.listdir(tmp_path)) == ["normal.txt", "normal2.txt"]


def test_a_sync_shadow_may_run_an_event_loop_of_its_own() -> None:
    """asyncio.run and trio.run inside a sync shadow are no effects (a loop sets asyncgen hooks)."""
    import asyncio

    import trio

    outcome = in_thread(lambda: (asyncio.run(asyncio.sleep(5, result=1)), trio.run(trio.sleep, 5)))
    assert outcome.error is None and outcome.shadow.stopped is None and outcome.value == (1, None)


def test_reads_sent_through_reading_by_each_http_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the runner sends them: the app's client is made and its request prepared in the shadow,
    the send runs inside reading(); nothing stops it (requests, httpx, urllib)."""
    import http.server
    import urllib.request

    import httpx
    import requests
    import requests.adapters

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    def sent_inside_reading(original: Callable[..., Any]) -> Callable[..., Any]:
        def send(*args: Any, **kwargs: Any) -> Any:
            with reading():
                return original(*args, **kwargs)

        return send

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", sent_inside_reading(requests.adapters.HTTPAdapter.send))
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", sent_inside_reading(httpx.HTTPTransport.handle_request))
    monkeypatch.setattr(
        urllib.request.AbstractHTTPHandler, "do_open", sent_inside_reading(urllib.request.AbstractHTTPHandler.do_open)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/item/1"
    try:

        def job() -> tuple[str, str, bytes]:
            with requests.Session() as session, httpx.Client() as client:
                with urllib.request.urlopen(url) as answer:
                    body = answer.read()
                return requests.get(url).text, client.get(url).text, body + session.get(url).content

        outcome = in_thread(job)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert outcome.error is None and outcome.shadow.stopped is None
    assert outcome.value == ("ok", "ok", b"okok")


@pytest.mark.slow
@pytest.mark.anyio
async def test_an_async_read_sent_through_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shadow task's httpx.AsyncClient request, sent inside reading(), goes on (asyncio, trio)."""
    import http.server

    import httpx

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    original = httpx.AsyncHTTPTransport.handle_async_request

    async def send(self: Any, request: Any) -> Any:
        with reading():
            return await original(self, request)

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", send)
    server = http.server.ThreadingHTTPServer(("localhost", 0), Handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    shadow = Shadow()
    try:
        with shadowed(shadow):
            async with httpx.AsyncClient() as client:
                answer = await client.get(f"http://localhost:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert answer.text == "ok" and shadow.stopped is None
