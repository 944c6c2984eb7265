"""The policy's decisions without a network: the circuit, host lookup, retry decisions, direct calls.

The same decisions against a real server are in test_policy_faults.py.
"""

from __future__ import annotations

import json
import sys
import threading
import types
from collections.abc import Iterator
from random import Random

import pytest

from sched_accel._engine import Slot
from sched_accel._policy import ATTEMPT, Hosts, Policy, RunStats, Tries
from sched_accel._settings import HostSettings, RetrySettings, Target
from sched_accel._targets import TargetSpec

from ..conftest import FakeClock


@pytest.fixture
def events(capture_events: list[str]) -> Iterator[list[str]]:
    yield capture_events


def target(**retry: object) -> Target:
    return Target(loop=TargetSpec.parse("jobs:loop"), mode="prefetch", concurrency=4, retry=RetrySettings(**retry))  # type: ignore[arg-type]


def policy(clock: FakeClock, *, sequential: bool = False, **retry: object) -> Policy:
    """A policy whose run has had two calls in flight at once (``sequential``: never more than one)."""
    made = Policy(target(**retry), Hosts(), rng=Random(1), clock=clock)
    made.stats.peak_calls = 1 if sequential else 2
    return made


class Status(Exception):
    """Looks like httpx.HTTPStatusError to classify(): a .response with status_code and headers."""

    def __init__(self, status: int, retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = types.SimpleNamespace(
            status_code=status, headers={"Retry-After": retry_after} if retry_after else {}
        )


def failed(error: BaseException, attempts: int = 1, started: float = 100.0, refused: int = 0) -> Slot[None]:
    """A slot whose ``attempts``-th attempt failed with ``error``; ``refused`` of the earlier ones
    were answered 429, the others failed transiently."""
    slot: Slot[None] = Slot(lambda: None, (), {})
    slot.error, slot.note = error, Tries(started, attempts, attempts - 1 - refused)
    return slot


# -- hosts --------------------------------------------------------------------------------------


def test_hosts_share_one_state_per_host_and_prefer_host_and_port() -> None:
    hosts = Hosts(
        {"api.example.com": HostSettings(concurrency=3), "api.example.com:8443": HostSettings(concurrency=1)}, 16
    )
    plain = hosts.get("API.example.com", 443)
    assert plain is hosts.get("api.example.com", 443) is hosts.get("api.example.com", None)
    assert plain.limiter.limit.concurrency == 3
    assert hosts.get("api.example.com", 8443).limiter.limit.concurrency == 1
    other = hosts.get("other.example.com", 443)
    assert (other.limiter.limit.concurrency, other.limiter.limit.per_second) == (16, None)
    assert set(hosts.statistics()) == {"api.example.com", "api.example.com:8443", "other.example.com"}


def test_hosts_from_many_threads_get_one_state() -> None:
    hosts = Hosts()
    got = []
    threads = [threading.Thread(target=lambda: got.append(hosts.get("h", 80))) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(state) for state in got}) == 1


@pytest.mark.parametrize(
    ("per_second", "burst", "paced"),
    [(20.0, 5, (20.0, 4)), (0.5, 1, (0.49, 1)), (None, 3, (None, 3))],
)
def test_a_declared_rate_is_paced_a_hair_inside_the_hosts_own(
    per_second: float | None, burst: int, paced: tuple[float | None, int]
) -> None:
    """One request of the burst (or 2% of the rate, with a burst of 1) is kept in hand for jitter."""
    state = Hosts({"h": HostSettings(per_second=per_second, burst=burst)}).get("h")
    rate = state.limiter.limit.per_second
    assert (None if rate is None else round(rate, 4), state.limiter.limit.burst) == paced


# -- retry decisions ------------------------------------------------------------------------------


def test_permanent_failures_are_final(clock: FakeClock) -> None:
    p = policy(clock)
    assert p.retry_delay(failed(ValueError("bad"))) is None
    assert p.retry_delay(failed(Status(404))) is None
    assert p.retry_delay(failed(KeyboardInterrupt())) is None
    assert p.stats.snapshot()["retries"] == 0


def test_rate_limited_failures_wait_at_least_their_retry_after(clock: FakeClock) -> None:
    p = policy(clock)
    delay = p.retry_delay(failed(Status(429, "2.5")))
    assert delay is not None and 2.5 <= delay <= 2.6
    assert (p.stats.retried, p.stats.retries) == (1, 1)


