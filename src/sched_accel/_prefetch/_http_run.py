"""HTTP-level prefetch: the loop's idempotent requests are sent ahead of it, and nothing else.

While a patched loop runs, an :class:`HttpRun` sees each request the loop makes through
httpx, requests, urllib or aiohttp (``_policy.LOOP``), in the loop's own thread or task:

- a request already sent ahead for this exact request (method, URL, every header but
  tracing ones) is answered with that answer, as a fresh response of the library;
- any other GET or HEAD runs as the loop made it (a miss). If an item's values are in its
  URL (``_requests.learn``), the URL's pattern is kept; once it has predicted one of the
  loop's own next requests exactly (``_templates``), the same request is sent ahead for the
  next items, up to ``window`` of them, through the client the loop used last, with the
  run's host limits and retries; at its first miss it retires;
- everything else (POST, PUT, a body, a stream) runs exactly when and as the loop makes it.

A loop that refuses some items before requesting them (an access check, a cache): a request
sent ahead for an item the loop moved past for good without asking for it (and without asking
for another URL of its shape) shows it (``not_asked`` in the run line). A loop whose requests
carry other credentials from one item to the next (a tenant's token, cookie or certificate)
shows it by its own requests. Nothing more is sent ahead in that run, and its next runs (in
this process or another: the owner's signed ``learned/<target> asked.json``) send ahead only
requests the run before asked for, with the same credentials (``ahead=asked_before``): a
refused item's request, or one with another tenant's credentials, is sent ahead at most in the
first run that shows it, up to a window of them.

With ``items = "learned"`` the items are the previous run's requests, replayed in order,
each only to a host the loop itself called in this run. An answer whose body is over
``MAX_KEPT`` (10 MiB, ``_adapter``) is closed where that shows and never served: the loop
sends its request itself and reads it live (counted ``oversize``, and as missed and wasted:
it went out twice), and the pattern that sent it sends no more: its requests not yet started
are not sent (the next answers of its kind are likely as large), and it retires. A prefetched answer older than
``max_age`` seconds is not served (counted ``stale``, and as missed and wasted: it went
out twice); one sent for the same URL but with other headers is not served either (counted
as ``mismatched``, the first difference said once per run).
The first request sent ahead is the probe (``_probe``): answered within a few ms, the run
steps aside, and the loop sends its requests itself, within the policy.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from types import CodeType
from typing import Any

from .._engine import AsyncWorkers, Cancelled, Slot, ThreadWorkers
from .._integrations import CLIENTS, Args, Client, Kwargs, Oversize, Request
from .._log import internal_error
from .._policy import Policy, send
from .._report import RunReport
from .._state import Recorder
from ._ahead import Ahead, Late, Made, Sent, Taught, Window
from ._closing import closed
from ._fetchers import Refused, direct_fetcher, fetcher
from ._found import Found, find
from ._probe import StepAside, waited
from ._tally import tally
from ._templates import Templates

__all__ = ["HttpRun"]

#: Headers that say whose request it is: a request sent ahead with one item's is never sent for
#: an item the loop asks for with others'. The client's identity beyond headers (certificate,
#: proxy, adapter: the ``<...>`` pairs of ``Request.extra``) counts as well.
CREDENTIALS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "x-auth-token"})


def _named(request: Request) -> list[tuple[str, Any]]:
    """The ``(name, value)`` pairs of a request's ``extra``: its headers, and what identifies
    its client beyond them (``<...>`` names)."""
    return [pair for pair in request.extra if isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)]


def credentials(request: Request) -> str:
    """A digest of what identifies whose request this is (empty when nothing does)."""
    held = [
        pair
        for pair in _named(request)
        if pair[0].lower() in CREDENTIALS or (pair[0].startswith("<") and pair[0] != "<body>")
    ]
    if not held:
        return ""
    return hashlib.sha256(repr(sorted(held, key=repr)).encode("utf-8", "backslashreplace")).hexdigest()[:16]


def tenant(request: Request, fields: list[tuple[str, str]]) -> frozenset[str]:
    """The values of an item (its ``fields``) that the credentials of the request made for it
    carry (a bearer token, a cookie's value, an API key taken from the item): the loop's
    requests for another item carry that item's, so a request copied from this one is sent
    ahead only for items that hold the same values (the same tenant's). Empty when the
    credentials hold none of the item's values (or there are none)."""
    held = [str(value) for name, value in _named(request) if name.lower() in CREDENTIALS]
    if not held:
        return frozenset()
    words = {word for value in held for word in _WORDS.split(value) if len(word) >= MIN_TENANT}
    return frozenset(words.intersection(text for _, text in fields))


#: Where a credential header's value is cut into the words compared with an item's values.
_WORDS = re.compile(r"[\s;,=:]+")
#: The shortest value taken as a tenant's (shorter ones match other items by chance).
MIN_TENANT = 3

#: The loop's own requests a run keeps, at most (for a loop that refuses items, its next run
#: sends ahead only what this one asked for).
MAX_ASKED = 10_000

_NOT_FOUND: Any = object()
_AS_MADE: Any = object()


class HttpRun:
    """One run of a loop with HTTP-level prefetch. Everything here runs in the loop's own
    thread or task (the workers only run slots), so it needs no lock."""

    def __init__(
        self,
        report: RunReport,
        source: Iterator[Any] | None,
        submit: Callable[[Slot[Any]], Slot[Any]],
        *,
        window: int,
        concurrency: int,
        policy: Policy,
        is_async: bool,
        methods: frozenset[str] = frozenset({"GET", "HEAD"}),
        max_age: float = 60.0,
        replay: bool = False,
        owner: object = None,
        recorder: Recorder | None = None,
        probe: bool = True,
        loop: CodeType | None = None,
        asked_before: frozenset[tuple[str, str, str]] | None = None,
        guard: bool = False,
        first: bool = False,
    ) -> None:
        self.report = report
        #: No run of this target is on record: what its credentials do from item to item is unknown.
        self.first = first
        #: The loop refuses some items (it moved past items whose requests were sent ahead,
        #: asking for nothing of theirs), or its requests carry other credentials from one item
        #: to another (a tenant's token, cookie or certificate): only requests its last run asked
        #: for, with the same credentials, are sent ahead (``asked_before``: method, URL and
        #: :func:`credentials`), and, without that record, none once it is seen.
        self.guard = guard or asked_before is not None  # watched (items named, not replayed)
        self.asked_before = asked_before
        self.guarded = asked_before is not None
        self.not_asked = 0  # items the loop moved past whose requests had been sent ahead
        self.asked: list[tuple[str, str, str]] = []  # the loop's own GETs and HEADs, in order (bounded)
        self._credentials: str | None = None  # those of the loop's first request
        #: The loop's code, to find on a request's stack the app's function it called (``_found``).
        self.loop = loop
        self.found: Found | None = None
        self._looked = loop is None
        self.name = report.target.name
        self.owner = owner
        self.policy = policy
        self.timeout = policy.wait_timeout
        self.skip_sleeps, self.skipped_sleeps = report.target.skip_sleeps, 0
        self.home: tuple[str, int] | None = None  # the loop's own task or thread (``_run.here``), once it runs
        self.submit = submit
        self.window, self.items = window, Window(source, window)
        self.concurrency = concurrency
        self.is_async = is_async
        self.methods = methods
        self.max_age = max_age
        self.replay = replay
        self.recorder = recorder
        self.templates = Templates(self.items, replay=replay)
        self.ahead = self.items.entries  # the items read ahead, with what was sent for each
        self.pending: dict[tuple[str, str], deque[Sent]] = {}
        self.active = source is not None
        self.hits = self.misses = self.wasted = self.mismatched = self.stale = self.other = self.oversize = 0
        self.first_miss: Request | None = None
        self.differs: str | None = None
        self.step = StepAside(probe)
        #: The requests the loop made itself: a prediction equal to one is never sent (an item
        #: taken for an earlier one, or a repeat: the loop has that answer, or asks again).
        self._made = Made(4 * window + 64)
        self._late = Late(window)  # sent for items the loop moved past: it may still ask for them
        self._probe: Sent | None = None  # the first request sent ahead, until decided
        self._fetchers: dict[tuple[str, bool], Callable[..., Any]] = {}
        #: The client whose request serve() just passed on as a GET or HEAD (sent within the
        #: policy), ``_AS_MADE`` for one never sent early, None after a failure of ours.
        self._direct: Any = _AS_MADE

    def _look(self) -> None:
        """Once per run, at the loop's first request: the app's function that made it, for the
        line saying what would make a run faster (``fetch = "..."``)."""
        self._looked = True
        assert self.loop is not None
        try:
            self.items.read()
            self.found = find(self.loop, [entry.item for entry in self.ahead])
        except Exception as exc:  # ours: nothing is found, the request goes on
            internal_error(f"looking for the per-item function of {self.name}", exc)

    # -- SourceCapture's side (items returned by a call inside the loop) ---------------------
    @property
    def source(self) -> Iterator[Any] | None:
        return self.items.source

    @property
    def pulled(self) -> int:  # items read from the source so far
        return self.items.pulled

    @property
    def learned(self) -> list[Taught]:  # the patterns of the loop's requests, in the order learned
        return self.templates.learned

    def set_source(self, source: Iterator[Any]) -> None:
        if self.items.source is None and not self.learned:
            self.items.source = source
            self.active = True

    # -- the loop's requests (``_policy.LOOP``) ------------------------------------------------
    def request(self, library: str, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if not self._looked:
            self._look()
        client = CLIENTS.get(library)
        if client is None or client.is_async != self.is_async:
            # A library we cannot answer for, or a client of the other kind than the run's
            # workers (asyncio.run in a sync loop, a blocking call in an async one): as made.
            self.other += 1
            return wrapped(*args, **kwargs)
        sent: Sent | None = None
        items = self.hits + self.misses
        try:
            sent = self.serve(client, wrapped, instance, args, kwargs)
        except Exception as exc:  # ours: stop predicting, the request runs as the loop made it
            self._direct = None
            self._stop(exc)
        answer: Callable[..., Any] = self._answer_async if client.is_async else self._answer
        if self._direct is None:  # one of ours failed: as the loop made it

            def answer(*_: Any) -> Any:
                return wrapped(*args, **kwargs)

        if self.hits + self.misses == items:  # no item's GET or HEAD (a POST, a body): not counted
            return answer(client, sent, wrapped, instance, args, kwargs)
        return tally(
            self.report, answer, client, sent, wrapped, instance, args, kwargs, is_async=client.is_async
        )  # ok or failed

    def _answer(
        self, client: Client, sent: Sent | None, wrapped: Any, instance: Any, args: Args, kwargs: Kwargs
    ) -> Any:
        if self._probe is not None:  # just sent: wait for it a little, before the loop's own
            self._probed(ThreadWorkers.done_within(self._probe.slot, self.step.seconds))
        if sent is None:
            return self._send_direct(client, wrapped, instance, args, kwargs)
        try:
            outcome: Any = ThreadWorkers.wait(sent.slot, self.timeout)
        except (Refused, Cancelled) as exc:
            outcome = exc
        kept = self._usable(outcome, sent)
        if kept is _NOT_FOUND:
            return self._send_direct(client, wrapped, instance, args, kwargs)
        return client.serve(kept, instance, args, kwargs)

    def _send_direct(
        self, client: Client, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs
    ) -> Any:
        """A GET or HEAD the loop sends itself: within the host's limits and with the same
        retries as one sent ahead (whether an item was prefetched must not change its answer)."""
        if self._direct is not client or closed(instance):
            with self.policy.places.own():  # never sent early (a POST, a body), or a closed client: as made
                return wrapped(*args, **kwargs)
        self._direct = None  # set again by the next serve(): only for its own request
        timing = self.step.timing  # stepped aside, not yet for good: how long do they wait?
        started, cpu = (time.perf_counter(), time.thread_time()) if timing else (0.0, 0.0)
        try:
            return self.policy.call(
                self._fetcher(client, direct=True), (wrapped, instance, args, kwargs), {}, plain=self.step.stepped_aside
            )
        except Refused as refused:  # retried until the policy gave up: the last answer stands
            return client.serve(refused.kept, instance, args, kwargs)
        finally:
            if timing:
                self._timed(waited(started, cpu))

    def _usable(self, outcome: Any, sent: Sent) -> Any:
        """The kept answer of a slot's outcome, or ``_NOT_FOUND``: the loop sends it itself."""
        if isinstance(outcome, Refused):  # retried until the policy gave up: the last answer stands
            # ... unless it stopped retrying as the loop moved past its item (``Late``): again, then
            if sent.slot.abandoned:
                return _NOT_FOUND
            if time.monotonic() - outcome.finished > self.max_age:  # a stale refusal: asked again
                return self._stale()
            return outcome.kept
        if isinstance(outcome, Cancelled):
            if sent.learned.oversize:  # not sent: an answer of its pattern was over the cap
                self._oversize(sent, wasted=False)
            return _NOT_FOUND
        kept, finished = outcome
        if isinstance(kept, Oversize):
            self._oversize(sent, wasted=True)
            return _NOT_FOUND
        if time.monotonic() - finished > self.max_age:
            return self._stale()
        return kept

    def _stale(self) -> Any:
        """The answer sent ahead for the loop's request is older than ``max_age``: the loop
        sends its own, so the item is missed, not prefetched, and the one sent ahead went out
        for nothing (wasted), as an answer over the cap does."""
        self.stale += 1
        self.hits -= 1
        self.misses += 1
        self.wasted += 1
        return _NOT_FOUND

    async def _answer_async(
        self, client: Client, sent: Sent | None, wrapped: Any, instance: Any, args: Args, kwargs: Kwargs
    ) -> Any:
        if self._probe is not None:
            self._probed(await AsyncWorkers.done_within(self._probe.slot, self.step.seconds))
        if sent is not None:
            try:
                outcome: Any = await AsyncWorkers.wait(sent.slot, self.timeout)
            except (Refused, Cancelled) as exc:
                outcome = exc
            kept = self._usable(outcome, sent)
            if kept is not _NOT_FOUND:
                return client.serve(kept, instance, args, kwargs)
        if self._direct is not client or closed(instance):
            async with self.policy.places.aown():  # never sent early, or a closed client: exactly as made
                return await wrapped(*args, **kwargs)
        self._direct = None
        timing = self.step.timing
        started, cpu = (time.perf_counter(), time.thread_time()) if timing else (0.0, 0.0)
        try:
            return await self.policy.acall(
                self._fetcher(client, direct=True), (wrapped, instance, args, kwargs), {}, plain=self.step.stepped_aside
            )
        except Refused as refused:
            return client.serve(refused.kept, instance, args, kwargs)
        finally:
            if timing:
                self._timed(waited(started, cpu))

    def _oversize(self, sent: Sent, *, wasted: bool) -> None:
        """The answer sent ahead for the loop's request was over the cap (``wasted``), or was
        not sent since another of its pattern's was: the loop reads it live (a miss), and no
        more are sent like it: its pattern retires, and what that kind sent that has not
        started is cancelled."""
        if wasted:
            self.oversize += 1
            self.wasted += 1
        self.hits -= 1
        self.misses += 1
        self.templates.retire(sent.learned)
        for entry in self.ahead:
            for other in entry.sent:
                if other.live and other.learned.retired and other.slot.cancel():
                    other.live = False

    # -- stepping aside (``_probe``) ------------------------------------------------------------
    def _probed(self, quick: bool) -> None:
        """The first request sent ahead (just now) was or was not answered within the probe's
        time: step aside (the loop sends its own) or fan out, before the loop's own is sent."""
        self._probe = None
        if self.step.probed(quick):
            self._fill()

    def _timed(self, seconds: float) -> None:
        """A request the loop sent itself while stepped aside waited ``seconds``."""
        if self.step.timing and self.step.timed(seconds) is True:
            self._fill()  # they wait long: prefetch after all

    def serve(self, client: Client, wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Sent | None:
        """The request sent ahead that answers this one, or None: the loop sends it itself."""
        request = client.describe(instance, args, kwargs, self.methods)
        if request is None:
            self.other += 1  # never sent early: runs exactly as the loop makes it
            self._direct = _AS_MADE
            return None
        self._direct = client
        if self.recorder is not None:
            self.recorder.record((request.method, request.url))
        if self.guard:  # watched only for items the config names: every request's path otherwise
            held = credentials(request)
            if self._credentials is None:
                self._credentials = held
            elif held != self._credentials:
                self.guarded = True  # another item's credentials: what was sent ahead carries the first's
            if len(self.asked) < MAX_ASKED:
                self.asked.append((request.method, request.url, held))
        key = (request.method, request.url)
        queue = self.pending.get(key)
        while queue:
            sent = queue.popleft()
            if not sent.live:
                continue
            sent.live = False
            if sent.request.extra != request.extra:  # the loop's request for it differs: a miss
                self.mismatched += 1
                if self.differs is None:
                    self.differs = sent.request.differs(request)
                self.templates.retire(sent.learned)
                self._discard(sent.slot)
                break
            if not queue:
                del self.pending[key]
            self._advance(sent.index)
            sent.learned.seen(
                request, wrapped, instance, sent.entry.fields if sent.entry is not None else None
            )  # the next ones go through this client
            self.hits += 1
            if self.step.probing is False:  # until the probe decided, nothing more is sent
                self._fill()
            return sent
        if queue is not None and not queue:
            del self.pending[key]
        self.misses += 1
        if self.first_miss is None:
            self.first_miss = request
        self._made.add(key)
        if self.active and (self.step.timing or not self.step.aside):  # aside for good: nothing to learn
            self._learn(client, wrapped, instance, request)
            self._fill()
        return None

    # -- learning where the items are (``_templates``) -----------------------------------------------
    def _learn(self, client: Client, wrapped: Any, instance: Any, request: Request) -> None:
        """A request the loop made itself: what it shows the patterns, or the one it teaches."""
        self.items.read()
        entry, differs = self.templates.observe(client, wrapped, instance, request)
        if differs is not None:
            self.mismatched += 1
            if self.differs is None:
                self.differs = differs
        if entry is not None:
            self._advance(entry.index)

    def _advance(self, index: int) -> None:
        """The loop is at item ``index``: what was sent for the items before it is not needed."""
        for sent in self.items.passed(index, self.learned):
            if sent.contradicted:  # never asked for: the loop asked for another URL of its shape
                self.templates.retire(sent.learned)
            if not sent.slot.cancel():  # it went out: still served if the loop asks for exactly it
                self._never_asked(self._late.keep(sent))

    def _never_asked(self, sent: Sent | None) -> None:
        """``sent`` went out and the loop moved on for good without asking for it: wasted. Unless
        the loop asked for another URL of its shape for that item (the pattern was wrong), the
        loop refused that item: from now on, only what it asks for is sent ahead."""
        if sent is None:
            return
        self.wasted += 1
        if not sent.contradicted and self.guard:
            self.not_asked += 1
            self.guarded = True

    def _fill(self) -> None:
        if not self.learned or not self.active or self.step.aside:
            return
        if self.guarded and self.asked_before is None:
            return  # it refuses items, and which it asks for is not known: nothing more is sent ahead
        self.items.read()
        if not self.ahead:
            return
        first = self.ahead[0].index
        limit = self.window if self.step.probing is False else 1  # one (the probe) until it decided
        for known in self.learned:
            if known.retired or not known.confirmed:  # followed once it predicted the loop's request
                continue
            known.count(self.ahead)
            start = max(known.upto + 1 - first, 0)
            stop = min(self._reach(known, limit) + 1, len(self.ahead))
            for entry in itertools.islice(self.ahead, start, stop):
                known.upto = entry.index
                self._predict(known, entry)

    def _reach(self, known: Taught, limit: int) -> int:
        """How far ahead of the loop ``known`` sends: ``limit``; but at most ``concurrency`` in a
        first run (none of the target on record) that watches whose requests these are, when the
        credentials copied are made from nothing of the item (a token looked up by the loop):
        another tenant's items may begin at any item, and a copy sent for one of them carries
        this tenant's credentials (never served: they differ from the loop's own). So at most a
        turn of ``concurrency`` such requests go out, not a window of them; the next runs send
        only what the run before asked for, with the same credentials (``asked_before``), once a
        run saw the switch, and the whole window otherwise (a window of ``concurrency`` is slower
        where latencies vary: it is paid once)."""
        if not self.first or not self.guard or self.asked_before is not None or limit <= self.concurrency:
            return limit
        self._tenant(known)
        return self.concurrency if known.credentialed and not known.tenant else limit

    def _tenant(self, known: Taught) -> None:
        """Work out what of the item the credentials of ``known``'s base carry, once per base."""
        if known.tenant_of is not known.base:
            known.tenant, known.tenant_of = tenant(known.base, known.base_fields), known.base
            known.credentialed = bool(credentials(known.base))

    def _predict(self, known: Taught, entry: Ahead) -> None:
        url = known.url(entry)  # None: no URL for it, or another item in the window has it too
        if url is None or closed(known.instance):
            return
        if any(sent.learned is known for sent in entry.sent):
            return  # sent already (before the pattern was narrowed)
        request = known.client.rebuild(known.base, known.instance, url)
        if request is None or self._made.take((request.method, request.url)):
            return
        if (
            self.asked_before is not None
            and (request.method, request.url, credentials(request)) not in self.asked_before
        ):
            return  # its last run did not ask for this one, or not with these credentials
        self._tenant(known)
        if known.tenant and not known.tenant.issubset(text for _, text in entry.fields):
            return  # the credentials come from the item: another tenant's, which the copy would not carry
        if any(sent.live for sent in self.pending.get((request.method, request.url), ())):
            return  # another pattern sent it: once is enough
        fetch = _watched(self._fetcher(known.client), known)
        slot: Slot[Any] = Slot(fetch, (known.wrapped, known.instance, request.args, request.kwargs), {}, entry.index)
        sent = Sent(entry.index, slot, known, request, entry)
        self.pending.setdefault((request.method, request.url), deque()).append(sent)
        entry.sent.append(sent)
        if self.step.probing is None and self._probe is None:
            self._probe = sent
            self.step.probing = True
        self.submit(slot)

    def _fetcher(self, client: Client, *, direct: bool = False) -> Callable[..., Any]:
        key = (client.library, direct)
        return self._fetchers.get(key) or self._fetchers.setdefault(
            key, (direct_fetcher if direct else fetcher)(client, send)
        )

    # -- the end ----------------------------------------------------------------------------------
    def _discard(self, slot: Slot[Any]) -> None:
        if not slot.cancel():  # it had started: a request the sequential loop did not make
            self.wasted += 1

    def _stop(self, exc: Exception) -> None:
        self.active = False
        self.step.stop()
        internal_error(f"prefetching the requests of {self.name}", exc)

    def close(self) -> None:
        """The loop ended: what it never asked for is cancelled (or counted as wasted)."""
        for sent in self.items.clear():
            self._discard(sent.slot)
        for sent in self._late.clear():
            self._never_asked(sent)
        if self.items.first is not None:  # what the run's line shows beside the first request
            self.ahead = deque([self.items.first])
        self.pending.clear()
        self.templates.close()
        self.active = False

    def counts(self) -> dict[str, Any]:
        """This run's figures for the run line."""
        more = {"prefetch": "http", "prefetched": self.hits, "missed": self.misses, "wasted": self.wasted}
        optional = {
            "mismatched": self.mismatched,
            "stale": self.stale,
            "oversize": self.oversize,
            "other": self.other,
            "not_asked": self.not_asked,
        }
        more |= {name: count for name, count in optional.items() if count}
        if self.asked_before is not None:
            more["ahead"] = "asked_before"  # only what its last run asked for, with the same credentials
        return more


def _watched(fetch: Callable[..., Any], known: Taught) -> Callable[..., Any]:
    """``fetch`` for one request of ``known``'s: not sent once an answer to another of its
    requests was over the cap (``Cancelled``: the loop sends it itself), and marks it when
    this one's is. Run by a worker: ``known.oversize`` is the one thing it sets."""
    if known.client.is_async:

        async def afetch(*args: Any) -> Any:
            if known.oversize:
                raise Cancelled()
            outcome = await fetch(*args)
            if isinstance(outcome[0], Oversize):
                known.oversize = True
            return outcome

        return afetch

    def watched(*args: Any) -> Any:
        if known.oversize:
            raise Cancelled()
        outcome = fetch(*args)
        if isinstance(outcome[0], Oversize):
            known.oversize = True
        return outcome

    return watched
