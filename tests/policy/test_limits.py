"""Per-host limits: the pure core on a fake clock, then threads and anyio tasks for real."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable

import anyio
import pytest

from sched_accel._policy import HostLimit, HostLimiter

from ..conftest import FakeClock


def make(
    concurrency: int | None = None, per_second: float | None = None, burst: int = 1
) -> tuple[HostLimiter, FakeClock]:
    """A limiter for host "api.test" on a fake clock."""
    clock = FakeClock()
    return HostLimiter("api.test", HostLimit(concurrency, per_second, burst), clock=clock), clock


# -- HostLimit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"concurrency": 0, "per_second": None}, "concurrency"),
        ({"concurrency": 2.5, "per_second": None}, "concurrency"),
        ({"concurrency": True, "per_second": None}, "concurrency"),
        ({"concurrency": None, "per_second": 0}, "per_second"),
        ({"concurrency": None, "per_second": -1.0}, "per_second"),
        ({"concurrency": None, "per_second": math.inf}, "per_second"),
        ({"concurrency": None, "per_second": math.nan}, "per_second"),
        ({"concurrency": None, "per_second": "5"}, "per_second"),
        ({"concurrency": None, "per_second": 1.0, "burst": 0}, "burst"),
        ({"concurrency": None, "per_second": 1.0, "burst": 1.5}, "burst"),
    ],
)
def test_host_limit_rejects_bad_values_naming_field_value_and_allowed(kwargs: dict[str, object], field: str) -> None:
    """A bad HostLimit field raises ValueError naming the field, the value and what is allowed."""
    with pytest.raises(ValueError, match=field) as info:
        HostLimit(**kwargs)  # type: ignore[arg-type]
    assert repr(kwargs[field]) in str(info.value)
    assert ">" in str(info.value)


def test_host_limit_is_frozen_and_slotted() -> None:
    """HostLimit is an immutable, slotted value with burst defaulting to 1."""
    limit = HostLimit(concurrency=3, per_second=0.5)
    assert limit.burst == 1
    assert not hasattr(limit, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        limit.burst = 2  # type: ignore[misc]


# -- the pure core on a fake clock --------------------------------------------------------


def test_token_bucket_allows_burst_at_once_then_per_second() -> None:
    """A full bucket lets `burst` requests go at once, then one per 1/per_second seconds."""
    limiter, clock = make(per_second=4, burst=3)
    for _ in range(3):
        assert limiter.try_acquire() == 0.0
        limiter.release()
    assert limiter.try_acquire() == pytest.approx(0.25)
    clock.now += 0.1
    assert limiter.try_acquire() == pytest.approx(0.15)
    clock.now += 0.15
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == pytest.approx(0.25)


def test_token_bucket_refills_only_up_to_burst() -> None:
    """A long idle spell refills at most `burst` tokens."""
    limiter, clock = make(per_second=10, burst=2)
    clock.now += 3600
    assert [limiter.try_acquire() for _ in range(3)] == [0.0, 0.0, pytest.approx(0.1)]
    assert limiter.statistics().requests == 2


def test_concurrency_bound_refuses_until_release_without_taking_a_token() -> None:
    """With every place taken the caller waits until woken (inf), and no token is spent."""
    limiter, _ = make(concurrency=2, per_second=1, burst=3)
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == math.inf
    limiter.release()
    assert limiter.try_acquire() == 0.0  # the third token was still there
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        for _ in range(3):
            limiter.release()


def test_pause_until_holds_dispatch_and_is_never_shortened() -> None:
    """A pause holds every caller until its deadline; a shorter pause does not cut it."""
    limiter, clock = make(concurrency=4)
    limiter.pause_until(clock.now + 2)
    limiter.pause_until(clock.now + 1)
    assert limiter.try_acquire() == pytest.approx(2)
    clock.now += 1.5
    assert limiter.try_acquire() == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.try_acquire() == 0.0
    limiter.pause_for(0.25)
    assert limiter.try_acquire() == pytest.approx(0.25)


def test_pause_and_token_wait_combine_as_the_later_of_the_two() -> None:
    """Tokens keep refilling during a pause: the wait is the later of pause end and next token."""
    limiter, clock = make(per_second=1, burst=1)
    assert limiter.try_acquire() == 0.0
    limiter.release()
    limiter.pause_for(0.25)
    assert limiter.try_acquire() == pytest.approx(1.0)
    limiter.pause_for(3)
    assert limiter.try_acquire() == pytest.approx(3.0)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_pause_rejects_non_finite_deadlines(bad: float) -> None:
    """pause_until and pause_for refuse deadlines that would never (or already never) end."""
    limiter, _ = make()
    with pytest.raises(ValueError, match="deadline"):
        limiter.pause_until(bad)
    with pytest.raises(ValueError, match="seconds"):
        limiter.pause_for(bad if bad == bad else -1.0)


def test_aimd_halves_on_overload_down_to_one() -> None:
    """Each overload halves the adaptive limit, never below 1."""
    limiter, _ = make(concurrency=8)
    assert limiter.current_limit == 8
    seen = []
    for _ in range(5):
        limiter.on_overload(status=503)
        seen.append(limiter.current_limit)
    assert seen == [4, 2, 1, 1, 1]


def test_aimd_grows_by_one_per_window_of_successes_up_to_the_bound() -> None:
    """Growth is +1 per `current_limit` successes, and stops at the configured concurrency."""
    limiter, _ = make(concurrency=6)
    limiter.on_overload()
    limiter.on_overload()
    assert limiter.current_limit == 1
    steps = []
    for _ in range(1 + 2 + 3 + 4 + 5 + 10):
        limiter.on_success()
        steps.append(limiter.current_limit)
    assert steps[0] == 2  # 1 success at limit 1
    assert steps[2] == 3  # then 2 at limit 2
    assert steps[1 + 2 + 3 - 1] == 4
    assert steps[1 + 2 + 3 + 4 - 1] == 5
    assert steps[1 + 2 + 3 + 4 + 5 - 2] == 5
    assert steps[1 + 2 + 3 + 4 + 5 - 1] == 6
    assert max(steps) == 6 == limiter.current_limit


def test_aimd_limit_bounds_admission() -> None:
    """After a decrease, only `current_limit` requests are admitted at once."""
    limiter, _ = make(concurrency=4)
    limiter.on_overload(status=503)
    assert [limiter.try_acquire() for _ in range(3)] == [0.0, 0.0, math.inf]


def test_a_lone_429_among_successes_is_not_an_overload() -> None:
    """One 429 among successes (a per-key limit, a share refused at random) neither halves the
    limit nor pauses the host; refusals dominating the recent answers do both."""
    limiter, clock = make(concurrency=8)
    for number in range(1, 6):
        limiter.on_success(number)
    limiter.on_overload(status=429, number=6)
    limiter.pause_for(1.0, refused=6)
    assert limiter.current_limit == 8 and limiter.try_acquire() == 0.0
    for number in range(7, 15):
        limiter.on_overload(status=429, number=number)
    limiter.pause_for(1.0, refused=14)
    assert limiter.current_limit == 4 and limiter.try_acquire() == pytest.approx(1.0)


def test_refusals_are_judged_in_the_order_requests_were_sent() -> None:
    """Refusals answered at once overtake the successes sent before them (still in flight):
    counted by request number, those count as not refused, so a wave whose first answers are
    a quarter's refusals is no overload."""
    limiter, _ = make(concurrency=8)
    for number in (2, 5):  # of requests 1-8, two refused, answered before the six successes
        limiter.on_overload(status=429, number=number)
    assert limiter.current_limit == 8
    limiter.pause_for(1.0, refused=5)
    assert limiter.try_acquire() == 0.0


