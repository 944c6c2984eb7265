"""A host's rate, learned from its refusals when it tells none (issue 12).

A host that answers 429 without saying its rate (no ``RateLimit`` or ``X-RateLimit``
fields) is paced by a :class:`RateLearner`: from the first refusal that dominates the
host's recent answers, a client-side rate switches on and follows what the host lets
through, in the manner of a CUBIC congestion window (as the AWS SDKs' adaptive retry mode
does, ``botocore/retries/adaptive.py``), with three differences measured to matter:

- **The cut is to what got through, not to 0.7 of what was sent.** At a refusal the host
  is saturated, so the rate of its accepted answers over the last second *is* its limit
  (the SDK's rule, 0.7 of the send rate, runs a 20/s host at 14 to 17 requests a second).
  A cut still lowers the rate by 10 to 50%, whatever the measure says.
- **A start in doubling steps.** When the learner switches on nothing has been measured
  (the refusals of a first wave come back before its successes); it starts at what the
  host accepted in the last second, and doubles every :data:`DOUBLING` seconds until the
  next refusal, instead of waiting for a cubic curve to climb from a guess; that refusal
  halves it (as TCP's slow start does: the rate one doubling ago was within the limit).
- **Refusals that do not follow the rate switch it off.** A host at its limit stops
  refusing once paced below what it was measured to let through; a host that refuses a
  share of requests whatever the load (a per-key limit, a flaky quota) goes on refusing.
  Still refusing :data:`FUTILE` of its answers over the last :data:`SETTLE` seconds, that
  long after the first cut, with the rate cut to 60% of the highest a cut ever set, the
  learner stands down for that host (a host at its limit, or one that halved it, refuses
  only the rare probe once settled).

Between cuts the rate grows back as ``W(t) = W_max * (1 + SCALE * (t - K)**3)``: quickly
far below the last limit, flat around it, then probing above it. A refusal of a request
admitted before the last cut echoes that cut and changes nothing.

Pure arithmetic on an injected time, no lock: the host's limiter calls it under its own.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["DOUBLING", "FUTILE", "SETTLE", "RateLearner"]

DOUBLING = 0.1  #: seconds per doubling of the rate before the first cut
SCALE = 0.1  #: the cubic's curvature, relative to the last limit (botocore: 0.4 absolute, 0.02 at 20/s)
FUTILE = 0.15  #: the share of answers still refused after SETTLE seconds that makes it stand down
SETTLE = 3.0  #: seconds of learning before refusals are taken to ignore the rate
HOLD = 3.0  #: seconds a rate kept from the last run is held before probing above it
_KEEP = 0.95  #: the new rate, as a share of the measured limit
_FLOOR = 1 / 60  #: never slower than one request a minute


class RateLearner:
    """One host's learned rate; ``rate(now)`` is None while it is not learning."""

    __slots__ = (
        "_accepted",
        "_base",
        "_cut_at",
        "_cut_number",
        "_k",
        "_mark",
        "_peak",
        "_refused",
        "_settled",
        "_start",
        "_w_max",
        "crowd",
        "off",
        "top",
    )

    def __init__(self) -> None:
        self._accepted: deque[float] = deque(maxlen=256)  # answer times of accepted requests
        self._start: float | None = None  # when learning began (doubling until the first cut)
        self._base = 0.0  # the rate at ``_start``, or at the last cut
        self._cut_at = -math.inf
        self._cut_number = 0  # requests admitted up to the last cut: their refusals echo it
        self._mark = -math.inf  # when the last cut was: refusals of requests sent before echo it
        self._w_max = 0.0  # the limit measured at the last cut
        self._k = 0.0
        self._refused: deque[float] = deque(maxlen=256)  # answer times of refused requests
        self._peak = 0.0  # the highest rate a cut set
        self._settled: float | None = None  # when the first cut was
        self.off = False  #: stood down: refusals here do not follow the rate
        self.top = 0.0  #: the limit measured last (kept for the next run)
        #: The app's processes alive (``_shared``'s heartbeats): each one's requests are
        #: refused for all of them, so a learner's own rate explains only its share of the
        #: refusals. It stands down only once its rate fell n times as far (see ``refused``).
        self.crowd = 1

    @property
    def learning(self) -> bool:
        return self._start is not None

    def rate(self, now: float) -> float | None:
        """The rate to pace at, or None (not learning)."""
        if self._start is None:
            return None
        if self._cut_at == -math.inf:  # doubling until the first cut
            return self._base * 2 ** min(40.0, (now - self._start) / DOUBLING)
        t = max(now - self._cut_at, 0.0) - self._k  # before the (kept rate's) cut: held at its floor
        return max(_FLOOR, self._w_max * (1 + SCALE * t * t * t))

    def accepted(self, now: float) -> None:
        self._accepted.append(now)

    def delivered(self, now: float) -> float | None:
        """Accepted answers a second: over the last second, or the last 16 within 5 s when
        fewer came in it (at least 4 of them, 0.25 s apart)."""
        times = [t for t in self._accepted if t > now - 1.0]
        if len(times) < 16:
            times = [t for t in list(self._accepted)[-16:] if t > now - 5.0]
        if len(times) < 4 or times[-1] - times[0] < 0.25:
            return None
        return (len(times) - 1) / (times[-1] - times[0])

    def _share(self, now: float) -> float:
        """The share of answers refused over the last :data:`SETTLE` seconds."""
        refused = sum(1 for t in self._refused if t > now - SETTLE)
        accepted = sum(1 for t in self._accepted if t > now - SETTLE)
        return refused / max(1, refused + accepted)

    def refused(
        self, number: int, now: float, *, dominant: bool, admitted: int, in_flight: int, sent: float | None = None
    ) -> bool:
        """A refusal of request ``number``; True if the rate changed. ``dominant``: refusals
        dominate the host's recent answers; ``admitted``: requests admitted so far; ``sent``:
        when the request went out, if known (a request admitted early may be sent late)."""
        self._refused.append(now)
        if self.off or (number <= self._cut_number if sent is None else sent <= self._mark):
            return False
        if self._start is None:
            if not dominant:
                return False  # a refusal among successes: not the host's rate
            got_through = sum(1 for t in self._accepted if t > now - 1.0) + in_flight
            self._start, self._base = now, max(1.0, float(got_through))
            self._cut_number, self._mark = admitted, now
            return True
        current = self.rate(now) or self._base
        measured = self.delivered(now)
        if self._settled is None:
            self._settled = now  # the first cut: the doubling start is over
        elif now - self._settled >= SETTLE and current <= self._peak * 0.6 / self.crowd and self._share(now) >= FUTILE:
            self.off, self._start = True, None  # refused whatever the rate: not the host's limit
            return True
        if self._cut_at == -math.inf:  # the doubling start ends: one doubling ago was within it
            new = max(current / 2, min(current * 0.9, (measured or 0.0) * _KEEP))
        else:
            new = current * 0.7 if measured is None else measured * _KEEP
            new = min(max(new, current * 0.5), current * 0.9)
        self._peak = max(self._peak, new)
        self._w_max = self.top = new / _KEEP
        self._k = math.cbrt((1 - _KEEP) / SCALE)
        self._cut_at, self._cut_number, self._mark = now, admitted, now
        return True

    def start_at(self, per_second: float, now: float) -> None:
        """Begin at a rate learned by an earlier run: a little under it, held there for
        :data:`HOLD` seconds longer than after a cut before probing above it (a cron job's
        next run has no reason to think its host changed)."""
        self._start, self._base = now, per_second
        self._w_max = self.top = self._peak = per_second
        self._cut_at, self._k, self._settled = now + HOLD, math.cbrt((1 - _KEEP) / SCALE), now

    def stop(self) -> None:
        """The host told its rate, or one was declared: nothing more to learn."""
        self._start = None
