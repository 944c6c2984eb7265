"""What each key of the config may say, in words: for the errors naming a key, and the README's table.

The ranges come from :mod:`._bounds`, so a message always says the range that is checked.
"""

from __future__ import annotations

from ._bounds import describe

__all__ = ["COORDINATION_KEYS", "HOST_KEYS", "METRICS_KEYS", "RETRY_KEYS", "TARGET_KEYS", "TOP_KEYS"]

TOP_KEYS = {
    "concurrency": "default bound for every target, " + describe("concurrency"),
    "control_file": (
        "this app's control file, written by `sched-accel on|off`: a file directly in the state folder "
        "(the folder of $SCHED_ACCEL_CONTROL, else $XDG_STATE_HOME/sched_accel), not its control.json; "
        "default: control.json in the app's folder there; ignored when $SCHED_ACCEL_CONTROL is set"
    ),
    "breaker_threshold": "fallbacks in a row that switch a target off, " + describe("breaker_threshold"),
    "breaker_cooldown": "seconds a tripped target stays off, " + describe("breaker_cooldown"),
    "log": '"auto" (default: the stdlib logger when the app configured logging, else loguru), "loguru" or "stdlib"',
    "retry": "the table [retry]: how rate-limited and transient failures of per-item calls are retried",
    "hosts": 'tables [hosts."api.example.com"]: the limits of one upstream host, shared by every target',
    "coordination": "the table [coordination]: what the processes of the app share (the backend) and single_run",
    "metrics": 'the table [metrics]: prometheus = "127.0.0.1:9464" serves the runs\' figures for Prometheus',
    "targets": "the array of tables [[targets]], one per loop",
}
RETRY_KEYS = {
    "enabled": "true (default) or false: retry rate-limited and transient failures of per-item calls",
    "transient": "true or false (default): also retry 502, 504, a 503 without Retry-After, resets and timeouts, "
    "which the sequential loop meets too (a 429 or a 503 with Retry-After our concurrency may have caused is retried anyway)",
    "deadline": "seconds from an item's first attempt after which its last exception is raised in the loop, "
    + describe("deadline"),
    "attempts": "most attempts of an item whose failures are transient (transient = true, on, patterns), "
    + describe("attempts")
    + " (default 4)",
    "initial": "the first backoff's widest wait in seconds (full jitter), " + describe("initial"),
    "maximum": "the widest backoff wait in seconds (a Retry-After may ask for longer), " + describe("maximum"),
    "on": 'more exception types to retry, as "module:QualName", e.g. ["json:JSONDecodeError"]',
    "patterns": 'regular expressions: an exception whose message matches one is retried, e.g. ["temporarily unavailable"]',
}
HOST_KEYS = {
    "concurrency": "most requests in flight to this host at once, " + describe("concurrency"),
    "per_second": "most requests started per second (token bucket), " + describe("per_second"),
    "burst": "requests let through at once when the bucket is full, " + describe("burst") + " (default 1)",
    "adaptive": "true (default): halve the concurrency on 429, 503 and timeouts, add 1 back per window of successes",
    "breaker_failures": "failed requests in a row that open this host's circuit, "
    + describe("breaker_failures")
    + " (default 5)",
    "breaker_cooldown": "seconds the circuit stays open before one trial request, "
    + describe("breaker_cooldown")
    + " (default 30)",
    "reads": (
        "requests of this host that only read, beyond GET, HEAD, OPTIONS, GraphQL queries and the known JSON-RPC "
        'reads: a list of "METHOD /path" (a path ending in * is a prefix) and "jsonrpc:method" (* matches any '
        'characters), e.g. ["POST /graphql", "jsonrpc:getBalance", "POST /search/*"]'
    ),
}
TARGET_KEYS = {
    "loop": '"module:qualname" (or "path/to/script.py:qualname") of the function whose body is the loop',
    "fetch": (
        'prefetch mode: "http" (the default: the loop\'s GET and HEAD requests are sent ahead, nothing else) or '
        '"module:qualname" of a per-item function to run ahead (only when it writes nothing: see `pure`)'
    ),
    "pure": (
        "prefetch mode: true to confirm that the `fetch` function only reads (no prints, logs, DB or file writes, "
        "no assignments outside itself), when sched_accel cannot tell from its code"
    ),
    "shadow": (
        "prefetch mode: true to run the `fetch` function ahead of the loop as a shadow: its GET and HEAD requests "
        "are sent ahead and kept, its prints and logs dropped, any other effect stops it; the loop's own call then "
        "runs in place, answered only with the exact requests it makes (not with `pure`)"
    ),
    "methods": 'HTTP-level prefetch: the request methods that may be sent ahead, a subset of ["GET", "HEAD"] (default both)',
    "max_age": "HTTP-level prefetch: seconds a prefetched answer may wait for the loop before it is not served, "
    + describe("max_age")
    + " (default 60)",
    "items": (
        'where the items come from: a parameter name or position of the loop, "module:NAME" (a module-level '
        'object), "returned-by:module:qualname" (a call made inside the loop), or "learned" (the per-item '
        "calls of the loop's previous run)"
    ),
    "args": 'prefetch mode: the per-item call\'s arguments made from each item, e.g. ["item.chain", "item.address"]',
    "window": "prefetch mode: how many calls may run ahead of the loop, "
    + describe("window")
    + " (default 16 x concurrency, at least 128)",
    "timeout": (
        "prefetch mode: seconds one attempt of a per-item call may take (its HTTP requests are capped to it); a "
        "timed-out attempt is retried, and TimeoutError reaches the loop once [retry] deadline passes; "
        + describe("timeout")
    ),
    "skip_sleeps": "prefetch mode: true to skip the loop's own pacing sleeps (time.sleep) while it is accelerated",
    "replacement": '"module:qualname" of a user-written parallel version (replace mode)',
    "mode": '"replace" or "prefetch"; by default replace when `replacement` is set',
    "on_error": '"fallback" (run the original) or "propagate" (raise), for replace mode',
    "concurrency": "this target's bound, " + describe("concurrency"),
    "per_second": "prefetch mode: most per-item calls started per second for this target, " + describe("per_second"),
    "burst": "prefetch mode: per-item calls let through at once under per_second, "
    + describe("burst")
    + " (default 1)",
    "retry": "prefetch mode: a table overriding keys of the top-level [retry] for this target",
    "single_run": (
        "true: each call of the loop runs in one process per schedule tick across the processes sharing the "
        "[coordination] backend (the others skip it and return None); false: every process runs it; "
        "default: [coordination] single_run"
    ),
    "tick": (
        "single_run: the schedule's tick in seconds, " + describe("tick") + "; a call belongs to tick "
        "floor(time / tick), its time being the scheduled run time under APScheduler or schedule, else the clock"
    ),
}
METRICS_KEYS = {
    "prometheus": (
        '"HOST:PORT" where this process serves its metrics for Prometheus at /metrics, e.g. "127.0.0.1:9464" '
        "(the port: " + describe("port") + '; an IPv6 host in brackets: "[::1]:9464"); '
        "default: not served (an app's own OpenTelemetry MeterProvider gets them all the same); "
        "needs pip install 'sched-accel[otel]'"
    ),
}
COORDINATION_KEYS = {
    "backend": (
        '"machine" (the default: every process of this user on this machine, no server), "process" (nothing '
        'shared: each process on its own) or "redis" (with url)'
    ),
    "url": 'a Redis server shared by processes on any machine: "redis://[:password@]host[:port][/db]", "rediss://..." '
    "(TLS) or \"unix:///path/to/redis.sock\" (needs pip install 'sched-accel[redis]')",
    "password_env": "with url: the name of the environment variable holding Redis's password, kept out of the "
    "config file (default: $SCHED_ACCEL_REDIS_PASSWORD, when it is set and the URL holds none)",
    "single_run": "true: every target is single_run unless it says single_run = false (default false)",
    "namespace": (
        "the name under which processes coordinate: those with the same namespace on the same backend share "
        "their claims (default: the config file's path)"
    ),
}