def test_aimd_decreases_once_per_window_of_requests_in_flight() -> None:
    """Overloads from requests already in flight at a decrease do not halve again."""
    limiter, _ = make(concurrency=8)
    for _ in range(4):
        assert limiter.try_acquire() == 0.0
    for _ in range(4):
        limiter.on_overload(status=429)
    assert limiter.current_limit == 4
    for _ in range(4):
        limiter.release()
    limiter.on_overload(status=429)
    assert limiter.current_limit == 2
    assert limiter.statistics().rate_limited == 5


def test_aimd_off_without_a_concurrency_bound() -> None:
    """A host with no concurrency bound has no adaptive limit, but still counts overloads."""
    limiter, _ = make(per_second=100, burst=100)
    limiter.on_overload(status=429)
    limiter.on_success()
    assert limiter.current_limit is None
    assert [limiter.try_acquire() for _ in range(50)] == [0.0] * 50
    assert limiter.statistics().overloads == 1


def test_line_is_first_come_first_served() -> None:
    """Only the first in line is admitted; its admission wakes the next; leaving wakes the next."""
    limiter, _ = make(concurrency=1)
    woken: list[str] = []
    first = limiter.join(lambda: woken.append("first"))
    second = limiter.join(lambda: woken.append("second"))
    third = limiter.join(lambda: woken.append("third"))
    assert limiter.try_acquire(ticket=second) == math.inf
    assert limiter.try_acquire() == math.inf  # a caller without a ticket cannot jump the line
    assert limiter.try_acquire(ticket=first) == 0.0
    assert woken == ["second"]
    assert limiter.try_acquire(ticket=second) == math.inf  # no place free
    limiter.leave(second)
    assert woken == ["second", "third"]
    limiter.release()
    assert woken == ["second", "third", "third"]
    assert limiter.try_acquire(ticket=third) == 0.0
    assert limiter.statistics().queued == 0


