"""The bytes kept per answer sent ahead are capped (``_integrations.MAX_KEPT``, 10 MiB), against a
real local upstream whose answers are large or never end (``tests/bodyserver.py``).

An answer over the cap (its Content-Length says so, or its body runs past it) is closed and
never served: the loop sends its request itself and reads it live, as the sequential loop
does. Each test runs the app's loop unpatched, then patched (HTTP level, or shadows of its
per-item function), and compares the results, what reached the server and the memory the
run took (Python's allocations, ``tracemalloc``'s peak).
"""

from __future__ import annotations

import importlib
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from sched_accel._integrations import MAX_KEPT, announced_over, read_capped

from ..bodyserver import MIB, BodyServer
from ..conftest import App
from .test_prefetch_shapes import install, run_line

pytestmark = pytest.mark.slow

CONCURRENCY = 4
#: What the loop reads of an endless stream.
HEAD = 64 * 1024
#: An answer over the cap.
BIG = 20 * MIB
#: What a patched run may take beyond the sequential run's memory: an answer read up to the
#: cap (and a chunk) per request in flight, the probe's included, and what the collector had
#: not freed yet of httpx's responses (the sequential run's own peak varies by 24 MiB).
HELD = (CONCURRENCY + 1) * (MAX_KEPT + MIB) + 32 * MIB


@pytest.fixture
def server() -> Iterator[BodyServer]:
    with BodyServer(latency=0.03) as running:
        yield running


HTTPX_APP = """
    import hashlib
    import time
    import httpx

    def one(client, base, key, limit, tail):
        # the first `limit` bytes of the answer (every byte when 0), streamed: how many, and their digest
        digest, seen = hashlib.sha256(), 0
        with client.stream("GET", f"{base}/{key}{tail}") as response:
            for chunk in response.iter_bytes():
                chunk = chunk[: limit - seen] if limit else chunk
                digest.update(chunk)
                seen += len(chunk)
                if limit and seen >= limit:
                    break
        return response.status_code, seen, digest.hexdigest()[:16]

    def whole(client, base, key, tail):
        response = client.get(f"{base}/{key}{tail}")
        return response.status_code, len(response.content), hashlib.sha256(response.content).hexdigest()[:16]

    def run(base, keys, limit=0, tail=""):
        with httpx.Client() as client:
            return [one(client, base, key, limit, tail) for key in keys]

    def run_whole(base, keys, tail="", pause=0.0):
        out = []
        with httpx.Client() as client:
            for key in keys:
                out.append(whole(client, base, key, tail))
                time.sleep(pause)  # the loop's own work on the answer: those sent ahead pile up
        return out
"""

REQUESTS_APP = """
    import hashlib
    import time
    import requests

    SESSION = requests.Session()

    def one(base, key, limit, tail):
        # the first `limit` bytes of the answer (every byte when 0), streamed: how many, and their digest
        digest, seen = hashlib.sha256(), 0
        response = SESSION.get(f"{base}/{key}{tail}", stream=True)
        try:
            for chunk in response.iter_content(16384):
                chunk = chunk[: limit - seen] if limit else chunk
                digest.update(chunk)
                seen += len(chunk)
                if limit and seen >= limit:
                    break
        finally:
            response.close()
        return response.status_code, seen, digest.hexdigest()[:16]

    def whole(base, key, tail):
        response = SESSION.get(f"{base}/{key}{tail}")
        return response.status_code, len(response.content), hashlib.sha256(response.content).hexdigest()[:16]

    def run(base, keys, limit=0, tail=""):
        return [one(base, key, limit, tail) for key in keys]

    def run_whole(base, keys, tail="", pause=0.0):
        out = []
        for key in keys:
            out.append(whole(base, key, tail))
            time.sleep(pause)  # the loop's own work on the answer: those sent ahead pile up
        return out
"""

APPS = {"httpx": HTTPX_APP, "requests": REQUESTS_APP}


class Seen:
    """One call of the loop: its value, the requests that reached the server, the peak of
    Python's allocations while it ran, and its time."""

    def __init__(self, server: BodyServer, call: Callable[[], Any]) -> None:
        server.reset_counts()
        tracemalloc.start()
        try:
            started = time.perf_counter()
            self.value = call()
            self.seconds = time.perf_counter() - started
            self.peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.requests = Counter(server.requests)


