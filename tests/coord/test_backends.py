"""The behaviour every backend promises (``_base.Backend``), run on the process, machine and
redis backends alike; what only shared stores promise, across instances and real processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from sched_accel._coord import Backend, _redis
from sched_accel._coord._redis import RedisBackend
from sched_accel._exceptions import CoordinationUnavailable, SchedAccelError

from .helpers import Spec, results, run_child, start_at, start_child

SLACK = 0.002  # redis answers in whole milliseconds, rounded up


def test_gcra_admits_the_burst_then_paces_at_the_rate(backend: Backend) -> None:
    """Burst 3 at 5/s: three at once, then a wait of about one interval (0.2 s), nothing taken."""
    assert [backend.admit("api", per_second=5, burst=3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = backend.admit("api", per_second=5, burst=3)
    assert 0.1 < wait <= 0.2 + SLACK
    again = backend.admit("api", per_second=5, burst=3)  # the refused ask took nothing
    assert 0.1 < again <= wait + SLACK
    time.sleep(again)
    assert backend.admit("api", per_second=5, burst=3) == 0.0
    assert 0.15 < backend.admit("api", per_second=5, burst=3) <= 0.2 + SLACK


def test_hosts_have_their_own_rates(backend: Backend) -> None:
    """One host's spent burst leaves another's whole."""
    assert backend.admit("a", per_second=1, burst=1) == 0.0
    assert backend.admit("a", per_second=1, burst=1) > 0.5
    assert backend.admit("b", per_second=1, burst=1) == 0.0


def test_threads_share_the_burst_exactly(backend: Backend) -> None:
    """Eight threads asking at once get exactly the burst's five slots."""
    got: list[float] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        got.extend(backend.admit("api", per_second=0.5, burst=5) for _ in range(2))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got.count(0.0) == 5 and len(got) == 16


def test_a_pause_holds_admission_and_is_never_shortened(backend: Backend) -> None:
    """A pause makes admit wait at least what is left of it; a shorter one keeps the longer."""
    assert backend.paused_for("api") == 0.0
    backend.pause("api", 0.5)
    backend.pause("api", 0.1)
    assert 0.4 < backend.paused_for("api") <= 0.5
    assert 0.4 < backend.admit("api", per_second=100, burst=10) <= 0.5 + SLACK
    backend.pause("api", 0.0)  # nothing to hold: a no-op
    backend.pause("api", 5.0)
    assert 4.9 < backend.paused_for("api") <= 5.0
    assert backend.paused_for("other") == 0.0 and backend.admit("other", per_second=1, burst=1) == 0.0


def test_a_pause_ends_by_itself(backend: Backend) -> None:
    """Once its time is out, the host admits again: nothing was taken while it held."""
    backend.pause("api", 0.15)
    assert backend.admit("api", per_second=10, burst=1) > 0.1
    time.sleep(0.16)
    assert backend.paused_for("api") == 0.0
    assert backend.admit("api", per_second=10, burst=1) == 0.0


def test_leases_bound_the_places_and_expire(backend: Backend) -> None:
    """Two places: a third lease is refused until one is released, or the leases expire."""
    first = backend.lease("api", limit=2, ttl=0.2)
    second = backend.lease("api", limit=2, ttl=0.2)
    assert first and second and first != second
    assert backend.lease("api", limit=2, ttl=0.2) is None
    assert backend.lease("other", limit=2, ttl=0.2) is not None
    backend.release("api", first)
    backend.release("api", first)  # twice, or unknown, or not even an id: ignored
    backend.release("api", "not-a-lease")
    third = backend.lease("api", limit=2, ttl=0.2)
    assert third is not None and backend.lease("api", limit=2, ttl=0.2) is None
    time.sleep(0.25)  # the holders "crashed": their places come back
    assert backend.lease("api", limit=2, ttl=5) is not None
    assert backend.lease("api", limit=2, ttl=5) is not None
    assert backend.lease("api", limit=2, ttl=5) is None


@pytest.mark.slow
def test_renewed_leases_outlive_their_first_ttl(backend: Backend) -> None:
    """A renewed lease holds its place past its first ttl; an expired one is not brought back,
    nor an unknown id made a place."""
    dropped = backend.lease("api", limit=2, ttl=0.05)
    kept = backend.lease("api", limit=2, ttl=0.3)
    assert kept and dropped
    time.sleep(0.1)
    backend.renew("api", [kept, dropped, "f" * 32, "not-a-lease"], ttl=0.6)
    time.sleep(0.3)  # kept's first ttl is over
    assert backend.lease("api", limit=2, ttl=5) is not None  # dropped's place, and only that one
    assert backend.lease("api", limit=2, ttl=5) is None
    backend.renew("api", [], ttl=1)
    backend.renew("idle", [kept], ttl=1)
    time.sleep(0.35)
    assert backend.lease("api", limit=2, ttl=5) is not None  # kept ran out in the end