def test_statistics_count_requests_waits_and_overloads() -> None:
    """The snapshot counts admissions, waits and their time, overloads, 429s, peak and limits."""
    limiter, clock = make(concurrency=4, per_second=2, burst=2)
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == 0.0
    ticket = limiter.join(now=clock.now)
    assert limiter.try_acquire(ticket=ticket) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.try_acquire(ticket=ticket) == 0.0
    limiter.on_overload(status=429)
    limiter.on_overload(status=None)
    limiter.release()
    stats = limiter.statistics()
    assert dataclasses.asdict(stats) == {
        "host": "api.test",
        "requests": 3,
        "waits": 1,
        "wait_seconds": pytest.approx(0.5),
        "overloads": 2,
        "rate_limited": 1,
        "in_flight": 2,
        "peak_in_flight": 3,
        "queued": 0,
        "current_limit": 2,
        "lowest_limit": 2,
        "pauses_lifted": 0,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.requests = 0  # type: ignore[misc]


# -- threads, real time (tiny intervals, loose bounds) ------------------------------------


def run_threads(count: int, target: Callable[[], None]) -> None:
    """Run ``target`` in ``count`` threads at once (released together: a loaded machine starts
    threads slowly, and one that starts late may find a refilled bucket) and wait for all of them."""
    barrier = threading.Barrier(count)

    def together() -> None:
        barrier.wait(timeout=10)
        target()

    threads = [threading.Thread(target=together) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)


def test_threads_never_exceed_the_concurrency_bound() -> None:
    """20 threads through a limit of 3: never more than 3 inside, and all of them get through."""
    limiter = HostLimiter("h", HostLimit(concurrency=3, per_second=None))
    inside, peak, done = [0], [0], []
    lock = threading.Lock()

    def work() -> None:
        with limiter.acquire_sync():
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.002)
            with lock:
                inside[0] -= 1
        done.append(1)

    run_threads(20, work)
    assert len(done) == 20
    assert peak[0] <= 3
    stats = limiter.statistics()
    assert stats.requests == 20 and stats.in_flight == 0 and stats.queued == 0
    assert stats.peak_in_flight == peak[0]


def test_threads_follow_the_token_rate_after_the_burst() -> None:
    """12 requests at 200/s with burst 4 take at least (12 - 4) / 200 s."""
    limiter = HostLimiter("h", HostLimit(concurrency=None, per_second=200, burst=4))
    started = time.monotonic()

    def work() -> None:
        with limiter.acquire_sync():
            pass

    run_threads(12, work)
    assert time.monotonic() - started >= 8 / 200 * 0.9
    assert limiter.statistics().waits >= 1  # 12 at once through a burst of 4


def test_pause_holds_every_thread() -> None:
    """After pause_for(), no thread gets in before the deadline."""
    limiter = HostLimiter("h", HostLimit(concurrency=10, per_second=None))
    deadline = time.monotonic() + 0.03
    limiter.pause_until(deadline)
    entered: list[float] = []

    def work() -> None:
        with limiter.acquire_sync():
            entered.append(time.monotonic())

    run_threads(5, work)
    assert len(entered) == 5 and min(entered) >= deadline


def test_threads_are_admitted_in_arrival_order() -> None:
    """Waiting threads get the one place in the order they queued."""
    limiter = HostLimiter("h", HostLimit(concurrency=1, per_second=None))
    order: list[int] = []
    assert limiter.try_acquire() == 0.0
    threads = []
    for index in range(5):

        def work(index: int = index) -> None:
            with limiter.acquire_sync():
                order.append(index)

        thread = threading.Thread(target=work)
        thread.start()
        threads.append(thread)
        while limiter.statistics().queued < index + 1:
            time.sleep(0.0005)
    limiter.release()
    for thread in threads:
        thread.join(timeout=10)
    assert order == [0, 1, 2, 3, 4]


