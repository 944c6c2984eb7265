"""Requests sent early through each HTTP library's :class:`Client` (``_integrations``): the
function a worker runs for one (send, keep, refuse), and the one the policy runs for a read
the loop sends itself.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic as _monotonic
from typing import Any

from .._engine import Cancelled
from .._integrations import Answer, Args, Client, Kwargs, Oversize, status_of
from .._policy import KEPT_FOR_LOOP
from ._closing import sending, sent

__all__ = ["RETRIED", "Refused", "direct_fetcher", "fetcher"]

#: The statuses after which a request sent early is tried again, as a per-item call would be.
RETRIED = frozenset({429, 502, 503, 504})


class Refused(Exception):
    """A prefetched request answered with a status worth another try; the policy retries it
    (``.response`` is what classify reads), and the loop gets the last answer if it gives up."""

    def __init__(self, kept: Any, answer: Answer) -> None:
        super().__init__(f"HTTP {answer.status_code}")
        self.kept = kept
        self.response = answer
        self.finished = _monotonic()  # a refusal too is never served past max_age


def fetcher(client: Client, send: Callable[..., Any]) -> Callable[..., Any]:
    """The function a worker runs for a request sent early: send (the library's own cookie
    store left alone: ``KEPT_FOR_LOOP``), keep, refuse. An answer over the cap is kept as its
    :class:`Oversize` (never retried, never served)."""
    import time

    if client.is_async:

        async def afetch(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
            if not sending(instance):
                raise Cancelled()  # the loop sends it itself, through the client it uses now
            kept_for_loop = KEPT_FOR_LOOP.set(True)
            try:
                kept = await client.keep(await send(client.library, wrapped, instance, args, kwargs), args)
            finally:
                KEPT_FOR_LOOP.reset(kept_for_loop)
                close = sent(instance)
                if close is not None:
                    await close()
            if isinstance(kept, Oversize):
                return kept, time.monotonic()
            answer = client.status(kept)
            if answer.status_code in RETRIED:
                raise Refused(kept, answer)
            return kept, time.monotonic()

        return afetch

    def fetch(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if not sending(instance):
            raise Cancelled()
        kept_for_loop = KEPT_FOR_LOOP.set(True)
        try:
            kept = client.keep(send(client.library, wrapped, instance, args, kwargs), args)
        finally:
            KEPT_FOR_LOOP.reset(kept_for_loop)
            close = sent(instance)
            if close is not None:
                close()
        if isinstance(kept, Oversize):
            return kept, time.monotonic()
        answer = client.status(kept)
        if answer.status_code in RETRIED:
            raise Refused(kept, answer)
        return kept, time.monotonic()

    return fetch


def direct_fetcher(client: Client, send: Callable[..., Any]) -> Callable[..., Any]:
    """The function the policy runs for a GET or HEAD the loop sends itself: its response
    as the library returns it, untouched; only an answer the policy retries (429, 502-504)
    is read and kept, so that the loop gets the last one if the policy gives up. One whose
    body is over the cap is not retried: announced, the loop gets it unread; found while
    reading, it was closed there, and the request is sent once more for the loop to read."""
    if client.is_async:

        async def afetch(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
            response = await send(client.library, wrapped, instance, args, kwargs)
            if status_of(response) in RETRIED and client.announced(response, args) is None:
                kept = await client.keep(response, args)
                if isinstance(kept, Oversize):
                    return await send(client.library, wrapped, instance, args, kwargs)
                raise Refused(kept, client.status(kept))
            return response

        return afetch

    def fetch(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        response = send(client.library, wrapped, instance, args, kwargs)
        if status_of(response) in RETRIED and client.announced(response, args) is None:
            kept = client.keep(response, args)
            if isinstance(kept, Oversize):
                return send(client.library, wrapped, instance, args, kwargs)
            raise Refused(kept, client.status(kept))
        return response

    return fetch