def compare(
    app: App,
    server: BodyServer,
    monkeypatch: pytest.MonkeyPatch,
    capture: list[str],
    library: str,
    level: str,
    loop: str,
    call: Callable[[Any], Any],
) -> tuple[Seen, Seen, dict[str, str]]:
    """The app's ``loop`` unpatched, then patched at ``level`` ("http", or "shadow": its
    per-item function ``one`` or ``whole`` shadowed): the same value, every time."""
    app.write("bodies.py", APPS[library])
    config = f'[[targets]]\nloop = "bodies:{loop}"\nitems = "keys"\nconcurrency = {CONCURRENCY}\n'
    if level == "shadow":
        config += f'fetch = "bodies:{"whole" if loop == "run_whole" else "one"}"\nshadow = true\n'
    app.config(config)
    module: Any = importlib.import_module("bodies")
    before = Seen(server, lambda: call(module))
    install(monkeypatch, capture)
    after = Seen(server, lambda: call(module))
    assert after.value == before.value
    assert set(after.requests) == set(before.requests)
    return before, after, run_line(capture)


def twice(seen: Seen) -> int:
    """How many of the loop's requests reached the server twice (none more often)."""
    assert max(seen.requests.values()) <= 2
    return sum(count == 2 for count in seen.requests.values())


LEVELS = pytest.mark.parametrize("level", ["http", "shadow"])
LIBRARIES = pytest.mark.parametrize("library", ["httpx", "requests"])


@LEVELS
@LIBRARIES
def test_an_endless_stream_the_loop_reads_the_start_of_is_never_read_ahead_past_the_cap(
    app: App, server: BodyServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], library: str, level: str
) -> None:
    """A loop that reads the first 64 KiB of answers that never end finishes, with the
    sequential run's bytes and memory bounded by the cap per answer in flight; requests'
    ``stream=True`` is never sent ahead at all."""
    keys = [f"e{i:02d}" for i in range(16)]
    before, after, line = compare(
        app,
        server,
        monkeypatch,
        capture_events,
        library,
        level,
        "run",
        lambda module: module.run(f"{server.url}/endless", keys, HEAD),
    )
    assert all(status == 200 and size == HEAD for status, size, _ in after.value)
    assert after.peak < before.peak + HELD  # it grew 3.9 GiB in 28 s
    assert after.peak < 100 * MIB
    if library == "requests":  # a stream: never sent ahead, each request once, as the loop made it
        assert after.requests == before.requests
        assert "oversize" not in line
        return
    # Only the answers sent ahead before the first was found over the cap went out twice.
    assert 1 <= twice(after) <= CONCURRENCY + 1
    assert 1 <= int(line["oversize"]) <= CONCURRENCY + 1
    if level == "http":
        assert line["prefetched"] == "0" and int(line["missed"]) == len(keys)
        assert int(line["wasted"]) == int(line["oversize"])
    else:
        assert line["reads_served"] == "0" and int(line["reads_live"]) == len(keys)


@LEVELS
@LIBRARIES
@pytest.mark.parametrize("kind", ["sized", "chunked"])
def test_answers_over_the_cap_that_the_loop_reads_whole_are_read_live(
    app: App,
    server: BodyServer,
    monkeypatch: pytest.MonkeyPatch,
    capture_events: list[str],
    library: str,
    level: str,
    kind: str,
) -> None:
    """Answers of 20 MiB (announced by their length, or chunked) are not kept ahead: the loop
    reads each itself, with the sequential run's bytes, and the memory the run takes is the
    sequential run's and one capped answer per request in flight, not a window of them (8
    answers, 160 MiB, before the cap)."""
    keys = [f"b{i:02d}" for i in range(8)]
    tail = f"?bytes={BIG}"
    before, after, line = compare(
        app,
        server,
        monkeypatch,
        capture_events,
        library,
        level,
        "run_whole",
        lambda module: module.run_whole(f"{server.url}/{kind}", keys, tail, 0.05),
    )
    assert all(size == BIG for _, size, _ in after.value)
    assert after.peak < before.peak + HELD
    assert 1 <= twice(after) <= CONCURRENCY + 1  # the rest were sent once: by the loop
    assert 1 <= int(line["oversize"]) <= CONCURRENCY + 1
    if level == "http":
        assert line["prefetched"] == "0" and int(line["missed"]) == len(keys)
    else:
        assert line["reads_served"] == "0" and int(line["reads_live"]) == len(keys)


@LEVELS
@LIBRARIES
@pytest.mark.parametrize("kind", ["sized", "chunked"])
def test_answers_under_the_cap_are_still_served_from_ahead(
    app: App,
    server: BodyServer,
    monkeypatch: pytest.MonkeyPatch,
    capture_events: list[str],
    library: str,
    level: str,
    kind: str,
) -> None:
    """Answers of 2 MiB are read ahead and served, each request sent once."""
    keys = [f"s{i:02d}" for i in range(12)]
    before, after, line = compare(
        app,
        server,
        monkeypatch,
        capture_events,
        library,
        level,
        "run_whole",
        lambda module: module.run_whole(f"{server.url}/{kind}", keys, f"?bytes={2 * MIB}"),
    )
    assert after.requests == before.requests  # each once
    assert "oversize" not in line
    if level == "http":
        assert int(line["prefetched"]) >= len(keys) - 2  # the first two teach the pattern
    else:
        assert int(line["reads_served"]) >= len(keys) - 2


