"""A limit: what is declared for a host (or a target's own rate), and the limit we pace to."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["HostLimit", "paced"]


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True, slots=True)
class HostLimit:
    """The configured limit of one upstream host; ``None`` means no bound of that kind."""

    concurrency: int | None
    per_second: float | None
    burst: int = 1
    adaptive: bool = True  # AIMD within [1, concurrency]; False keeps the concurrency fixed

    def __post_init__(self) -> None:
        if self.concurrency is not None and not _whole(self.concurrency):
            raise ValueError(f"concurrency must be a whole number >= 1, or None for no bound; got {self.concurrency!r}")
        rate = self.per_second
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < math.inf
        ):
            raise ValueError(f"per_second must be a finite number > 0, or None for no rate limit; got {rate!r}")
        if not _whole(self.burst):
            raise ValueError(f"burst must be a whole number >= 1 (requests let through at once); got {self.burst!r}")


def paced(concurrency: int | None, rate: float | None, burst: int, adaptive: bool = True) -> HostLimit:
    """The limit we pace to, a hair inside the host's own: our admission and the request's
    arrival at the host are apart by a varying delay (a thread waiting for the GIL, a new
    connection), and a request that arrives a little early finds the host's bucket empty.
    One 429 can cost a whole second of Retry-After, so one request of the burst is kept in
    hand for that jitter (one rate interval of slack, e.g. 50 ms at 20/s); with a burst of 1
    the rate is paced 2% slower instead."""
    if rate is not None:
        if burst >= 2:
            burst -= 1
        else:
            rate *= 0.98
    return HostLimit(concurrency, rate, burst, adaptive)
