"""Every event sched_accel logs: its name, the levels it is logged at, what it says, its fields.

The registry an on-call engineer greps by: each ``event(...)`` call names one of these
(``_log.event(RUN, ...)``), never a string, and the README's table of events is this list
(``tests/test_events_documented.py`` holds the two equal, and every call's level and fields
to its entry). The start-up hook (``_sched_accel_boot``), which imports nothing of ours, writes
its lines by hand under these names.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EVENTS", "Event"]


@dataclass(frozen=True, slots=True)
class Event:
    """One event: ``sched_accel.<name>`` at one of ``levels`` (the first unless the call says),
    what it ``says`` (the README's words), and the ``fields`` its calls may name (a run line's
    are documented with the run line)."""

    name: str
    levels: tuple[str, ...]
    says: str
    fields: tuple[str, ...] = ()


# What the events of one README row say together.
_NEVER = "at exit: a target's module was never imported in this process"
_ITEMS_UNSEEN = "this run's items were not found, or are a one-shot iterator that is never read twice"
_BREAKER = "a target's breaker after fallbacks in a row: off for its cool-down, one trial, on again"
_CIRCUIT = "a host's circuit after failed requests in a row: calls go straight through, one trial, closed again"
_COORDINATION = "the shared backend stopped answering (a local share of the limit meanwhile), and came back"
_REDIS_TRUST = "a Redis password not sent to a host the owner did not name; keys without a secret prefix"
_SINGLE_RUN_TROUBLE = "single_run without a tick, without a shared backend, or its backend down and back"
_NOT_SAVED = "state that cannot be written, said once (learned calls then kept in memory)"
_METRICS = "the `[metrics]` Prometheus endpoint, or why not"

ACTIVE = Event(
    "active",
    ("INFO",),
    "once per process: the config, its targets, those patched and the modules still awaited",
    ("config", "targets", "patched", "waiting_for"),
)
NO_CONFIG = Event(
    "no_config",
    ("WARNING",),
    "the flag is on and no config was found (written before anything is loaded)",
    ("cwd", "looked_in"),
)
FLAG_INVALID = Event(
    "flag_invalid",
    ("WARNING",),
    "the flag holds a value that is neither true nor false: sched_accel stays off",
    ("value",),
)
CONFIG_INVALID = Event(
    "config_invalid", ("ERROR",), "the config cannot be used: where, what, how to fix; the app runs unpatched"
)
NO_TARGETS = Event("no_targets", ("WARNING",), "the config declares no `[[targets]]`", ("config",))
DISABLED_TARGET_UNKNOWN = Event(
    "disabled_target_unknown",
    ("WARNING",),
    "`$SCHED_ACCEL_DISABLED_TARGETS` names no target of this config (a typo would leave one on)",
    ("target", "config"),
)
PATCHED = Event(
    "patched",
    ("INFO",),
    "a target's loop is patched: its mode, concurrency, kind",
    ("target", "mode", "concurrency", "kind", "asynchronous"),
)
TARGET_UNRESOLVED = Event(
    "target_unresolved",
    ("ERROR",),
    "a target's `module:qualname` does not resolve (with a did-you-mean); it runs unpatched",
    ("target",),
)
TARGET_NOT_PATCHED = Event(
    "target_not_patched",
    ("WARNING",),
    "a loop in `__main__` cannot be patched here (a tracer or debugger, another thread)",
    ("target",),
)
STILL_WAITING = Event(
    "still_waiting",
    ("WARNING",),
    "a scheduler's first tick came and a target's module is still not imported",
    ("target",),
)
NEVER_PATCHED = Event("never_patched", ("WARNING",), _NEVER, ("target",))
NEVER_IMPORTED = Event("never_imported", ("WARNING",), _NEVER, ("config", "modules"))
FETCH_SHADOWED = Event(
    "fetch_shadowed", ("INFO",), "the per-item function runs ahead as a shadow for its reads", ("target",)
)
FETCH_NOT_SHADOWED = Event(
    "fetch_not_shadowed",
    ("WARNING",),
    "the per-item function could change state the real run reads: HTTP level instead, and why",
    ("target",),
)
FETCH_IS_LIBRARY = Event(
    "fetch_is_library",
    ("WARNING", "ERROR"),
    "`fetch` names an HTTP library's own method: HTTP level does that",
    ("target",),
)
FETCH_UNRESOLVED = Event("fetch_unresolved", ("ERROR",), "the declared `fetch` does not resolve", ("target",))
ITEMS_UNRESOLVED = Event(
    "items_unresolved",
    ("ERROR",),
    "the declared items (an object path, a returned-by call) do not resolve; the loop runs without prefetching",
    ("target",),
)
ITEMS_NOT_FOUND = Event("items_not_found", ("WARNING",), _ITEMS_UNSEEN, ("target",))
ITEMS_NOT_READ_AHEAD = Event("items_not_read_ahead", ("WARNING",), _ITEMS_UNSEEN, ("target",))
SWITCHED_OFF = Event(
    "switched_off",
    ("INFO",),
    "once per target: switched off, and by what (a control file, the variable)",
    ("target", "by"),
)
RUN = Event(
    "run",
    ("INFO", "WARNING"),
    "one per run of a patched loop: outcome, items, the figures (above)",
    ("target", "mode", "outcome", "items", "ok", "failed", "seconds", "concurrency"),
)
PROGRESS = Event(
    "progress",
    ("INFO",),
    "a run longer than a minute: at 60 s, then every 30 s",
    ("target", "done", "items", "failed", "seconds"),
)
NOT_FASTER = Event(
    "not_faster",
    ("WARNING",),
    "requests went out together yet no faster than one at a time: the upstream or the client serialises them",
    ("target", "effective_concurrency", "slowdown", "peak_requests"),
)
OVER_CONCURRENCY = Event(
    "over_concurrency",
    ("WARNING",),
    "the loop waited 30 s for one of its places, held by calls run ahead that may wait on it: its calls go without one for the rest of the run (up to concurrency + 1 in flight), rather than hang",
    ("target", "concurrency"),
)
NOT_ACCELERATED = Event(
    "not_accelerated", ("INFO", "WARNING"), "why a run did not accelerate, and what would make it", ("target",)
)
SHADOW_STOPPED = Event(
    "shadow_stopped", ("INFO",), "a shadow met an effect and stopped there (its reads kept)", ("target", "shadows")
)
FALLBACK = Event(
    "fallback", ("WARNING",), "replace mode: the replacement raised; the original ran", ("target", "reason")
)
BREAKER_OPEN = Event("breaker_open", ("ERROR",), _BREAKER, ("target", "fallbacks", "cooldown", "last_reason"))
BREAKER_HALF_OPEN = Event("breaker_half_open", ("WARNING",), _BREAKER, ("target",))
BREAKER_CLOSED = Event("breaker_closed", ("INFO",), _BREAKER, ("target",))
CIRCUIT_OPEN = Event("circuit_open", ("ERROR",), _CIRCUIT, ("host", "failures", "cooldown"))
CIRCUIT_HALF_OPEN = Event("circuit_half_open", ("WARNING",), _CIRCUIT, ("host",))
CIRCUIT_CLOSED = Event("circuit_closed", ("INFO",), _CIRCUIT, ("host",))
RETRY_GAVE_UP = Event(
    "retry_gave_up",
    ("WARNING",),
    "an item's retry deadline passed: the loop gets its last exception, as without us",
    ("target", "attempts", "failure", "host"),
)
HOST_LIMIT_UNDECLARED = Event(
    "host_limit_undeclared",
    ("WARNING",),
    "a host with no declared rate answered 429: what to declare",
    ("host", "http_429"),
)
COORDINATION_DOWN = Event("coordination_down", ("WARNING",), _COORDINATION, ("backend", "host", "live"))
COORDINATION_BACK = Event("coordination_back", ("INFO",), _COORDINATION, ("backend", "host"))
REDIS_PASSWORD_WITHHELD = Event("redis_password_withheld", ("WARNING",), _REDIS_TRUST, ("backend",))
REDIS_KEYS_GUESSABLE = Event("redis_keys_guessable", ("WARNING",), _REDIS_TRUST, ("backend",))
SINGLE_RUN_CLAIMED = Event(
    "single_run_claimed", ("DEBUG",), "this process claimed the tick", ("target", "tick", "token", "backend")
)
SINGLE_RUN_SKIPPED = Event(
    "single_run_skipped",
    ("INFO",),
    "another process ran this tick: the call returned None",
    ("target", "tick", "source", "backend"),
)
SINGLE_RUN_NO_TICK = Event("single_run_no_tick", ("WARNING",), _SINGLE_RUN_TROUBLE, ("target",))
SINGLE_RUN_UNCOORDINATED = Event("single_run_uncoordinated", ("WARNING",), _SINGLE_RUN_TROUBLE, ("backend", "error"))
SINGLE_RUN_FALLBACK = Event("single_run_fallback", ("WARNING",), _SINGLE_RUN_TROUBLE, ("backend", "error"))
SINGLE_RUN_RECOVERED = Event("single_run_recovered", ("INFO",), _SINGLE_RUN_TROUBLE, ("backend",))
CONTROL_FILE_REFUSED = Event(
    "control_file_refused",
    ("ERROR",),
    "a control file another user could change (or not a file): every target runs unaccelerated",
    ("path",),
)
STATE_REFUSED = Event("state_refused", ("WARNING",), "a state file that fails the trust rule is not used")
LEARNED_DROPPED = Event("learned_dropped", ("WARNING",), "learned calls whose digest failed were dropped", ("target",))
LEARNED_NOT_SAVED = Event("learned_not_saved", ("WARNING",), _NOT_SAVED, ("target", "path"))
RUNS_NOT_SAVED = Event("runs_not_saved", ("WARNING",), _NOT_SAVED, ("folder",))
METRICS_SERVED = Event("metrics_served", ("INFO",), _METRICS, ("address",))
METRICS_NOT_SERVED = Event("metrics_not_served", ("WARNING",), _METRICS, ("address", "serving"))
INTERNAL_ERROR = Event(
    "internal_error",
    ("ERROR",),
    "a failure of ours: the original code runs; please report the line",
    ("where", "error"),
)

#: Every event, in the README table's order.
EVENTS: tuple[Event, ...] = (
    ACTIVE,
    NO_CONFIG,
    FLAG_INVALID,
    CONFIG_INVALID,
    NO_TARGETS,
    DISABLED_TARGET_UNKNOWN,
    PATCHED,
    TARGET_UNRESOLVED,
    TARGET_NOT_PATCHED,
    STILL_WAITING,
    NEVER_PATCHED,
    NEVER_IMPORTED,
    FETCH_SHADOWED,
    FETCH_NOT_SHADOWED,
    FETCH_IS_LIBRARY,
    FETCH_UNRESOLVED,
    ITEMS_UNRESOLVED,
    ITEMS_NOT_FOUND,
    ITEMS_NOT_READ_AHEAD,
    SWITCHED_OFF,
    RUN,
    PROGRESS,
    NOT_FASTER,
    OVER_CONCURRENCY,
    NOT_ACCELERATED,
    SHADOW_STOPPED,
    FALLBACK,
    BREAKER_OPEN,
    BREAKER_HALF_OPEN,
    BREAKER_CLOSED,
    CIRCUIT_OPEN,
    CIRCUIT_HALF_OPEN,
    CIRCUIT_CLOSED,
    RETRY_GAVE_UP,
    HOST_LIMIT_UNDECLARED,
    COORDINATION_DOWN,
    COORDINATION_BACK,
    REDIS_PASSWORD_WITHHELD,
    REDIS_KEYS_GUESSABLE,
    SINGLE_RUN_CLAIMED,
    SINGLE_RUN_SKIPPED,
    SINGLE_RUN_NO_TICK,
    SINGLE_RUN_UNCOORDINATED,
    SINGLE_RUN_FALLBACK,
    SINGLE_RUN_RECOVERED,
    CONTROL_FILE_REFUSED,
    STATE_REFUSED,
    LEARNED_DROPPED,
    LEARNED_NOT_SAVED,
    RUNS_NOT_SAVED,
    METRICS_SERVED,
    METRICS_NOT_SERVED,
    INTERNAL_ERROR,
)