@pytest.mark.parametrize(("size", "oversize"), [(MAX_KEPT, False), (MAX_KEPT + 1, True)])
def test_an_answer_of_exactly_the_cap_is_kept_and_one_byte_more_is_not(
    app: App, server: BodyServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], size: int, oversize: bool
) -> None:
    """The cap is inclusive: a chunked 10 MiB is served from ahead, 10 MiB and a byte is read live."""
    keys = [f"x{i:02d}" for i in range(6)]
    _, after, line = compare(
        app,
        server,
        monkeypatch,
        capture_events,
        "httpx",
        "http",
        "run_whole",
        lambda module: module.run_whole(f"{server.url}/chunked", keys, f"?bytes={size}"),
    )
    assert ("oversize" in line) is oversize
    assert (line["prefetched"] == "0") is oversize
    assert (max(after.requests.values()) == 2) is oversize


@LIBRARIES
def test_a_refusal_whose_body_never_ends_reaches_the_loop_unread_past_the_cap(
    app: App, server: BodyServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], library: str
) -> None:
    """A 503 (a status the policy retries) with an endless body is not read whole to be
    retried: the loop, streaming, gets a 503 and reads its first 64 KiB, as it would have."""
    keys = [f"r{i:02d}" for i in range(6)]
    before, after, _ = compare(
        app,
        server,
        monkeypatch,
        capture_events,
        library,
        "http",
        "run",
        lambda module: module.run(f"{server.url}/endless", keys, HEAD, "?status=503"),
    )
    assert [status for status, _, _ in after.value] == [503] * len(keys)
    assert after.peak < 100 * MIB


# -- the other clients: the cap in each one's keep -------------------------------------------------
AIOHTTP_APP = """
    import hashlib
    import aiohttp

    async def run(base, keys, limit, tail=""):
        out = []
        async with aiohttp.ClientSession() as session:
            for key in keys:
                async with session.get(f"{base}/{key}{tail}") as response:
                    data = await response.content.read(limit) if limit else await response.read()
                    while limit and len(data) < limit:
                        more = await response.content.read(limit - len(data))
                        if not more:
                            break
                        data += more
                    out.append((response.status, len(data), hashlib.sha256(data).hexdigest()[:16]))
        return out
"""

HTTPX_ASYNC_APP = """
    import hashlib
    import httpx

    async def run(base, keys, limit, tail=""):
        out = []
        async with httpx.AsyncClient() as client:
            for key in keys:
                digest, seen = hashlib.sha256(), 0
                async with client.stream("GET", f"{base}/{key}{tail}") as response:
                    async for chunk in response.aiter_bytes():
                        chunk = chunk[: limit - seen] if limit else chunk
                        digest.update(chunk)
                        seen += len(chunk)
                        if limit and seen >= limit:
                            break
                out.append((response.status_code, seen, digest.hexdigest()[:16]))
        return out
"""

URLLIB_APP = """
    import hashlib
    import urllib.request

    def run(base, keys, limit, tail=""):
        out = []
        for key in keys:
            with urllib.request.urlopen(f"{base}/{key}{tail}", timeout=10) as response:
                data = response.read(limit) if limit else response.read()
                out.append((response.status, len(data), hashlib.sha256(data).hexdigest()[:16]))
        return out
"""


async def compare_async(
    app: App,
    server: BodyServer,
    monkeypatch: pytest.MonkeyPatch,
    capture: list[str],
    source: str,
    call: Callable[[Any], Awaitable[Any]],
) -> dict[str, str]:
    """The async loop ``abodies:run`` unpatched, then patched at HTTP level: the same value,
    memory bounded as :class:`Seen`'s; the run line."""
    app.write("abodies.py", source)
    app.config(f'[[targets]]\nloop = "abodies:run"\nitems = "keys"\nconcurrency = {CONCURRENCY}\n')
    module: Any = importlib.import_module("abodies")
    peaks, values = [], []
    for patched in (False, True):
        if patched:
            install(monkeypatch, capture)
        server.reset_counts()
        tracemalloc.start()
        try:
            values.append(await call(module))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert values[1] == values[0]
    assert peaks[1] < peaks[0] + HELD
    assert max(server.requests.values()) <= 2
    return run_line(capture)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["endless", "sized"])
