"""Host rates shared by the app's processes (``_shared``): one budget across real processes on
the machine backend, a shared pause, and the backend down (never a crash, never unlimited)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from sched_accel._coord import MachineBackend, ProcessBackend
from sched_accel._coord._base import LONGEST_PAUSE
from sched_accel._exceptions import CoordinationUnavailable
from sched_accel._policy import HostLimit, HostLimiter, _shared, run_sync
from sched_accel._policy._shared import SharedRates

from ..conftest import App, FakeClock
from ..coord.redis_server import serving

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def limiter(shared: SharedRates, per_second: float = 10.0, burst: int = 2) -> HostLimiter:
    found = HostLimiter("api.test", HostLimit(concurrency=None, per_second=per_second, burst=burst))
    found.shared = shared
    return found


def test_two_limiters_draw_on_one_budget() -> None:
    """Two processes' limiters (here: two in one, on one backend) share 10/s with a burst of 2."""
    backend = ProcessBackend()
    one, two = (limiter(SharedRates(lambda: backend, "process", "app")) for _ in range(2))
    assert one.shares and two.shares
    started = time.monotonic()
    for _ in range(3):
        run_sync(one.token(1))
        run_sync(two.token(1))
    assert time.monotonic() - started >= (6 - 2) / 10 * 0.9


def test_a_pause_taken_by_one_holds_the_other() -> None:
    backend = ProcessBackend()
    one, two = (limiter(SharedRates(lambda: backend, "process", "app")) for _ in range(2))
    assert one.pause_for(0.3)  # without a refused request: always taken
    started = time.monotonic()
    run_sync(two.token(1))
    assert time.monotonic() - started >= 0.25


def test_the_backend_down_paces_alone_at_a_share_and_says_so(capture_events: list[str]) -> None:
    def down() -> ProcessBackend:
        raise CoordinationUnavailable("redis at redis://***@127.0.0.1:1/0: connection refused")

    shared = SharedRates(down, "redis at redis://***@127.0.0.1:1/0", "app")
    shared.live = 4  # four processes were seen alive
    found = limiter(shared, per_second=20.0, burst=1)
    started = time.monotonic()
    for _ in range(3):
        run_sync(found.token(1))
    assert time.monotonic() - started >= 2 / 5 * 0.9  # 20/s shared by 4: 5/s here
    lines = [line for line in capture_events if line.startswith("sched_accel.coordination_down ")]
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0] and "connection refused" in lines[0]


def test_processes_started_together_count_each_other_within_a_quarter_second() -> None:
    """The heartbeats come 0.25, 0.5 and 1 s apart, then every 2 s: a process that counted
    itself alone at its first one counts one started just after it 0.25 s later, not 2 s
    (Redis killed 1.5 s into a run, 4 processes had counted 1, 2, 3 and 4 alive)."""
    clock = FakeClock()
    backend = ProcessBackend()
    first, second = (SharedRates(lambda: backend, "process", "app", clock=clock) for _ in range(2))
    first.admit("api.test", 10.0, 1)
    assert first.live == 1
    second.admit("api.test", 10.0, 1)
    assert second.live == 2
    clock.advance(0.25)
    first.admit("api.test", 10.0, 1)
    assert first.live == 2
    beats = []
    for _ in range(16):
        clock.advance(0.25)
        before = first._beat_at
        first.admit("api.test", 1000.0, 1000)
        if first._beat_at != before:
            beats.append(round(first._beat_at - before, 2))
    assert beats == [0.5, 1.0, 2.0]  # then every 2 s (_shared.BEAT)


def test_a_request_paced_alone_goes_back_to_the_backend_once_it_answers() -> None:
    """A request waiting for its local token while the backend is down asks the backend again
    after its wait: once it answers, the request is admitted there, not by this process's
    bucket (which the backend's first answer set back to the whole rate: 4 processes back
    from an outage sent their waiting requests at the whole rate each, 2 times the host's)."""
    clock = FakeClock()
    backend = ProcessBackend()
    up = [False]

    def make() -> ProcessBackend:
        if not up[0]:
            raise CoordinationUnavailable("redis at redis://127.0.0.1:1/0: connection refused")
        return backend

    shared = SharedRates(make, "redis at redis://127.0.0.1:1/0", "app", clock=clock)
    shared.live = 4
    found = limiter(shared, per_second=10.0, burst=1)
    run_sync(found.token(1))  # the backend down: the local bucket (10/4 a second)
    plan = found.token(2)
    wait = next(plan)  # the next local token: up to 0.4 s away
    assert isinstance(wait, float) and 0 < wait <= 0.4
    up[0] = True
    clock.advance(_shared.RETRY_AFTER)
    with pytest.raises(StopIteration):
        next(plan)  # asked the backend again: admitted there
    assert backend.admit("app:api.test", per_second=10.0, burst=1) > 0  # its slot was taken there
    assert found._divide == 1 and not found._wire


