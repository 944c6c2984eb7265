"""The upstream-aware policy: what happens around each attempt of a per-item call.

- ``_retry``: which failures are retried, and after how long (Retry-After, backoff);
- ``_breaker``: the one circuit breaker, used for upstream hosts and for targets;
- ``_host_limit``: a declared limit, and the one we pace to;
- ``_limiter``: one host's limiter (concurrency, token bucket, host-wide pause, AIMD);
- ``_drive``: plans and their thread and task drivers, the one place they differ;
- ``_hosts``: every host's limiter and circuit, shared by the process's targets;
- ``_stats``: what one run went through;
- ``_policy``: retries and limits around each attempt and each request of a run;
- ``_http``: where requests are seen: the wrapper at each library's layer (``_integrations``).
"""

from __future__ import annotations

from ._breaker import CircuitBreaker
from ._drive import GO, Plan, run_async, run_sync
from ._host_limit import HostLimit, paced
from ._hosts import Hosts, HostState, statistics_lines
from ._http import KEPT_FOR_LOOP, LIBRARIES, LOOP, LoopRequests, patch_http, send
from ._limiter import HostLimiter
from ._policy import ATTEMPT, Policy, Tries
from ._retry import Backoff, Failure, classify, retry_after, status_of
from ._stats import HostLimiterStatistics, RunStats

__all__ = [
    "ATTEMPT",
    "Backoff",
    "CircuitBreaker",
    "Failure",
    "GO",
    "HostLimit",
    "HostLimiter",
    "HostLimiterStatistics",
    "HostState",
    "Hosts",
    "KEPT_FOR_LOOP",
    "LIBRARIES",
    "LOOP",
    "LoopRequests",
    "Plan",
    "Policy",
    "RunStats",
    "Tries",
    "classify",
    "paced",
    "patch_http",
    "retry_after",
    "run_async",
    "run_sync",
    "send",
    "statistics_lines",
    "status_of",
]
