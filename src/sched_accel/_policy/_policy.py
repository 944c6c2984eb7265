"""Upstream-aware policy: what happens around each attempt of a per-item call.

A :class:`Policy` belongs to one run of a prefetched loop. A worker thread tries a call
through :meth:`Policy.attempt`, a worker task through :meth:`Policy.aattempt`, the loop
itself (the calls it makes directly) through :meth:`Policy.call` and :meth:`Policy.acall`,
with the same retries. Whatever may wait is written once, as a plan (``_drive``): an
attempt within the target's own rate, and each HTTP request within its host's limits
(:meth:`Policy.request`, driven by ``_http``); without a target rate an attempt has
nothing to wait for and runs without one. An attempt runs with itself made current
(:data:`ATTEMPT`), so that every HTTP request the call makes through httpx, requests or
urllib is seen. A failure is classified (``_retry``): rate-limited and transient ones are
tried again after a backoff that honours Retry-After, the slot going back in line without
a worker waiting for it; permanent ones, and any failure once the deadline has passed, are
final, and the loop sees the exception at its call site.
"""

from __future__ import annotations

import sys
import threading
import time
import urllib.error
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, replace
from random import Random
from typing import Any, TypeVar

import anyio

from .._engine import Places, Slot
from .._events import OVER_CONCURRENCY, RETRY_GAVE_UP
from .._log import event
from .._settings import RetrySettings, Target
from ._drive import GO, Plan, run_async, run_sync
from ._hosts import Hosts, HostState, rounded_down
from ._limiter import HostLimiter
from ._retry import Backoff, Failure, classify, status_of
from ._stats import RunStats

__all__ = ["ATTEMPT", "Policy", "Tries"]

R = TypeVar("R")


@dataclass(slots=True)
class Tries:
    """The policy's record of one slot across its attempts (kept in ``slot.note``)."""

    first_started: float
    attempts: int = 0
    transient: int = 0  # of them, those that failed transiently (a 429 is not: it is retried until the deadline)
    host: str | None = None  # the upstream host of its last HTTP request, if any
    bypassed: bool = False  # that host's circuit was open: no retry
    learning: bool = False  # that host's rate was being learned from its refusals
    #: Its last request went with no other request of the run in flight, as the plain loop's would.
    alone: bool = False
    #: The loop's own call (:meth:`Policy.call`), not one run ahead of it: its requests are
    #: counted as ``live`` by their host (``HostState.answered``), the others as ``ahead``.
    live: bool = False
    #: A call of a run that stepped aside for good (one at a time, as the plain loop makes it):
    #: its requests to a host with nothing to pace go as the plain loop's, counted and timed only.
    plain: bool = False


#: The attempt running in this thread or task: its run's policy, and the slot's tries.
ATTEMPT: ContextVar[tuple[Policy, Tries] | None] = ContextVar("sched_accel_attempt", default=None)

#: The host whose rate token the request being sent still owes (``Policy.request(wire=True)``),
#: taken by the library's connection as it writes it (``_http``): the wait for a connection (or
#: a busy event loop) is not spent holding a token the host's bucket never sees used.
DUE: ContextVar[tuple[HostLimiter, int] | None] = ContextVar("sched_accel_token_due", default=None)

_GIVE_UP_LINES = 5  #: give-ups logged one by one per run; the rest are only counted in the run's line