def test_hosts_without_a_rate_are_not_shared() -> None:
    found = HostLimiter("api.test", HostLimit(concurrency=4, per_second=None))
    found.shared = SharedRates(ProcessBackend, "process", "app")
    assert not found.shares


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from sched_accel._coord import MachineBackend
    from sched_accel._policy import HostLimit, HostLimiter, run_sync
    from sched_accel._policy._shared import SharedRates

    state, start = sys.argv[1], float(sys.argv[2])
    shared = SharedRates(lambda: MachineBackend(state), "machine", "app")
    limiter = HostLimiter("api.test", HostLimit(concurrency=None, per_second=20.0, burst=2))
    limiter.shared = shared
    while time.time() < start:
        time.sleep(0.005)
    times = []
    for _ in range(10):
        run_sync(limiter.token(1))
        times.append(time.time())
    print(json.dumps(times))
    """
)


def test_processes_on_the_machine_backend_share_the_rate(tmp_path: Path) -> None:
    """Three real processes, 10 requests each, against one 20/s budget with a burst of 2:
    together no faster than the rate (where each alone would be)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    MachineBackend(str(state)).close()
    start = time.time() + 1.0
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(state), str(start)], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        for _ in range(3)
    ]
    times = sorted(t for child in children for t in json.loads(child.communicate(timeout=30)[0]))
    assert all(child.returncode == 0 for child in children)
    assert len(times) == 30
    assert times[-1] - times[0] >= (30 - 2) / 20 * 0.9


@pytest.mark.parametrize("kind", ["process", "machine"])
def test_which_settings_share(tmp_path: Path, kind: str) -> None:
    from sched_accel._coordination import CoordinationSettings
    from sched_accel._settings import Settings
    from sched_accel._single import shared_rates

    settings = Settings(
        path=None,
        control_file=str(tmp_path / "control.json"),
        coordination=CoordinationSettings(backend=kind),  # type: ignore[arg-type]
    )
    assert (shared_rates(settings) is None) == (kind == "process")


def places(shared: SharedRates, concurrency: int = 2) -> HostLimiter:
    """A host with a declared concurrency shared with the app's other processes."""
    found = HostLimiter("api.test", HostLimit(concurrency=concurrency, per_second=None))
    found.shared, found.places_shared = shared, True
    return found


def take(found: HostLimiter) -> int:
    """One request's local place and its shared one; its number."""
    number = run_sync(found.admission())
    run_sync(found.place(number))
    return number


def test_a_host_s_places_are_shared_and_a_freed_one_is_taken_at_once() -> None:
    """Two processes' limiters (two in one, on one backend) share a host's 2 places: the
    third request waits for one, and goes within a few ms once it is given back."""
    backend = ProcessBackend()
    one, two = (places(SharedRates(lambda: backend, "process", "app")) for _ in range(2))
    first, _ = take(one), take(one)
    waiter = threading.Thread(target=take, args=(two,))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # two's own places are free; the host's are not
    freed = time.monotonic()
    one.release(first)
    waiter.join(2)
    assert not waiter.is_alive() and time.monotonic() - freed < 0.1
    assert two.statistics().in_flight == 1 and one.statistics().in_flight == 1


