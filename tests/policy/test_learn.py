"""The rate learned from a host's refusals (``_learn``), driven on simulated time: a token-bucket
host, a host that refuses a share of requests whatever the load, a host that halves its limit."""

from __future__ import annotations

import heapq
import math
import random

import pytest

from sched_accel._policy._host_limit import HostLimit
from sched_accel._policy._learn import RateLearner
from sched_accel._policy._limiter import HostLimiter


class Bucket:
    """The host: ``rate`` a second, ``burst`` at once; ``refuse`` a share at random as well."""

    def __init__(self, rate: float, burst: int, refuse: float = 0.0, seed: int = 1) -> None:
        self.rate, self.burst, self.refuse = rate, burst, refuse
        self.tokens, self.at = float(burst), 0.0
        self.rng = random.Random(seed)

    def admit(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.refuse and self.rng.random() < self.refuse:
            return False
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def drive(
    learner: RateLearner,
    host: Bucket,
    *,
    seconds: float,
    wave: int = 8,
    latency: float = 0.05,
    change: tuple[float, float] | None = None,
) -> tuple[int, list[tuple[float, float | None]]]:
    """Send as fast as the learner allows (a first wave of ``wave`` at once, unpaced), for
    ``seconds``; refusals answer at once, successes after ``latency``. Returns the refusals and
    the rate over time. ``change``: (when, new rate) of the host."""
    answers: list[tuple[float, int, bool]] = []
    refused = sent = 0
    rates: list[tuple[float, float | None]] = []
    now, in_flight = 0.0, 0

    def send(at: float) -> None:
        nonlocal sent, refused, in_flight
        sent += 1
        ok = host.admit(at)
        refused += not ok
        in_flight += 1
        heapq.heappush(answers, (at + (latency if ok else 0.001), sent, ok))

    def answer_until(until: float) -> None:
        nonlocal in_flight
        while answers and answers[0][0] <= until:
            at, number, ok = heapq.heappop(answers)
            in_flight -= 1
            if ok:
                learner.accepted(at)
            else:
                learner.refused(number, at, dominant=True, admitted=sent, in_flight=in_flight)

    for _ in range(wave):
        send(0.0)
    while now < seconds:
        if change and now >= change[0]:
            host.rate, change = change[1], None
        rate = learner.rate(now)
        step = 0.001 if rate is None else 1 / rate
        answer_until(now + step)
        now += step
        if learner.rate(now) is not None or rate is None:
            send(now)
        rates.append((now, learner.rate(now)))
    answer_until(math.inf)
    return refused, rates


def mean_rate(rates: list[tuple[float, float | None]], after: float) -> float:
    tail = [r for t, r in rates if t >= after and r is not None]
    return sum(tail) / len(tail)


def test_a_token_bucket_host_is_paced_near_its_rate_with_few_refusals() -> None:
    learner = RateLearner()
    refused, rates = drive(learner, Bucket(20, 5), seconds=10)
    assert learner.learning and not learner.off
    assert refused <= 20
    assert 18 <= mean_rate(rates, 2.0) <= 22
    assert 19 <= learner.top <= 23


def test_a_host_refusing_a_share_whatever_the_load_makes_the_learner_stand_down() -> None:
    """25% refused at random and no rate limit: cutting does not help, so it stops cutting."""
    for seed in range(12):
        learner = RateLearner()
        drive(learner, Bucket(1e6, 10**6, refuse=0.25, seed=seed), seconds=12)
        assert learner.off and learner.rate(12.0) is None, seed


def test_in_a_crowd_of_processes_it_stands_down_only_once_its_rate_fell_as_many_times_further() -> None:
    """With 4 processes alive, refusals its own rate did not cause (the others') are no sign
    that refusals ignore the rate: it stands down at 0.6 / 4 of its peak, not at 0.6. The
    random refuser that makes a lone learner stand down in 8 s keeps a crowded one cutting
    for 20 s; a token bucket host is learned alike."""
    alone, crowded = RateLearner(), RateLearner()
    crowded.crowd = 4
    for learner in (alone, crowded):
        drive(learner, Bucket(1e6, 10**6, refuse=0.25, seed=1), seconds=20)
    assert alone.off and not crowded.off and crowded.learning
    crowded = RateLearner()
    crowded.crowd = 4
    refused, rates = drive(crowded, Bucket(20, 5), seconds=10)
    assert not crowded.off and refused <= 20 and 18 <= mean_rate(rates, 2.0) <= 22


def test_a_halved_limit_is_followed_down() -> None:
    learner = RateLearner()
    refused, rates = drive(learner, Bucket(40, 5), seconds=12, change=(4.0, 20.0))
    assert not learner.off
    assert mean_rate(rates, 7.0) <= 23
    assert refused <= 40


def test_a_refusal_not_dominating_does_not_start_learning() -> None:
    learner = RateLearner()
    assert not learner.refused(3, 1.0, dominant=False, admitted=5, in_flight=2)
    assert learner.rate(1.0) is None


def test_refusals_of_requests_sent_before_a_cut_echo_it() -> None:
    learner = RateLearner()
    for t in (0.1, 0.2, 0.3, 0.4, 0.5):
        learner.accepted(t)
    assert learner.refused(9, 0.5, dominant=True, admitted=10, in_flight=2)
    first = learner.rate(0.6)
    assert not learner.refused(10, 0.6, dominant=True, admitted=12, in_flight=2)  # sent before the start
    assert learner.rate(0.6) == first
    assert learner.refused(11, 0.7, dominant=True, admitted=14, in_flight=2)  # sent after it: a cut
    assert (learner.rate(0.7) or 0) < (first or 0) * 2 ** (0.1 / 0.1)


def test_a_kept_rate_is_held_a_little_under_before_probing() -> None:
    learner = RateLearner()
    learner.start_at(20.0, 100.0)
    assert learner.rate(100.0) == pytest.approx(19.0)
    assert learner.rate(102.9) == pytest.approx(19.0)
    assert (learner.rate(110.0) or 0) > 20


def test_the_limiter_learns_only_what_nobody_declared_or_told() -> None:
    clock = [0.0]
    declared = HostLimiter("h", HostLimit(None, 10.0, 1), clock=lambda: clock[0])
    told = HostLimiter("t", HostLimit(None, None), clock=lambda: clock[0])
    told.learn_rate(5.0)
    silent = HostLimiter("s", HostLimit(None, None), clock=lambda: clock[0])
    for limiter in (declared, told, silent):
        numbers = [limiter.admit_now() for _ in range(4)]
        for number in numbers:
            limiter.on_overload(429, number)
    assert not declared.learning and not told.learning and silent.learning
    assert silent.kept is None  # nothing measured yet: kept only after a cut
    assert told.kept == (5.0, "told") and declared.kept is None
    assert silent.try_acquire() > 0  # paced from the refusal on: its bucket starts empty