class Policy:
    """Retries, limits and statistics for one run of a target."""

    def __init__(
        self,
        target: Target,
        hosts: Hosts,
        *,
        limiter: HostLimiter | None = None,
        rng: Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = target.name
        self.retry: RetrySettings = target.retry
        self.timeout = target.timeout
        self.hosts = hosts
        self.limiter = limiter
        self.rng = rng or Random()
        self.clock = clock
        self.stats = RunStats()
        self.backoff = Backoff(
            initial=self.retry.initial,
            maximum=max(self.retry.maximum, self.retry.initial),
            deadline=self.retry.deadline,
        )
        self._types: dict[str, type[BaseException] | None] = dict.fromkeys(self.retry.on)
        self._give_up_lines = 0
        #: At most ``concurrency`` calls in flight: the workers' attempts and the loop's own.
        self.places = Places(target.concurrency, on_give_up=self._said_over)

    @property
    def wait_timeout(self) -> float | None:
        """How long the loop waits for a prefetched call before TimeoutError: the per-attempt
        timeout, plus the retry deadline when failed attempts are retried."""
        if self.timeout is None:
            return None
        return self.timeout + (self.retry.deadline if self.retry.enabled else 0.0)

    def _said_over(self, waited: float) -> None:
        """The loop waited ``waited`` s for one of the run's places: said once, in its run."""
        event(
            OVER_CONCURRENCY,
            f"the loop waited {waited:g} s for one of its {self.places.concurrency} places, held by calls run "
            "ahead of it (one may wait for something the loop holds: a lock, a pool of one connection); its "
            "calls in this run go without a place, so up to concurrency + 1 may be in flight",
            target=self.name,
            concurrency=self.places.concurrency,
        )

    # -- one attempt: one plan, two drivers ------------------------------------------------
    def _begin(self, slot: Slot[Any]) -> Tries:
        tries: Tries | None = slot.note
        if tries is None:
            tries = slot.note = Tries(self.clock())
        tries.attempts += 1
        self.stats.began()
        return tries

    def _verdict(self, slot: Slot[Any]) -> float | None:
        self.stats.ended()
        return None if slot.error is None else self.retry_delay(slot)

    def _attempt(self, slot: Slot[Any]) -> Plan[float | None]:
        """Try the slot's call once, within the target's own limit; the plan's value is None
        when final, else the retry delay. (Without a target limit there is nothing to wait
        for: :meth:`attempt` and :meth:`aattempt` then run the call without a plan.)"""
        token = ATTEMPT.set((self, self._begin(slot)))
        try:
            assert self.limiter is not None
            started = time.perf_counter()
            if not self.limiter.admit_now():  # admitted at once: no wait, however long that took
                yield from self.limiter.admission()
                self.stats.waited(time.perf_counter() - started)
            try:
                yield GO
            finally:
                self.limiter.release()
        finally:
            ATTEMPT.reset(token)
        return self._verdict(slot)

    def attempt(self, slot: Slot[Any]) -> float | None:
        """One attempt in this thread (a worker's ``attempt`` function), holding one of the
        run's places."""
        with self.places.ahead():
            return self._attempt_here(slot)

    def _attempt_here(self, slot: Slot[Any]) -> float | None:
        if self.limiter is not None:
            return run_sync(self._attempt(slot), slot.run)
        token = ATTEMPT.set((self, self._begin(slot)))
        try:
            slot.run()
        finally:
            ATTEMPT.reset(token)
        return self._verdict(slot)

    async def aattempt(self, slot: Slot[Any]) -> float | None:
        """One attempt of an async call in this task (a worker task's), holding one of the run's
        places, cancelled a little after ``timeout``."""
        async with self.places.aahead():
            return await self._aattempt_here(slot)

    async def _aattempt_here(self, slot: Slot[Any]) -> float | None:
        if self.limiter is not None:
            return await run_async(self._attempt(slot), self._arun, slot)
        token = ATTEMPT.set((self, self._begin(slot)))
        try:
            await self._arun(slot)
        finally:
            ATTEMPT.reset(token)
        return self._verdict(slot)

    async def _arun(self, slot: Slot[Any]) -> None:
        if self.timeout is None:
            try:
                slot.value = await slot.fn(*slot.args, **slot.kwargs)
            except Exception as exc:  # kept, re-raised where the loop consumes the call
                slot.error = exc
            return
        # A little past the timeout: an HTTP request's own (capped) timeout fires first,
        # so the loop sees the library's exception, as it would have; this catches the rest.
        with anyio.move_on_after(self.timeout * 1.1 + 0.1) as scope:
            await slot.arun()
        if scope.cancelled_caught:
            self.stats.add("timeouts")
            slot.error = TimeoutError(f"the call did not finish within {self.timeout:g} s (timeout)")

    def retry_delay(self, slot: Slot[Any]) -> float | None:
        """After a failed attempt: seconds until the next one, or None (the failure is final)."""
        error = slot.error
        if error is None or not self.retry.enabled:
            return None
        failure = classify(error, extra_types=self._extra_types(), patterns=self.retry.patterns)
        if failure is None or (failure.kind == "transient" and not (failure.asked or self.retry.transient)):
            return None  # permanent, or transient and not asked for: the sequential loop would have seen it too
        tries: Tries = slot.note
        if failure.kind == "rate_limited" and not self.stats.crowded():
            return None  # refused while the run was no more than sequential: the loop would have been too
        if failure.kind == "rate_limited" and failure.status == 503 and tries.alone:
            # Unavailable to a request that went alone, as the plain loop's: this resource's (a page
            # in maintenance), not our load's. (Refused again while others were served is no such
            # sign: an overload refuses what goes beyond what it serves, and then serves the rest.)
            return None
        if tries.bypassed:
            self._final(slot, failure, "its host's circuit is open")
            return None
        tries.transient += failure.kind == "transient"  # apart from refusals: 8 of them made a reset final
        if failure.kind == "transient" and tries.transient >= (most := self.retry.attempts):
            self.stats.add("gave_up")
            self._final(slot, failure, f"{tries.transient} attempts failed transiently (retry attempts = {most})")
            return None
        if tries.learning and failure.retry_after:  # the learned rate paces it: a rounded hint
            failure = replace(failure, retry_after=rounded_down(failure.retry_after))
        delay = self.backoff.delay(tries.attempts, failure, self.rng)
        if self.backoff.gives_up(self.clock() - tries.first_started, delay):
            self.stats.add("gave_up")
            self._final(slot, failure, f"the retry deadline of {self.backoff.deadline:g} s passed")
            return None
        if tries.attempts == 1:
            self.stats.add("retried")
        self.stats.add("retries")
        _discard(error)
        return delay

    def _final(self, slot: Slot[Any], failure: Failure, why: str) -> None:
        tries: Tries = slot.note
        if failure.kind == "rate_limited":
            self.stats.add("lost")
        self._give_up_lines += 1
        if self._give_up_lines <= _GIVE_UP_LINES:
            event(
                RETRY_GAVE_UP,
                f"{why}: the loop gets the call's last exception, as it would have without us",
                target=self.name,
                attempts=tries.attempts,
                failure=failure.reason,
                host=tries.host or "-",
            )

    def _extra_types(self) -> tuple[type[BaseException], ...]:
        """The configured ``on`` types whose module is loaded (before that, none can be raised)."""
        found: list[type[BaseException]] = []
        for name, cls in self._types.items():
            if cls is None:
                module_name, _, qualname = name.partition(":")
                module = sys.modules.get(module_name)
                if module is None:
                    continue
                value: Any = module
                try:
                    for part in qualname.split("."):
                        value = getattr(value, part)
                except AttributeError:
                    continue
                if not (isinstance(value, type) and issubclass(value, BaseException)):
                    continue
                cls = self._types[name] = value
            found.append(cls)
        return tuple(found)

    # -- calls the loop makes itself: every attempt, with the waits between -----------------
    def call(
        self,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        ahead: bool = False,
        plain: bool = False,
    ) -> R:
        """A per-item call the loop makes directly, with the same retries, in its own thread
        (``ahead``: a call run ahead of the loop all the same, a shadow's read; ``plain``: the
        run stepped aside for good, :attr:`Tries.plain`)."""
        # The loop's own call holds one of the run's places (a shadow's read: its run's own).
        place = nullcontext if ahead else self.places.own
        if self.limiter is None:  # the first attempt, as cheap as it can be: most succeed
            tries = Tries(self.clock(), 1, live=not ahead, plain=plain)
            token = ATTEMPT.set((self, tries))
            try:
                with place():
                    return fn(*args, **kwargs)
            except Exception as exc:
                error: BaseException | None = exc
            finally:
                ATTEMPT.reset(token)
            slot: Slot[R] = Slot(fn, args, kwargs)
            slot.error, slot.note, error = error, tries, None
            delay = self.retry_delay(slot)  # not counted as a call in flight: the loop's own, one at a time
            if delay is None:
                return slot.outcome()
            slot.rearm()
            _pause.wait(delay)
        else:
            slot = Slot(fn, args, kwargs)
            slot.note = Tries(self.clock(), live=not ahead, plain=plain)
        while True:
            with place():
                delay = self._attempt_here(slot)
            if delay is None:
                break
            slot.rearm()
            _pause.wait(delay)
        return slot.outcome()

    async def acall(
        self,
        fn: Callable[..., Awaitable[R]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        ahead: bool = False,
        plain: bool = False,
    ) -> R:
        """The same, for an async call in the loop's own task."""
        place = nullcontext if ahead else self.places.aown
        if self.limiter is None and self.timeout is None:  # the first attempt, as cheap as it can be
            tries = Tries(self.clock(), 1, live=not ahead, plain=plain)
            token = ATTEMPT.set((self, tries))
            try:
                async with place():
                    return await fn(*args, **kwargs)
            except Exception as exc:
                error: BaseException | None = exc
            finally:
                ATTEMPT.reset(token)
            slot: Slot[R] = Slot(fn, args, kwargs)
            slot.error, slot.note, error = error, tries, None
            delay = self.retry_delay(slot)  # not counted as a call in flight: the loop's own, one at a time
            if delay is None:
                return slot.outcome()
            slot.rearm()
            await _wait(delay)
        else:
            slot = Slot(fn, args, kwargs)
            slot.note = Tries(self.clock(), live=not ahead, plain=plain)
        while True:
            async with place():
                delay = await self._aattempt_here(slot)
            if delay is None:
                break
            slot.rearm()
            await _wait(delay)
        return slot.outcome()

    # -- each HTTP request of an attempt (driven by ``_http``) --------------------------------
    def request(self, tries: Tries, host: str, port: int | None, wire: bool = False) -> Plan[Any]:
        """The plan of one request of an attempt to ``host``: its turn within the host's
        limits, then GO (send it), then what its answer teaches the host. ``wire``: the
        library's connection takes the rate's token as it writes the request (:data:`DUE`)."""
        state = self.hosts.get(host, port)
        tries.host = state.name
        if tries.plain and state.limiter.unpaced():
            return (yield from self._plain(tries, state))
        admitted = state.circuit.admit()
        if admitted == "open":
            tries.bypassed = True
            return (yield GO)
        trial = admitted == "trial"
        limiter = state.limiter
        shares = limiter.shares
        if limiter.shared is not None:
            limiter.look_shared()  # another process's pause
        number = limiter.admit_now(not (wire or shares))  # admitted at once: no clock, no line
        if number and not (shares and not wire) and not limiter.places_shared:
            tries.alone = self.stats.sent() == 1
            started = None
        else:
            started = time.perf_counter()
            if not number:
                number = yield from limiter.admission(not (wire or shares))
        try:
            if started is not None:
                yield from limiter.place(number)  # one of the host's places shared by every process
                if shares and not wire:  # the shared rate's slot, taken here: this library has no wire hook
                    yield from limiter.token(number)
                tries.alone = self.stats.sent(time.perf_counter() - started) == 1
            sent_at = time.perf_counter()
            status: object = None
            try:
                if wire:
                    DUE.set(due := (limiter, number))
                response = yield GO
                status = status_of(response)
            except BaseException as exc:
                status = type(exc).__name__
                state.raised(exc, trial, self.stats, live=tries.live)
                raise
            finally:
                self.stats.answered(
                    time.perf_counter() - sent_at,
                    tries.alone,
                    sent_at=sent_at,
                    host=state.name,
                    live=tries.live,
                    status=status,
                )
                if wire and DUE.get() is due:
                    DUE.set(None)
                    if not shares:
                        limiter.charge()  # no connection of the library's took it: taken now
            state.answered(response, trial, number, self.stats, longest=self.retry.deadline, live=tries.live)
            tries.learning = state.limiter.learning
        finally:
            limiter.release(number)
        return response

    def _plain(self, tries: Tries, state: HostState) -> Plan[Any]:
        """A request of a run that stepped aside for good, to a host with nothing to pace: sent
        as the plain loop sends it (one at a time), counted for the run line and the metrics and
        timed for the timeline, and nothing more: no turn, no learning, no circuit (what the
        sequential loop meets it meets too). Its call's retries are :meth:`retry_delay`'s."""
        stats = self.stats
        tries.alone = stats.sent() == 1
        sent_at = time.perf_counter()
        status: object = None
        try:
            response = yield GO
            status = status_of(response)
        except BaseException as exc:
            status = type(exc).__name__
            if isinstance(exc, Exception):
                state.counted_error(exc, stats, live=tries.live)
            raise
        finally:
            stats.answered(
                time.perf_counter() - sent_at,
                tries.alone,
                sent_at=sent_at,
                host=state.name,
                live=tries.live,
                status=status,
            )
        state.counted(status, stats, live=tries.live)
        return response


#: Never set: ``.wait(seconds)`` sleeps between a direct call's attempts without ``time.sleep``
#: (which ``skip_sleeps`` may have patched).
_pause = threading.Event()


async def _wait(seconds: float) -> None:
    """Wait ``seconds`` in the loop's own task without the async sleeps, which ``skip_sleeps``
    may have patched there: a retry's wait is not one of the loop's pacing sleeps."""
    with anyio.move_on_after(seconds):
        await anyio.Event().wait()


def _discard(error: BaseException) -> None:
    """Close what a dropped failure holds: urllib's HTTPError is the open response itself."""
    if isinstance(error, urllib.error.HTTPError):
        try:
            error.close()
        except Exception:
            pass