def test_a_place_held_longer_than_its_ttl_is_renewed_and_a_crashed_one_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request slower than the lease's ttl keeps its place (the renewer thread); a process
    that stops renewing (it crashed) gives it back within the ttl."""
    monkeypatch.setattr(_shared, "LEASE_TTL", 0.3)
    monkeypatch.setattr(_shared, "RENEW", 0.05)
    backend = ProcessBackend()
    one, two = (places(SharedRates(lambda: backend, "process", "app"), concurrency=1) for _ in range(2))
    held = take(one)
    time.sleep(0.6)  # twice the ttl
    assert backend.lease("app:api.test", limit=1, ttl=1) is None  # still held
    one.release(held)
    assert take(two)
    renewer = two.shared._renewer if two.shared is not None else None
    assert renewer is not None and renewer.daemon
    assert two.shared is not None
    two.shared._held.clear()  # the process "crashed": nobody renews its place
    time.sleep(0.4)
    assert backend.lease("app:api.test", limit=1, ttl=1) is not None
    renewer.join(1)
    assert not renewer.is_alive()  # nothing held: the renewer is gone


def test_the_backend_down_splits_the_places_with_the_processes_last_seen() -> None:
    """Declared 4 places, 2 processes last seen, the backend down: 2 here, never unlimited."""

    def down() -> ProcessBackend:
        raise CoordinationUnavailable("redis at redis://127.0.0.1:1/0: connection refused")

    shared = SharedRates(down, "redis at redis://127.0.0.1:1/0", "app")
    shared.live = 2
    found = places(shared, concurrency=4)
    take(found), take(found)
    assert found.admit_now() == 0


def test_a_pause_lifted_by_the_process_that_asked_for_it_is_lifted_for_all() -> None:
    """One process's refused requests pause the host for everyone; a request it sent after
    them answered, the pause ends everywhere within a slice, not at its Retry-After."""
    backend = ProcessBackend()
    one, two = (places(SharedRates(lambda: backend, "process", "app"), concurrency=8) for _ in range(2))
    one.places_shared = two.places_shared = False  # only the pause is shared here
    numbers = [one.admit_now() for _ in range(3)]
    one.on_overload(429, numbers[0])
    one.on_overload(429, numbers[1])
    assert one.pause_for(5.0, refused=numbers[1])  # refusals dominate: the host is paused
    two.look_shared()
    assert two.admit_now() == 0  # held by one's pause
    started = time.monotonic()
    one.on_success(numbers[2])  # sent after the refused ones, answered
    number = run_sync(two.admission())
    assert number and time.monotonic() - started < 2.5  # a slice and a look (0.3 s), not the 5 s of its Retry-After
    assert backend.paused_for("app:api.test") == 0.0


def test_a_pause_not_lifted_holds_the_other_process_to_its_end() -> None:
    backend = ProcessBackend()
    one, two = (places(SharedRates(lambda: backend, "process", "app"), concurrency=8) for _ in range(2))
    one.places_shared = two.places_shared = False
    assert one.pause_for(0.7)
    started = time.monotonic()
    two.look_shared()
    run_sync(two.admission())
    assert time.monotonic() - started >= 0.6


PLACES_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from sched_accel._coord import MachineBackend
    from sched_accel._policy import HostLimit, HostLimiter, run_sync
    from sched_accel._policy._shared import SharedRates

    state, start = sys.argv[1], float(sys.argv[2])
    limiter = HostLimiter("api.test", HostLimit(concurrency=3, per_second=None))
    limiter.shared = SharedRates(lambda: MachineBackend(state), "machine", "app")
    limiter.places_shared = True
    while time.time() < start:
        time.sleep(0.005)
    spans = []
    for _ in range(6):
        number = run_sync(limiter.admission())
        run_sync(limiter.place(number))
        began = time.time()
        time.sleep(0.05)
        spans.append((began, time.time()))
        limiter.release(number)
    print(json.dumps(spans))
    """
)


def test_processes_on_the_machine_backend_share_a_host_s_places(tmp_path: Path) -> None:
    """Three real processes, each allowed the host's 3 places: never more than 3 requests in
    flight together (9 unshared)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    MachineBackend(str(state)).close()
    start = time.time() + 1.0
    children = [
        subprocess.Popen(
            [sys.executable, "-c", PLACES_CHILD, str(state), str(start)], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        for _ in range(3)
    ]
    spans = [span for child in children for span in json.loads(child.communicate(timeout=30)[0])]
    assert all(child.returncode == 0 for child in children) and len(spans) == 18
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    now = most = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    assert most == 3


@pytest.mark.parametrize("ask", ["paused", "lease"])
def test_the_backend_back_is_said_by_whatever_asks_it_first(capture_events: list[str], ask: str) -> None:
    """A host with no shared rate asks the backend only for its pause or its places: those
    say ``coordination_back`` too (once), and ``coordination_down`` again when it fails again."""
    clock = FakeClock()
    answers = iter([False, True, False])

    def make() -> ProcessBackend:
        if not next(answers):
            raise CoordinationUnavailable("redis at redis://127.0.0.1:1/0: connection refused")
        return ProcessBackend()

    shared = SharedRates(make, "redis at redis://127.0.0.1:1/0", "app", clock=clock)
    call = (lambda: shared.paused("api.test")) if ask == "paused" else (lambda: shared.lease("api.test", 2))
    assert not call()  # down: 0.0 left, or no place
    clock.advance(_shared.RETRY_AFTER)
    call()
    shared._backend = None  # the next ask makes it anew, and that fails
    clock.advance(_shared.RETRY_AFTER)
    call()
    said = [line.split()[0] for line in capture_events if line.startswith("sched_accel.coordination_")]
    assert said == ["sched_accel.coordination_down", "sched_accel.coordination_back", "sched_accel.coordination_down"]


def test_a_call_made_before_an_answer_failing_after_it_is_not_said_down(capture_events: list[str]) -> None:
    """A restarted Redis: a call on a connection opened before the restart fails on its first
    use after it, while a call made meanwhile on a new connection is answered. That failure is
    no outage: no ``coordination_down`` (it flapped down and back within 3 ms in CI); a call
    made after the answer that fails still is one."""
    clock = FakeClock()
    stale_in_flight, answered = threading.Event(), threading.Event()

    class Restarted(ProcessBackend):
        calls = 0

        def paused_for(self, host: str, *, longest: float = LONGEST_PAUSE) -> float:
            Restarted.calls += 1
            if Restarted.calls == 1:  # the stale connection: fails once the other was answered
                stale_in_flight.set()
                answered.wait(5)
                raise CoordinationUnavailable("redis at redis://127.0.0.1:1/0: Connection reset by peer")
            if Restarted.calls == 3:
                raise CoordinationUnavailable("redis at redis://127.0.0.1:1/0: Connection refused")
            return 0.0

    shared = SharedRates(Restarted, "redis at redis://127.0.0.1:1/0", "app", clock=clock)
    stale = threading.Thread(target=shared.paused, args=("api.test",))
    stale.start()
    assert stale_in_flight.wait(5)
    clock.advance(1.0)
    assert shared.paused("api.test") == 0.0  # answered
    answered.set()
    stale.join(5)
    assert not [line for line in capture_events if line.startswith("sched_accel.coordination_")]
    assert not shared.down
    clock.advance(1.0)
    shared.paused("api.test")  # made after the answer, and fails: down
    said = [line.split()[0] for line in capture_events if line.startswith("sched_accel.coordination_")]
    assert said == ["sched_accel.coordination_down"] and shared.down


# -- a hostile client of the Redis server (issue 24, item 5) ----------------------------------
HOSTILE_LOOP = """
    import requests

    SESSION = requests.Session()

    def poll(base, keys):
        return [SESSION.get(f"{base}/item/{key}").json() for key in keys]