async def test_aiohttp_answers_over_the_cap_are_read_live(
    app: App, server: BodyServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], kind: str
) -> None:
    """aiohttp: a loop reading ``content.read(n)`` of endless answers, or whole answers of 20
    MiB, gets the sequential run's bytes; nothing over the cap is kept ahead."""
    pytest.importorskip("aiohttp")
    keys = [f"a{i:02d}" for i in range(10)]
    suffix, limit = ("", HEAD) if kind == "endless" else (f"?bytes={BIG}", 0)
    line = await compare_async(
        app,
        server,
        monkeypatch,
        capture_events,
        AIOHTTP_APP,
        lambda module: module.run(f"{server.url}/{kind}", keys, limit, suffix),
    )
    assert 1 <= int(line["oversize"]) <= CONCURRENCY + 1
    assert line["prefetched"] == "0"


# On trio only: any httpx body left unread (the loop's own, as much as one closed at the cap)
# leaves httpcore's nested async generators unexhausted, and trio warns of each (ResourceWarning).
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["endless", "chunked"])
async def test_httpx_async_answers_over_the_cap_are_read_live(
    app: App, server: BodyServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], kind: str
) -> None:
    """httpx's AsyncClient streaming the start of endless answers, or whole chunked answers of
    20 MiB: the same bytes, bounded."""
    keys = [f"h{i:02d}" for i in range(10)]
    suffix, limit = ("", HEAD) if kind == "endless" else (f"?bytes={BIG}", 0)
    line = await compare_async(
        app,
        server,
        monkeypatch,
        capture_events,
        HTTPX_ASYNC_APP,
        lambda module: module.run(f"{server.url}/{kind}", keys, limit, suffix),
    )
    assert 1 <= int(line["oversize"]) <= CONCURRENCY + 1


@pytest.mark.parametrize("kind", ["endless", "sized"])
def test_urllib_answers_over_the_cap_are_read_live(
    app: App, server: BodyServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], kind: str
) -> None:
    """urllib: ``read(n)`` of endless answers, or ``read()`` of 20 MiB ones: the same bytes."""
    keys = [f"u{i:02d}" for i in range(10)]
    suffix, limit = ("", HEAD) if kind == "endless" else (f"?bytes={BIG}", 0)
    app.write("ubodies.py", URLLIB_APP)
    app.config(f'[[targets]]\nloop = "ubodies:run"\nitems = "keys"\nconcurrency = {CONCURRENCY}\n')
    module: Any = importlib.import_module("ubodies")
    call = lambda: module.run(f"{server.url}/{kind}", keys, limit, suffix)  # noqa: E731
    before = Seen(server, call)
    install(monkeypatch, capture_events)
    after = Seen(server, call)
    assert after.value == before.value
    assert after.peak < before.peak + HELD
    assert max(after.requests.values()) <= 2
    assert 1 <= int(run_line(capture_events)["oversize"]) <= CONCURRENCY + 1


# -- the pieces ------------------------------------------------------------------------------------
def test_read_capped_holds_at_most_the_cap_and_one_chunk() -> None:
    """The body up to the cap, inclusive; past it, the bytes read, the rest never asked for."""
    asked: list[int] = []

    def chunks(count: int) -> Iterator[bytes]:
        for index in range(count):
            asked.append(index)
            yield b"x" * 10

    assert read_capped(chunks(3), cap=30) == b"x" * 30
    asked.clear()
    assert read_capped(chunks(100), cap=25) == 30
    assert asked == [0, 1, 2]


@pytest.mark.parametrize(
    ("length", "method", "status", "over"),
    [
        (str(MAX_KEPT), "GET", 200, None),
        (str(MAX_KEPT + 1), "GET", 200, MAX_KEPT + 1),
        (str(MAX_KEPT + 1).encode(), None, 503, MAX_KEPT + 1),
        (MAX_KEPT + 1, None, 200, MAX_KEPT + 1),  # urllib's length, an int
        (str(MAX_KEPT + 1), "HEAD", 200, None),  # a HEAD's length is the GET's: no body comes
        (str(MAX_KEPT + 1), "GET", 304, None),
        (str(MAX_KEPT + 1), "GET", 204, None),
        ("junk", "GET", 200, None),  # left to the read, which stops at the cap
        (None, "GET", 200, None),
    ],
)
def test_announced_over_reads_the_length_a_body_will_have(
    length: Any, method: str | None, status: int, over: int | None
) -> None:
    """A Content-Length over the cap is found before any of the body is read."""
    assert announced_over(length, method, status) == over