def test_an_error_inside_the_block_still_releases() -> None:
    """The place is given back when the request raises."""
    limiter = HostLimiter("h", HostLimit(concurrency=1, per_second=None))
    with pytest.raises(OSError), limiter.acquire_sync():
        raise OSError("reset")
    assert limiter.statistics().in_flight == 0


# -- anyio tasks on asyncio and trio -------------------------------------------------------


@pytest.mark.anyio
async def test_tasks_never_exceed_the_concurrency_bound() -> None:
    """20 tasks through a limit of 3: never more than 3 inside, and all of them get through."""
    limiter = HostLimiter("h", HostLimit(concurrency=3, per_second=None))
    inside, peak, done = [0], [0], []

    async def work() -> None:
        async with limiter.acquire_async():
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
            await anyio.sleep(0.002)
            inside[0] -= 1
        done.append(1)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(work)
    assert len(done) == 20 and peak[0] == 3
    assert limiter.statistics().peak_in_flight == 3


@pytest.mark.anyio
async def test_pause_holds_every_task() -> None:
    """After a pause, no task gets in before the deadline."""
    limiter = HostLimiter("h", HostLimit(concurrency=10, per_second=None))
    deadline = time.monotonic() + 0.03
    limiter.pause_until(deadline)
    entered: list[float] = []

    async def work() -> None:
        async with limiter.acquire_async():
            entered.append(time.monotonic())

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(work)
    assert len(entered) == 5 and min(entered) >= deadline


@pytest.mark.anyio
async def test_a_cancelled_waiter_leaves_the_line() -> None:
    """A task cancelled while waiting gives up its place; the ones behind it still get in."""
    limiter = HostLimiter("h", HostLimit(concurrency=1, per_second=None))
    assert limiter.try_acquire() == 0.0
    admitted: list[str] = []
    scopes: dict[str, anyio.CancelScope] = {}

    async def work(name: str) -> None:
        with anyio.CancelScope() as scopes[name]:
            async with limiter.acquire_async():
                admitted.append(name)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(work, "first")
            await anyio.sleep(0.01)
            group.start_soon(work, "second")
            await anyio.sleep(0.01)
            assert limiter.statistics().queued == 2
            scopes["first"].cancel()
            await anyio.sleep(0.01)
            assert limiter.statistics().queued == 1
            limiter.release()
    assert admitted == ["second"]


@pytest.mark.anyio
async def test_a_task_is_woken_by_a_release_from_another_thread() -> None:
    """A task waiting for a place is woken when a plain thread releases it (no timeout to rely on)."""
    limiter = HostLimiter("h", HostLimit(concurrency=1, per_second=None))
    assert limiter.try_acquire() == 0.0
    timer = threading.Timer(0.02, limiter.release)
    timer.start()
    with anyio.fail_after(5):
        async with limiter.acquire_async():
            pass
    timer.join()
    assert limiter.statistics().waits == 1


# -- a pause lifted by a later answer ------------------------------------------------------------


def test_a_later_request_answered_lifts_the_pause() -> None:
    """Request 9 was refused with a Retry-After: the host pauses. Request 3's answer (sent before)
    does not lift it; request 10's (sent after, not refused) does: the host was not refusing everyone."""
    clock = FakeClock()
    limiter = HostLimiter("h", HostLimit(concurrency=None, per_second=None), clock=clock)
    numbers = []
    for _ in range(10):
        ticket = limiter.join()
        assert limiter.try_acquire(ticket=ticket) == 0.0
        numbers.append(ticket.number)
    assert numbers == list(range(1, 11))
    for number in range(4, 10):  # 6 of the 8 sent up to 9 refused: refusals dominate, a host-wide pause
        limiter.on_overload(429, number)
    limiter.pause_for(5.0, refused=9)
    limiter.on_success(3)
    assert limiter.try_acquire() == pytest.approx(5.0)
    limiter.on_success(10)
    assert limiter.try_acquire() < 1.0  # the pause is lifted (the rate learned from the refusals remains)
    assert limiter.statistics().pauses_lifted == 1


def test_fixed_concurrency_is_not_adapted() -> None:
    limiter = HostLimiter("h", HostLimit(concurrency=8, per_second=None, adaptive=False))
    limiter.on_overload(429)
    assert limiter.current_limit == 8 and limiter.statistics().rate_limited == 1