def test_a_pause_is_lifted_only_when_no_longer_one_was_asked(backend: Backend) -> None:
    """lift ends a pause with at most ``at_most`` left; a longer one (asked since) holds."""
    backend.pause("api", 0.5)
    backend.lift("api", at_most=0.2)
    assert backend.paused_for("api") > 0.3
    backend.lift("api", at_most=0.6)
    assert backend.paused_for("api") == 0.0
    assert backend.admit("api", per_second=5, burst=1) == 0.0
    backend.lift("never-paused", at_most=1)
    assert backend.paused_for("never-paused") == 0.0


def test_a_learned_rate_is_kept(backend: Backend) -> None:
    """The rate a host told is read back; an unknown host has none."""
    assert backend.learned_rate("api") is None
    backend.learn_rate("api", 20)
    backend.learn_rate("api", 12.5)
    assert backend.learned_rate("api") == 12.5
    assert backend.learned_rate("other") is None


def test_heartbeats_count_live_processes(backend: Backend) -> None:
    """Each id counts once while its heartbeat is in force."""
    assert backend.live_processes() == 0
    backend.heartbeat("worker-1", ttl=5)
    backend.heartbeat("worker-2", ttl=0.15)
    backend.heartbeat("worker-1", ttl=5)
    assert backend.live_processes() == 2
    time.sleep(0.2)
    assert backend.live_processes() == 1


def test_claim_one_winner_per_tick_and_increasing_tokens(backend: Backend) -> None:
    """The first claim of a tick wins token 1; the same or an earlier tick is refused; the
    next tick wins the next token; once the claim expires its tick can be had again."""
    assert backend.claim("job", 10, ttl=0.2) == 1
    assert backend.claim("job", 10, ttl=0.2) is None
    assert backend.claim("job", 9, ttl=0.2) is None
    assert backend.claim("job", 11, ttl=0.2) == 2
    assert backend.claim("other", 11, ttl=0.2) == 1
    time.sleep(0.25)
    assert backend.claim("job", 11, ttl=0.2) == 3


def test_a_tick_lived_again_after_the_wall_clock_stepped_back_is_claimed_once_more(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hourly ticks, each claim with the caller's wall clock: tick 5 claimed 100 s into it. At
    once, the wall clock stepped back 98 s (2 s into tick 5): the claim, read on that clock, fell
    in tick 5 too, so it is refused, as is a claim without the caller's clock. 0.3 s later the
    clock reads 0.1 s into tick 5: the claim fell 0.2 s before tick 5 on it, in tick 4, so tick 5
    is a window lived again and is claimed once more (once). A claim the Redis backend holds from
    another machine is compared with nothing: that machine's clock is not ours."""
    hour = 3600.0
    assert backend.claim("job", 5, ttl=3 * hour, at=5 * hour + 100, period=hour) == 1
    assert backend.claim("job", 5, ttl=3 * hour, at=5 * hour + 2, period=hour) is None
    assert backend.claim("job", 5, ttl=3 * hour) is None
    time.sleep(0.3)
    if isinstance(backend, RedisBackend):
        monkeypatch.setattr(_redis, "_MACHINE", "another-machine")
        assert backend.claim("job", 5, ttl=3 * hour, at=5 * hour + 0.1, period=hour) is None
        monkeypatch.undo()
    assert backend.claim("job", 5, ttl=3 * hour, at=5 * hour + 0.1, period=hour) == 2
    assert backend.claim("job", 5, ttl=3 * hour, at=5 * hour + 0.1, period=hour) is None


def test_bad_arguments_are_refused_by_name(backend: Backend) -> None:
    """Limits are checked up front: the error names the argument."""
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: backend.admit("api", per_second=0, burst=1), "per_second"),
        (lambda: backend.admit("api", per_second=float("inf"), burst=1), "per_second"),
        (lambda: backend.admit("api", per_second=1, burst=0), "burst"),
        (lambda: backend.admit("", per_second=1, burst=1), "host"),
        (lambda: backend.lease("api", limit=0, ttl=1), "limit"),
        (lambda: backend.lease("api", limit=1, ttl=0), "ttl"),
        (lambda: backend.pause("api", -1), "seconds"),
        (lambda: backend.pause("api", float("nan")), "seconds"),
        (lambda: backend.learn_rate("api", -2), "per_second"),
        (lambda: backend.heartbeat("p", ttl=True), "ttl"),
        (lambda: backend.claim("job", 1.5, ttl=1), "tick"),  # type: ignore[arg-type]
        (lambda: backend.claim("job", 2**60, ttl=1), "tick"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=name):
            call()


