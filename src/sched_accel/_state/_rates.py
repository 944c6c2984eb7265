"""The rates hosts told us, kept for the next run (issue 12): a cron job started anew each
time starts at the rate its host's answers gave the last run, instead of being refused
until the first answer tells it again.

One owner-only file, ``<state>/hosts.json``: ``{"version": 1, "hosts": {"api.example.com":
{"per_second": 20.0, "at": <Unix time>, "how": "told"}}}``, read under the trust rule
(``_trust``). ``how`` is ``told`` (the answers' rate-limit fields said it) or ``learned``
(measured from its refusals, ``_policy._learn``); an entry without it was told. A rate
older than :data:`MAX_AGE` is not used; a declared limit always wins (the caller's rule).

**What is kept is what the host enforced** (issue 24): a told rate is saved only by a run
in whose process the host answered 429 (``HostLimiter.kept``): its fields said a limit and
it refused a request, so the next run is spared its first wave of refusals. A rate told by
the fields alone, on every answer of a run whose requests were all served, is not saved: a
hostile or broken upstream's ``RateLimit-Policy`` of 1 request per 5 s must not pace the
next run against a healthy one. A learned rate was had from refusals and is always saved.
A run that follows a kept told rate without being refused leaves its entry as it was (its
``at`` is not renewed): it is used for a day from the last run the host refused, then a
first wave of refusals confirms it again. The next run starts at a kept rate as at an
enforced one (``_policy._limiter``: at most :data:`~sched_accel._policy._limiter.ENFORCED_SPACING`
latencies apart).
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from ._files import write_private
from ._trust import Refused, log_refused, read_trusted

__all__ = ["MAX_AGE", "LearnedRates"]

#: A rate learned longer ago than this (seconds) is not used: the host may have changed it.
MAX_AGE = 86_400.0
_MAX_BYTES = 256 * 1024
_MAX_HOSTS = 1000


class LearnedRates:
    """The rates of the hosts in one state folder. Never raises: a refused or broken file
    is as none (said once, for a refusal)."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, "hosts.json")

    def _read(self, say: bool = True) -> dict[str, Any]:
        try:
            raw = read_trusted(self.path, limit=_MAX_BYTES)
            body = json.loads(raw.decode("utf-8")) if raw is not None else {}
        except Refused as exc:
            if say:
                log_refused(exc)
            return {}
        except (OSError, ValueError, RecursionError):
            return {}
        hosts = body.get("hosts") if isinstance(body, dict) and body.get("version") == 1 else None
        return hosts if isinstance(hosts, dict) else {}

    def load(self, now: float | None = None) -> dict[str, float]:
        """Each host's rate (requests a second) learned within :data:`MAX_AGE`."""
        return {host: rate for host, (rate, _) in self.kept(now).items()}

    def kept(self, now: float | None = None) -> dict[str, tuple[float, str]]:
        """Each host's rate learned within :data:`MAX_AGE`, and how (``told`` or ``learned``)."""
        now = time.time() if now is None else now
        rates: dict[str, tuple[float, str]] = {}
        for host, entry in list(self._read().items())[:_MAX_HOSTS]:
            if not isinstance(host, str) or not isinstance(entry, dict):
                continue
            rate, at = entry.get("per_second"), entry.get("at")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (rate, at)):
                continue
            assert isinstance(rate, int | float) and isinstance(at, int | float)
            how = "learned" if entry.get("how") == "learned" else "told"
            if 0 < rate <= 1e6 and 0 <= now - at <= MAX_AGE:
                rates[host] = (float(rate), how)
        return rates

    def save(self, rates: dict[str, float | tuple[float, str]], now: float | None = None) -> None:
        """Keep these hosts' rates, each a rate (told) or (rate, how); the others' as they were."""
        if not rates:
            return
        now = time.time() if now is None else now
        hosts = self._read(say=False)  # refused: said when loaded; replaced by an owner-only file
        for host, kept in rates.items():
            rate, how = kept if isinstance(kept, tuple) else (kept, "told")
            hosts[host] = {"per_second": rate, "at": now, "how": how}
        try:
            write_private(self.path, json.dumps({"version": 1, "hosts": dict(list(hosts.items())[-_MAX_HOSTS:])}))
        except Refused as exc:
            log_refused(exc)
        except OSError:
            pass  # a read-only state folder must not break the app