"""
HOSTILE_CONFIG = """
    [coordination]
    url = "{url}"

    [retry]
    deadline = 1

    [hosts."127.0.0.1"]
    per_second = 40
    concurrency = 2

    [[targets]]
    loop = "hostile_peer:poll"
    items = "keys"
    concurrency = 4
"""
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on 127.0.0.1 for this module."""
    yield from serving(str(tmp_path_factory.mktemp("redis")))


def forge(attack: str, peer: redis.Redis, key: Callable[[str], str]) -> str:
    """What the peer writes under the host's keys (named by ``key``); the key it wrote."""
    if attack == "pause":  # a Retry-After of a day, for every process
        peer.set(key("pause"), "1", px=DAY_MS)
        return key("pause")
    if attack == "rate":  # the next request's turn a day from now, never expiring
        seconds, micros = peer.time()
        peer.set(key("tat"), str((int(seconds) + 86_400) * 1_000_000 + int(micros)))
        return key("tat")
    peer.zadd(key("leases"), {"forged-0": float("inf"), "forged-1": (int(peer.time()[0]) + 86_400) * 1000})
    return key("leases")


@pytest.mark.parametrize("attack", ["pause", "rate", "places"])
def test_a_hostile_redis_client_cannot_stall_the_job(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], redis_url: str, attack: str
) -> None:
    """Another client of the Redis server, which listed the app's keys, sets the host's pause a
    day ahead, its rate's next turn a day ahead, or fills its 2 places with entries that never
    end (each stalled the job for ever): the job still runs, with the sequential run's answers,
    held at most the retry deadline (1 s) by the pause, and what the peer wrote expires."""
    from sched_accel._config import load_config
    from sched_accel._coord import RedisBackend, make_backend
    from sched_accel._coord._names import KEY_SECRET_ENV
    from sched_accel._single import namespace_of

    from ..faultserver import FaultServer
    from ..prefetch.test_prefetch_shapes import install, run_line

    monkeypatch.setenv(KEY_SECRET_ENV, "the app's own secret")
    app.write("hostile_peer.py", HOSTILE_LOOP)
    path = app.config(HOSTILE_CONFIG.format(url=redis_url))
    module: Any = importlib.import_module("hostile_peer")
    keys = [f"k{i}" for i in range(8)]
    settings = load_config(path)
    names = make_backend(settings.coordination, None)
    assert isinstance(names, RedisBackend)
    host_key = f"{namespace_of(settings)}:127.0.0.1"
    peer = redis.Redis.from_url(redis_url)
    try:
        with FaultServer(latency=0.02) as server:
            sequential = module.poll(server.url, keys)
            forged = forge(attack, peer, lambda what: names._key(host_key, what))
            install(monkeypatch, capture_events)
            started = time.monotonic()
            accelerated = module.poll(server.url, keys)
            seconds = time.monotonic() - started
        assert accelerated == sequential
        assert seconds < 4, seconds  # not a day
        assert run_line(capture_events)["items"] == "8"
        assert peer.pttl(forged) in (-2, *range(1, 1001))  # gone, or ending within the deadline
    finally:
        peer.close()
        names.close()