def test_a_closed_backend_is_unavailable(backend: Backend) -> None:
    """After close(), calls raise our one error (the caller falls back), never a raw one."""
    backend.close()
    with pytest.raises(CoordinationUnavailable) as raised:
        backend.admit("api", per_second=1, burst=1)
    assert isinstance(raised.value, SchedAccelError)


# -- shared by instances and by processes: the machine and redis backends -----------------


def test_instances_share_every_fact(shared_spec: Spec) -> None:
    """Two instances on one store: one's burst, pause, leases, rate and claims are the other's."""
    one, two = shared_spec.build(), shared_spec.build()
    try:
        assert one.admit("api", per_second=1, burst=1) == 0.0
        assert two.admit("api", per_second=1, burst=1) > 0.5
        one.pause("paused", 2)
        assert 1.0 < two.paused_for("paused") <= 2  # a 2 s pause, read within a second on a loaded machine
        assert one.lease("api", limit=1, ttl=5) is not None and two.lease("api", limit=1, ttl=5) is None
        one.learn_rate("api", 7.0)
        assert two.learned_rate("api") == 7.0
        assert one.claim("job", 1, ttl=5) == 1 and two.claim("job", 1, ttl=5) is None
        assert two.claim("job", 2, ttl=5) == 2
    finally:
        one.close()
        two.close()


@pytest.mark.slow
def test_a_pause_seen_by_one_process_holds_the_others(shared_spec: Spec) -> None:
    """A child process pauses the host (its Retry-After); this process, and another child, see it."""
    run_child(shared_spec, "pause", host="api", seconds=3)
    backend = shared_spec.build()
    try:
        # what is left of the child's 3 s pause: a child's start and exit on a loaded machine may take a second or two
        assert 0.5 < backend.admit("api", per_second=100, burst=10) <= 3
    finally:
        backend.close()
    assert 0 < run_child(shared_spec, "paused_for", host="api") <= 3


@pytest.mark.slow
def test_one_winner_per_tick_across_processes(shared_spec: Spec) -> None:
    """Four processes race through 30 ticks: each tick has exactly one winner, and the
    fencing tokens increase with the tick."""
    when = start_at()
    children = [start_child(shared_spec, "claim_ticks", key="job", ticks=30, start_at=when) for _ in range(4)]
    seen = results(children)
    winners = {tick: [got[str(tick)] for got in seen if got[str(tick)] is not None] for tick in range(30)}
    assert all(len(tokens) == 1 for tokens in winners.values()), winners
    tokens = [winners[tick][0] for tick in range(30)]
    assert tokens == sorted(tokens) and len(set(tokens)) == 30


@pytest.mark.slow
def test_processes_share_one_rate(shared_spec: Spec) -> None:
    """Four processes taking all they can from 40/s burst 4 for a second get the one rate
    between them (not four times it), and most of it."""
    when = start_at()
    children = [
        start_child(shared_spec, "admit_for", host="api", per_second=40, burst=4, seconds=1.0, start_at=when)
        for _ in range(4)
    ]
    times = sorted(t for got in results(children) for t in got)
    span = times[-1] - times[0]
    assert len(times) <= 4 + 40 * span + 1
    assert len(times) >= 0.75 * (4 + 40 * 0.9)
    assert sum(1 for got in times if got - times[0] < 0.5) <= 4 + 40 * 0.5 + 1


@pytest.mark.slow
def test_leases_and_heartbeats_across_processes(shared_spec: Spec) -> None:
    """A child's lease holds a place here; children's heartbeats are counted here."""
    assert run_child(shared_spec, "lease", host="api", limit=1, ttl=30) is not None
    assert run_child(shared_spec, "heartbeat", id="child-1", ttl=30) == 1
    assert run_child(shared_spec, "heartbeat", id="child-2", ttl=30) == 2
    backend = shared_spec.build()
    try:
        assert backend.lease("api", limit=1, ttl=30) is None
        assert backend.live_processes() == 2
    finally:
        backend.close()
