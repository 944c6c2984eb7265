"""Shadow runs: the per-item function run ahead of the loop for its reads, never for its effects.

A :class:`ShadowRun` predicts the loop's per-item calls as a function-level run does
(``_run``: the items, the call's shape learned from the loop's first call, a window ahead),
but what runs ahead is a *shadow* of each call (``shadow = true``):

- in a worker thread (a sync function) or a task of the loop's event loop (an async one),
  inside :func:`~._effects.shadowed`: its prints and log records are dropped, its sleeps
  return at once, and any other effect (a write to a file or a database, a subprocess) stops
  it where it stands (``_shadow``);
- each HTTP request it makes is seen at the library's layer (``_policy.LOOP``): a read (a
  GET or HEAD, a GraphQL query, a JSON-RPC read, what its host declares: ``_reads``) is sent through the app's own client, under the host's limits
  and retries, its answer kept for the loop and a copy handed back to the shadow (without
  its cookies: they never reach the app's jar), so the shadow goes on to its next request
  (a detail the first answer names); anything else stops the shadow before it is sent;
- an answer whose body is over ``MAX_KEPT`` (10 MiB, ``_adapter``) is closed where that
  shows and never kept: the shadow stops there, and later shadows stop before a read of the
  same method and URL shape (host, path segments, query keys): the real call sends those
  itself and reads them live (counted ``oversize``; the one sent ahead went out twice);
- its return value and its exception are thrown away.

The loop then runs unchanged. When it calls the per-item function for an item, that item's
shadow is *claimed*: from then on it may send nothing more (its next request stops it), so
a request the loop makes once reaches the upstream once. The real function runs in the
loop's own thread or task, once; each request it makes is answered from a read of that
item's shadow only when it is exactly that request (method, URL, every header but tracing
ones, body), waiting for it if it is still in flight; any other request goes out as the loop made
it (a read within the host's limits, as HTTP-level prefetch sends the loop's own). Every
print, log line, row and exception comes from the real code, in order.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio

from .._engine import Cancelled, Slot
from .._events import SHADOW_STOPPED
from .._integrations import CLIENTS, Args, Client, Kwargs, Oversize, Request
from .._log import event
from .._policy import LOOP, send
from .._shadow import Shadow, Stopped, activate, deactivate, reading, shadowed
from ._fetchers import Refused, direct_fetcher, fetcher
from ._http_run import credentials
from ._probe import waited
from ._reads import NOTHING_DECLARED, is_read
from ._requests import Url
from ._run import CURRENT, PrefetchRun
from ._shape import CallShape

if TYPE_CHECKING:
    from .._policy import Policy
    from .._report import RunReport
    from .._state import Recorder

__all__ = ["ShadowRun"]


class Read:
    """One read a shadow sent: its request, then its kept answer or the error it ended in."""

    __slots__ = ("done", "error", "finished", "kept", "request", "used")

    def __init__(self, request: Request, done: threading.Event | anyio.Event) -> None:
        self.request = request
        self.done = done
        self.kept: Any = None
        self.error: BaseException | None = None
        self.finished = 0.0
        self.used = False

    def answers(self, request: Request) -> bool:
        """Whether this read is exactly ``request`` (and not used yet)."""
        mine = self.request
        return (
            not self.used and mine.method == request.method and mine.url == request.url and mine.extra == request.extra
        )


class ShadowCall:
    """One item's shadow: the reads it sent, whether the loop has reached its item (then it
    may send nothing more), and why it stopped, if it did."""

    __slots__ = ("claimed", "reads", "shadow")

    def __init__(self) -> None:
        self.reads: list[Read] = []
        self.claimed = False
        self.shadow: Shadow | None = None


class _Handler:
    """The requests of one side (``LOOP``): a shadow's, or the real call's for its item."""

    __slots__ = ("call", "handle")

    def __init__(self, handle: Callable[..., Any], call: ShadowCall | None) -> None:
        self.handle = handle
        self.call = call

    def request(self, library: str, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        return self.handle(self.call, library, wrapped, instance, args, kwargs)


class ShadowRun(PrefetchRun):
    """One run of a loop whose per-item calls are shadowed ahead of it (see the module)."""

    def __init__(
        self,
        report: RunReport,
        source: Iterator[Any] | None,
        submit: Callable[[Slot[Any]], Slot[Any]],
        *,
        window: int,
        policy: Policy,
        is_async: bool,
        methods: frozenset[str] = frozenset({"GET", "HEAD"}),
        max_age: float = 60.0,
        builder: Callable[[Any], tuple[Any, ...]] | None = None,
        owner: object = None,
        recorder: Recorder | None = None,
        probe: bool = True,
        asked_before: frozenset[str] | None = None,
        guard: bool = False,
    ) -> None:
        super().__init__(
            report,
            source,
            submit,
            window=window,
            builder=builder,
            owner=owner,
            policy=policy,
            recorder=recorder,
            probe=probe,
            asked_before=asked_before,
            guard=guard,
        )
        if probe:
            # The probe is the reads shadows complete first (the loop's own item's shadow is
            # claimed at once, so it cannot be the one timed): the window fills meanwhile.
            self.step.probing = True
        #: How long the quickest of the first reads shadows sent took (the probe), once known.
        self.probe_seconds: float | None = None
        self._read_times: list[float] = []
        #: Shadows ended, and reads shadows sent: shadows that end without a read have nothing
        #: for the real calls, and only cost (the function's work done twice): the probe then.
        self._ended_shadows = self._reads_sent = 0
        #: Items the loop reached before their shadow started: shadows that never get ahead
        #: (an async function that never awaits a read gives them no turn) serve nothing either.
        self._not_started = 0
        self._probe_reads = max(1, min(report.target.concurrency, 4))
        self.is_async = is_async
        self.methods = methods
        self.max_age = max_age
        self.lock = threading.Lock()
        self.served = self.live = self.stopped = self.oversize = 0
        #: A real call's credentials differed from its shadow's (``_other_credentials``).
        self.credentials_changed = False
        #: The shapes (method, ``Url.skeleton``) of reads whose answer was over the cap: a
        #: shadow stops before sending one like them (the real call reads it live).
        self._too_large: set[tuple[str, Any]] = set()
        self.first_stop: str | None = None
        self._fetchers: dict[tuple[str, bool], Callable[..., Any]] = {}
        #: Shadows running now, and whether the loop has ended: the effects' hooks that change
        #: what the process sees (stdout's proxy) stay until the loop ended and the last
        #: shadow did (one still reading when the loop broke off must not print after it).
        self._running = 0
        self._closed = False
        activate()

    # -- ahead of the loop ------------------------------------------------------------------
    def _slot(self, shape: CallShape, args: Args, kwargs: Kwargs) -> Slot[Any]:
        call = ShadowCall()
        run = self._shadow_async if self.is_async else self._shadow_sync
        # No fingerprint of the arguments (``_run``: a changed one sends the call live): the
        # real call runs in place whatever they hold now, and a read of its shadow answers it
        # only when it is exactly the request it makes. A session whose jar took a cookie since
        # is a changed argument, not a changed request.
        slot: Slot[Any] = Slot(lambda *a, **k: run(call, shape.call, a, k), args, kwargs, None)
        slot.note = call
        return slot

    def _shadow_sync(self, call: ShadowCall, function: Callable[..., Any], args: Args, kwargs: Kwargs) -> None:
        shadow = call.shadow = self._started()
        token = LOOP.set(_Handler(self._shadow_request, call))
        try:
            with shadowed(shadow):
                function(*args, **kwargs)
        except Stopped:
            pass
        except Exception:  # noqa: S110 - the real call meets its own exception, in its place
            pass
        finally:
            LOOP.reset(token)
            self._ended(shadow)

    async def _shadow_async(self, call: ShadowCall, function: Callable[..., Any], args: Args, kwargs: Kwargs) -> None:
        shadow = call.shadow = self._started()
        token = LOOP.set(_Handler(self._ashadow_request, call))
        try:
            with shadowed(shadow):
                await function(*args, **kwargs)
        except Stopped:
            pass
        except Exception:  # noqa: S110 - the real call meets its own exception, in its place
            pass
        finally:
            LOOP.reset(token)
            self._ended(shadow)

    def _started(self) -> Shadow:
        with self.lock:
            self._running += 1
        return Shadow()

    def _ended(self, shadow: Shadow) -> None:
        with self.lock:
            self._running -= 1
            self._ended_shadows += 1
            if self.probe_seconds is None and not self._reads_sent and self._ended_shadows >= self._probe_reads:
                # the first shadows read nothing: fanning out has nothing to serve (the direct
                # calls then are timed, and prefetching resumes if they turn out to wait)
                self.probe_seconds = 0.0
            last = self._closed and not self._running
            if shadow.stopped is not None:
                self.stopped += 1
                if self.first_stop is None:
                    self.first_stop = shadow.stopped
        if last:
            deactivate()

    def _register(
        self,
        call: ShadowCall,
        client: Client | None,
        library: str,
        instance: Any,
        args: Args,
        kwargs: Kwargs,
        done: Any,
    ) -> Read:
        """The shadow's request, as a read the loop may be answered with; else it stops."""
        shadow = call.shadow
        assert shadow is not None
        shadow.check()  # stopped without raising (a write sqlite's authorizer refused): stop here
        if client is None or client.is_async != self.is_async:
            shadow.stop(
                f"a request through {library} from a {'task' if self.is_async else 'thread'} it cannot be sent ahead from"
            )
        request = client.describe(instance, args, kwargs, self.methods, reads=self._is_read)
        if request is None:
            shadow.stop(f"a request that is not a read ({client.what(args, kwargs)})")
        shape = (request.method, Url(request.url).skeleton) if self._too_large else None
        read = Read(request, done)
        with self.lock:
            self._reads_sent += 1
            if call.claimed:
                shadow.stop("the loop reached its item")
            if shape in self._too_large:
                shadow.stop(f"a read like one whose answer was over the cap ({request.method} {request.url})")
            call.reads.append(read)
        return read

    def _over(self, call: ShadowCall, read: Read) -> None:
        """The read's answer was over the cap (closed, kept as its ``Oversize``): the shadow
        stops here, and no other sends one like it."""
        assert call.shadow is not None
        with self.lock:
            self._too_large.add((read.request.method, Url(read.request.url).skeleton))
        call.shadow.stop(f"{read.kept} ({read.request.method} {read.request.url})")

    def _shadow_request(
        self, call: ShadowCall, library: str, wrapped: Any, instance: Any, args: Args, kwargs: Kwargs
    ) -> Any:
        client = CLIENTS.get(library)
        read = self._register(call, client, library, instance, args, kwargs, threading.Event())
        assert client is not None
        started = time.perf_counter()
        assert self.policy is not None
        try:
            # The run's requests in flight, shadows' and the real calls' own together, at most
            # ``concurrency`` (``Policy.places``: a real call's own read takes a place too).
            with reading(), self.policy.places.ahead():
                try:
                    read.kept, read.finished = self.policy_call(client, (wrapped, instance, args, kwargs))
                except Refused as refused:  # retried until the policy gave up: the last answer stands
                    read.kept, read.finished = refused.kept, time.monotonic()
            self._timed_read(time.perf_counter() - started)
        except BaseException as exc:
            read.error = exc
            raise
        finally:
            read.done.set()
        if isinstance(read.kept, Oversize):
            self._over(call, read)
        return client.for_shadow(read.kept, instance, args, kwargs)

    async def _ashadow_request(
        self, call: ShadowCall, library: str, wrapped: Any, instance: Any, args: Args, kwargs: Kwargs
    ) -> Any:
        client = CLIENTS.get(library)
        read = self._register(call, client, library, instance, args, kwargs, anyio.Event())
        assert client is not None and self.policy is not None
        started = time.perf_counter()
        try:
            with reading():
                async with self.policy.places.aahead():
                    try:
                        read.kept, read.finished = await self.policy.acall(
                            self._fetcher(client), (wrapped, instance, args, kwargs), {}, ahead=True
                        )
                    except Refused as refused:
                        read.kept, read.finished = refused.kept, time.monotonic()
            self._timed_read(time.perf_counter() - started)
        except BaseException as exc:
            read.error = exc
            raise
        finally:
            read.done.set()
        if isinstance(read.kept, Oversize):
            self._over(call, read)
        return client.for_shadow(read.kept, instance, args, kwargs)

    # -- stepping aside (``_probe``) ------------------------------------------------------------
    def serve(self, call: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Slot[Any] | None:
        """The slot of this real call's item (its shadow), or None: the call runs directly.
        Stepped aside, the shadows already started still answer their items' calls."""
        if (
            self.step.probing
            and self.probe_seconds is not None
            and not self.step.probed(self.probe_seconds < self.step.seconds)
        ):
            self._keep_started()
        if self.step.aside and self.pending and self.shape is not None:
            for index, slot in enumerate(self.pending):
                if self.shape.matches(slot, instance, args, kwargs):
                    for _ in range(index):
                        self._discard(self.pending.popleft())
                    self.pending.popleft()
                    if id(slot) in self.unsent:  # held in place, never sent: the call runs directly
                        self.unsent.discard(id(slot))
                        self.direct += 1
                        return None
                    self.hits += 1
                    return slot
        return super().serve(call, instance, args, kwargs)

    def _keep_started(self) -> None:
        """Reads are answered faster than fanning out costs: shadows not started never start;
        those started keep their reads for their items (never sent twice)."""
        self.pending = deque(slot for slot in self.pending if not slot.cancel())

    def _timed_read(self, seconds: float) -> None:
        """A read a shadow sent took ``seconds``. The probe is the quickest of the first few
        (as many as run at once, at most 4): the first of each connection pays for opening it,
        and shadows started together wait for each other's share of the CPU."""
        if self.probe_seconds is None:
            times = self._read_times
            times.append(seconds)  # atomic: shadows' threads append, the loop's thread reads
            if len(times) >= self._probe_reads:
                self.probe_seconds = min(times)  # read by the loop's thread at its next call

    def _is_read(self, method: str, url: str, headers: Any, body: bytes | None) -> bool:
        """Whether a request only reads (``_reads``): a GET or HEAD, a GraphQL query, a known
        JSON-RPC read, or what its host declares (``[hosts."..."] reads``). A host's declared
        reads only add to the others: they are looked up (the URL split, the host found) only
        for a request that is not a read without them, not for every GET of every shadow."""
        if is_read(method, url, headers, body):
            return True
        if self.policy is None:
            return False
        parts = urllib.parse.urlsplit(url)
        declared = self.policy.hosts.get(parts.hostname or "", parts.port).reads
        return declared != NOTHING_DECLARED and is_read(method, url, headers, body, declared)

    def policy_call(self, client: Client, args: Args) -> Any:
        assert self.policy is not None
        return self.policy.call(self._fetcher(client), args, {}, ahead=True)  # a shadow's read: ahead of the loop

    def _fetcher(self, client: Client, *, direct: bool = False) -> Callable[..., Any]:
        key = (client.library, direct)
        found = self._fetchers.get(key)
        if found is None:
            found = self._fetchers[key] = (direct_fetcher if direct else fetcher)(client, send)
        return found

    def _discard(self, slot: Slot[Any]) -> None:
        """A shadow for an item the loop skipped: it may send nothing more."""
        self.claim(slot)
        super()._discard(slot)

    def close(self) -> None:
        try:
            super().close()
        finally:
            with self.lock:
                self._closed = True
                last = not self._running
            if last:
                deactivate()

    # -- the loop's real call -----------------------------------------------------------------
    def claim(self, slot: Slot[Any] | None) -> ShadowCall | None:
        """The loop reached this slot's item: its shadow may send nothing more (one that has
        not started never starts); the reads it sent answer the real call."""
        if slot is None:
            return None
        call: ShadowCall = slot.note
        with self.lock:
            call.claimed = True
            if call.shadow is None:
                self._not_started += 1
                if self.probe_seconds is None and not self._reads_sent and self._not_started > self._probe_reads:
                    self.probe_seconds = 0.0  # the loop outruns its shadows: nothing to serve, step aside
        slot.cancel()
        return call

    def real(self, slot: Slot[Any] | None, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        """The loop's own call, run once in its thread, answered from its item's shadow (stepped
        aside with no shadow for it: exactly as the loop made it, its time measured)."""
        if slot is None and self.step.aside:
            return self._aside(wrapped, args, kwargs)
        call = self.claim(slot)
        token, requests = CURRENT.set(None), LOOP.set(_Handler(self._real_request, call))
        try:
            return wrapped(*args, **kwargs)
        finally:
            LOOP.reset(requests)
            CURRENT.reset(token)

    def _aside(self, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        token = CURRENT.set(None)
        timing = self.step.timing
        started, cpu = (time.perf_counter(), time.thread_time()) if timing else (0.0, 0.0)
        try:
            return wrapped(*args, **kwargs)
        finally:
            CURRENT.reset(token)
            if timing:
                self.timed_direct(waited(started, cpu), self.shape.instance if self.shape else None, args, kwargs)

    async def _aaside(self, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        token = CURRENT.set(None)
        timing = self.step.timing
        started, cpu = (time.perf_counter(), time.thread_time()) if timing else (0.0, 0.0)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            CURRENT.reset(token)
            if timing:
                self.timed_direct(waited(started, cpu), self.shape.instance if self.shape else None, args, kwargs)

    async def areal(self, slot: Slot[Any] | None, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        if slot is None and self.step.aside:
            return await self._aaside(wrapped, args, kwargs)
        call = self.claim(slot)
        token, requests = CURRENT.set(None), LOOP.set(_Handler(self._areal_request, call))
        try:
            return await wrapped(*args, **kwargs)
        finally:
            LOOP.reset(requests)
            CURRENT.reset(token)

    def _kept(
        self, call: ShadowCall | None, client: Client | None, instance: Any, args: Args, kwargs: Kwargs
    ) -> Read | bool:
        """The shadow's read that is exactly this request; else whether it is a read at all
        (True: sent within the host's limits; False: exactly as the loop made it)."""
        if client is None or client.is_async != self.is_async:
            return False
        request = client.describe(instance, args, kwargs, self.methods, reads=self._is_read)
        if request is None:
            return False
        if call is not None:
            with self.lock:
                for read in call.reads:
                    if read.answers(request):
                        read.used = True
                        return read
                twins = [
                    read.request
                    for read in call.reads
                    if read.request.method == request.method and read.request.url == request.url
                ]
            if twins:
                held = credentials(request)  # digested once: only for a request its shadow also read
                if any(credentials(twin) != held for twin in twins):
                    self._other_credentials()
        self.live += 1
        return True

    def _other_credentials(self) -> None:
        """A real call asked for what its shadow read, with other credentials (a cookie its
        jar took from an earlier item's answer, a token switched per item): the shadows ahead
        read with what they found, not with what the real calls will carry, so none more is
        started this run (those not started yet are dropped; one reading may still be used)."""
        if not self.active:
            return
        self.active = False
        self.credentials_changed = True
        while self.pending:
            self._discard(self.pending.popleft())

    def _usable(self, read: Read) -> bool:
        """Whether the read's outcome answers the loop (else it sends the request itself)."""
        if isinstance(read.kept, Oversize):
            self.live += 1
            self.oversize += 1
            return False
        if isinstance(read.error, Cancelled | Stopped) or (
            read.error is None and time.monotonic() - read.finished > self.max_age
        ):
            self.live += 1
            return False
        self.served += 1
        return True

    def _real_request(
        self, call: ShadowCall | None, library: str, wrapped: Any, instance: Any, args: Args, kwargs: Kwargs
    ) -> Any:
        client = CLIENTS.get(library)
        read = self._kept(call, client, instance, args, kwargs)
        if isinstance(read, Read):
            assert isinstance(read.done, threading.Event) and client is not None
            if not read.done.wait(self.timeout):
                raise TimeoutError(f"the request did not finish within {self.timeout:g} s")
            if self._usable(read):
                if read.error is not None:
                    raise read.error
                return client.serve(read.kept, instance, args, kwargs)
            read = True
        assert self.policy is not None
        if read is False or client is None:
            with self.policy.places.own():  # not a read: exactly as the loop made it
                return wrapped(*args, **kwargs)
        try:
            return self.policy.call(
                self._fetcher(client, direct=True),
                (wrapped, instance, args, kwargs),
                {},
                plain=self.step.stepped_aside,
            )
        except Refused as refused:
            return client.serve(refused.kept, instance, args, kwargs)

    async def _areal_request(
        self, call: ShadowCall | None, library: str, wrapped: Any, instance: Any, args: Args, kwargs: Kwargs
    ) -> Any:
        client = CLIENTS.get(library)
        read = self._kept(call, client, instance, args, kwargs)
        if isinstance(read, Read):
            assert isinstance(read.done, anyio.Event) and client is not None
            with anyio.move_on_after(self.timeout):
                await read.done.wait()
            if not read.done.is_set():
                raise TimeoutError(f"the request did not finish within {self.timeout:g} s")
            if self._usable(read):
                if read.error is not None:
                    raise read.error
                return client.serve(read.kept, instance, args, kwargs)
            read = True
        assert self.policy is not None
        if read is False or client is None:
            async with self.policy.places.aown():
                return await wrapped(*args, **kwargs)
        try:
            return await self.policy.acall(
                self._fetcher(client, direct=True),
                (wrapped, instance, args, kwargs),
                {},
                plain=self.step.stepped_aside,
            )
        except Refused as refused:
            return client.serve(refused.kept, instance, args, kwargs)

    # -- the end ------------------------------------------------------------------------------
    def counts(self) -> dict[str, Any]:
        """This run's figures for the run line."""
        # A call made directly while stepped aside is a miss too: prefetched + missed = items.
        more: dict[str, Any] = {
            "prefetch": "shadow",
            "prefetched": self.hits,
            "missed": self.misses + self.direct,
            "wasted": self.wasted,
        }
        more |= {"reads_served": self.served, "reads_live": self.live} | self.guard_counts()
        if self.credentials_changed:
            more["credentials_changed"] = "yes"
        with self.lock:
            stopped, running = self.stopped, self._running
        if stopped:
            more["shadows_stopped"] = stopped
        if running:  # the loop returned before them: each stops at its next effect, after this line
            more["shadows_running"] = running
        if self.mismatched:
            more["mismatched"] = self.mismatched
        if self.oversize:
            more["oversize"] = self.oversize
        return more

    def say_stopped(self) -> None:
        """One line per run naming the first effect that stopped a shadow (its reads before it
        were kept; the real call made the effect itself)."""
        if self.first_stop is not None:
            event(
                SHADOW_STOPPED,
                f"a shadow of {self.name} stopped at {self.first_stop}",
                target=self.name,
                shadows=self.stopped,
            )