def test_a_rate_the_host_says_paces_its_requests_unless_one_is_declared() -> None:
    """learn_rate: one request at a time at the told rate (a hair inside); a declared rate wins."""
    clock = [0.0]
    told = HostLimiter("h", HostLimit(None, None), clock=lambda: clock[0])
    assert told.try_acquire() == 0.0 and told.try_acquire() == 0.0  # nothing known: no pacing
    told.learn_rate(10.0)
    assert told.try_acquire() == 0.0
    assert told.try_acquire() == pytest.approx(1 / 9.8)  # the next one a rate interval later
    declared = HostLimiter("d", HostLimit(None, 5.0, burst=1), clock=lambda: clock[0])
    declared.learn_rate(1000.0)
    assert declared.try_acquire() == 0.0 and declared.try_acquire() == pytest.approx(0.2)


def test_a_host_is_read_for_rate_fields_until_it_shows_it_sends_none() -> None:
    """HostState reads the first answers' rate-limit fields; a host that never sends them is
    not read again (a healthy answer costs nothing) until it refuses a request."""
    from sched_accel._policy._hosts import LISTEN, Hosts
    from sched_accel._policy._stats import RunStats

    class Answer:
        def __init__(self, status: int, headers: dict[str, str]) -> None:
            self.status_code, self.headers = status, headers

    state = Hosts().get("quiet.example")
    for _ in range(LISTEN):
        state.answered(Answer(200, {}), False, 1, RunStats())
    assert state.listen == 0
    state.answered(Answer(200, {"RateLimit-Policy": '"d";q=50;w=1'}), False, 1, RunStats())
    assert state.limiter._rate is None  # not read: the host was taken to send none
    state.answered(Answer(429, {"RateLimit-Policy": '"d";q=50;w=1', "Retry-After": "0"}), False, 2, RunStats())
    assert state.limiter._rate == pytest.approx(49.0) and state.listen > LISTEN  # read again, and from now on
    slow = Hosts().get("slow.example")
    slow.answered(Answer(200, {"RateLimit-Policy": '"d";q=1;w=86400'}), False, 1, RunStats())
    assert slow.limiter._rate is None  # one a day: a broken field, not a pace to keep


def test_a_told_remaining_budget_is_spent_at_once_up_to_a_second_of_it() -> None:
    """Told 20/s and 'remaining 4' after request 1: three more go at once (one kept in hand),
    then one at a time; a host told 2/s with 100 left gets at most 2 at once."""
    clock = FakeClock()
    limiter = HostLimiter("h", HostLimit(concurrency=None, per_second=None), clock=clock)
    limiter.learn_rate(20.0)
    assert limiter.admit_now() == 1
    limiter.spend(4, 1)
    assert [bool(limiter.admit_now()) for _ in range(4)] == [True, True, True, False]
    slow = HostLimiter("s", HostLimit(concurrency=None, per_second=None), clock=clock)
    slow.learn_rate(2.0)
    assert slow.admit_now() == 1
    slow.spend(100, 1)
    assert [bool(slow.admit_now()) for _ in range(3)] == [True, True, False]


def test_a_declared_rate_is_not_spent_from_what_the_host_says() -> None:
    limiter = HostLimiter("h", HostLimit(concurrency=None, per_second=1.0, burst=1), clock=FakeClock())
    assert limiter.admit_now() == 1
    limiter.spend(50, 1)
    assert limiter.admit_now() == 0


def test_tokens_at_the_wire_go_in_the_order_requests_were_admitted() -> None:
    """Request 3 waiting for its token is not overtaken by 4 and 5, and one cancelled while
    waiting leaves the line."""
    clock = FakeClock()
    limiter = HostLimiter("h", HostLimit(concurrency=None, per_second=10.0, burst=1), clock=clock)
    assert limiter.take_token(2) == 0.0  # the burst
    assert limiter.take_token(3) == pytest.approx(0.1)
    assert limiter.take_token(5) == pytest.approx(0.05)  # 3 is ahead (0.2 s): asked again after RECHECK
    clock.advance(0.1)
    assert limiter.take_token(4) > 0  # 3 is still ahead, though a token is there
    assert limiter.take_token(3) == 0.0
    plan = limiter.token(4)
    assert next(plan) == pytest.approx(0.1)  # 5 is behind it, not ahead
    plan.close()  # cancelled: out of the line
    clock.advance(0.1)
    assert limiter.take_token(5) == 0.0