def test_transient_failures_stop_after_the_attempts(clock: FakeClock, events: list[str]) -> None:
    p = policy(clock, attempts=3, transient=True)
    assert p.retry_delay(failed(ConnectionResetError(), attempts=2)) is not None
    assert p.retry_delay(failed(ConnectionResetError(), attempts=3)) is None
    assert (p.stats.gave_up, p.stats.lost) == (1, 0)  # transient: given up, not "lost" to a rate limit
    assert any("3 attempts failed" in line for line in events)


def test_transient_failures_are_not_retried_unless_asked(clock: FakeClock) -> None:
    """By default a reset, a 502 or a 503 without Retry-After is final at once (the sequential loop meets
    it too); a 429 and a 503 with Retry-After are retried; a pattern of the config asks for a transient one."""
    p = policy(clock)
    assert p.retry_delay(failed(ConnectionResetError())) is None
    assert p.retry_delay(failed(Status(502))) is None
    assert p.retry_delay(failed(Status(503))) is None
    assert p.retry_delay(failed(Status(503, "1"))) is not None
    assert p.retry_delay(failed(Status(429))) is not None
    assert (p.stats.gave_up, p.stats.retried) == (0, 2)
    asked = policy(clock, patterns=("reset by peer",))
    assert asked.retry_delay(failed(ConnectionResetError("connection reset by peer"))) is not None


def test_a_refusal_in_a_run_no_more_than_sequential_is_not_retried(clock: FakeClock) -> None:
    """Refused (429, or 503 with Retry-After) while the run never had two calls or requests in flight:
    the sequential loop would have been refused too, so the loop gets it at once."""
    p = policy(clock, sequential=True)
    assert p.retry_delay(failed(Status(429))) is None
    assert p.retry_delay(failed(Status(503, "1"))) is None
    p.stats.sent(), p.stats.sent()  # two requests in flight: from now on a refusal may be ours
    assert p.retry_delay(failed(Status(429))) is not None


def test_a_503_with_retry_after_to_a_request_that_went_alone_is_final(clock: FakeClock) -> None:
    """A 503 with Retry-After in a crowded run is retried, unless its request went with no other of
    the run in flight (as the plain loop's): then it is the resource's (a page in maintenance), and
    the loop gets it at once. A 429 is retried either way (a rate window our burst may have spent)."""
    p = policy(clock)
    alone = failed(Status(503, "1"))
    alone.note.alone = True
    assert p.retry_delay(alone) is None
    assert p.retry_delay(failed(Status(503, "1"))) is not None  # it went with others in flight
    limited = failed(Status(429, "1"))
    limited.note.alone = True
    assert p.retry_delay(limited) is not None


def test_a_request_is_alone_when_no_other_of_the_run_is_in_flight() -> None:
    stats = RunStats()
    assert stats.sent() == 1
    assert stats.sent() == 2
    stats.answered()
    stats.answered()
    assert stats.sent() == 1


def test_refusals_do_not_count_against_the_transient_attempts(clock: FakeClock) -> None:
    """An item refused 8 times whose 9th attempt hits a reset is retried: the 3 attempts are for
    transient failures (it gave up at once, and the loop raised httpx.ReadError)."""
    p = policy(clock, attempts=3, transient=True)
    assert p.retry_delay(failed(ConnectionResetError(), attempts=9, refused=8)) is not None
    assert p.retry_delay(failed(ConnectionResetError(), attempts=11, refused=8)) is None


def test_rate_limited_items_are_retried_until_the_deadline_then_lost(clock: FakeClock) -> None:
    p = policy(clock, deadline=10.0, attempts=1)
    assert p.retry_delay(failed(Status(429, "1"), attempts=7)) is not None  # attempts do not bound 429s
    clock.now += 9.5
    assert p.retry_delay(failed(Status(429, "1"), attempts=8)) is None
    assert (p.stats.gave_up, p.stats.lost) == (1, 1)


def test_no_retry_through_an_open_circuit(clock: FakeClock) -> None:
    p = policy(clock)
    slot = failed(Status(503, "1"))
    slot.note.bypassed = True
    assert p.retry_delay(slot) is None
    assert p.stats.lost == 1


def test_retry_disabled(clock: FakeClock) -> None:
    assert policy(clock, enabled=False).retry_delay(failed(Status(429, "1"))) is None


def test_extra_types_count_once_their_module_is_loaded(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    p = policy(clock, on=("fakeerrors:Busy.Again", "json:JSONDecodeError", "json:dumps"))
    assert p.retry_delay(failed(json.JSONDecodeError("x", "", 0))) is not None
    module = types.ModuleType("fakeerrors")

    class Busy:
        class Again(Exception):
            pass

    module.Busy = Busy  # type: ignore[attr-defined]
    error = Busy.Again("later")
    assert p.retry_delay(failed(error)) is None  # the module is not imported: nothing of it can be raised
    monkeypatch.setitem(sys.modules, "fakeerrors", module)
    assert p.retry_delay(failed(error)) is not None


def test_patterns_match_the_message(clock: FakeClock) -> None:
    p = policy(clock, patterns=("try again",))
    assert p.retry_delay(failed(RuntimeError("busy, try again later"))) is not None
    assert p.retry_delay(failed(RuntimeError("no such item"))) is None


def test_wait_timeout_adds_the_deadline_when_retrying() -> None:
    with_timeout = Target(loop=TargetSpec.parse("jobs:loop"), mode="prefetch", concurrency=4, timeout=2.0)
    assert Policy(with_timeout, Hosts()).wait_timeout == 122.0
    off = Target(
        loop=TargetSpec.parse("jobs:loop"),
        mode="prefetch",
        concurrency=4,
        timeout=2.0,
        retry=RetrySettings(enabled=False),
    )
    assert Policy(off, Hosts()).wait_timeout == 2.0
    assert Policy(target(), Hosts()).wait_timeout is None


# -- direct calls ---------------------------------------------------------------------------------


def test_direct_call_is_retried_in_the_callers_thread() -> None:
    p = Policy(target(initial=0.001, transient=True), Hosts())
    calls: list[object] = []

    def flaky(key: str) -> str:
        calls.append((threading.get_ident(), ATTEMPT.get() is not None))
        if len(calls) < 3:
            raise ConnectionResetError("reset")
        return key.upper()

    assert p.call(flaky, ("k",), {}) == "K"
    assert calls == [(threading.get_ident(), True)] * 3
    assert ATTEMPT.get() is None


def test_direct_call_raises_the_last_exception_when_final() -> None:
    p = Policy(target(initial=0.001, attempts=2), Hosts())

    def broken() -> None:
        raise ConnectionResetError("still reset")

    with pytest.raises(ConnectionResetError, match="still reset"):
        p.call(broken, (), {})


@pytest.mark.anyio
async def test_async_direct_call_is_retried_in_the_callers_task() -> None:
    p = Policy(target(initial=0.001, transient=True), Hosts())
    calls = []

    async def flaky() -> int:
        calls.append(1)
        if len(calls) < 2:
            raise TimeoutError
        return 7

    assert await p.acall(flaky, (), {}) == 7
    assert len(calls) == 2


@pytest.mark.anyio
async def test_an_async_direct_retry_waits_without_the_sleeps_skip_sleeps_may_patch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop's own retry waits its delay in its task, where ``skip_sleeps`` makes the async
    sleeps return at once: it must not be one of them (it would hammer a refusing host)."""
    import time

    import anyio

    async def skipped(delay: float) -> None:
        raise AssertionError("a retry's wait went through anyio.sleep")

    monkeypatch.setattr(anyio, "sleep", skipped)
    p = Policy(target(initial=0.05, maximum=0.05, transient=True), Hosts(), rng=Random(1))
    calls: list[float] = []

    async def flaky() -> int:
        calls.append(time.monotonic())
        if len(calls) < 2:
            raise TimeoutError
        return 7

    assert await p.acall(flaky, (), {}) == 7
    assert len(calls) == 2 and calls[1] - calls[0] > 0


@pytest.mark.anyio
async def test_async_attempt_is_cut_at_the_timeout() -> None:
    import anyio

    slow = Target(
        loop=TargetSpec.parse("jobs:loop"),
        mode="prefetch",
        concurrency=4,
        timeout=0.05,
        retry=RetrySettings(transient=True),
    )
    p = Policy(slow, Hosts())

    async def hang() -> None:
        await anyio.sleep(5)

    slot: Slot[None] = Slot(hang, (), {})
    with anyio.fail_after(2):
        delay = await p.aattempt(slot)
    assert isinstance(slot.error, TimeoutError) and delay is not None
    assert p.stats.timeouts == 1


def test_run_stats_snapshot() -> None:
    stats = RunStats()
    stats.sent()
    stats.sent()
    stats.answered()
    stats.waited(0.25)
    stats.waited(0.0001)  # below the noise floor
    stats.add("http_429", 3)
    snap = stats.snapshot()
    assert (snap["requests"], snap["peak_requests"], snap["http_429"], snap["limit_wait"]) == (2, 2, 3, 0.25)
