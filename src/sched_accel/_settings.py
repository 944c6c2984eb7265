"""The settings: frozen, slotted, validated at construction, with every default in one place.

:mod:`._config` reads TOML into these; a program may build them itself and pass a
:class:`Settings` to :func:`sched_accel.install`. A value out of range raises
``ValueError`` naming the field. Where the items of a loop come from is parsed once, into
one of the :data:`ItemSource` forms.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Literal

from ._bounds import bounded, describe
from ._state import default_control_file
from ._targets import TargetSpec

__all__ = [
    "HOST_KEYS",
    "RETRY_KEYS",
    "SAFE_METHODS",
    "TARGET_KEYS",
    "TOP_KEYS",
    "Argument",
    "HostSettings",
    "ItemSource",
    "Learned",
    "ModuleObject",
    "RetrySettings",
    "ReturnedBy",
    "Settings",
    "Target",
    "is_item_path",
    "parse_items",
    "valid_host",
    "valid_pattern",
    "valid_type_name",
]

Mode = Literal["replace", "prefetch"]

#: The only request methods ever sent ahead of the loop: idempotent, and without a body.
SAFE_METHODS = frozenset({"GET", "HEAD"})
OnError = Literal["fallback", "propagate"]


# -- what each key of the config may say (for errors, and for the README's table) -----------
TOP_KEYS = {
    "concurrency": "default bound for every target, " + describe("concurrency"),
    "control_file": "path of the control file written by `sched-accel on|off`",
    "breaker_threshold": "fallbacks in a row that switch a target off, " + describe("breaker_threshold"),
    "breaker_cooldown": "seconds a tripped target stays off, " + describe("breaker_cooldown"),
    "log": '"loguru" (default) or "stdlib"',
    "retry": "the table [retry]: how rate-limited and transient failures of per-item calls are retried",
    "hosts": 'tables [hosts."api.example.com"]: the limits of one upstream host, shared by every target',
    "targets": "the array of tables [[targets]], one per loop",
}
RETRY_KEYS = {
    "enabled": "true (default) or false: retry rate-limited and transient failures of per-item calls",
    "deadline": "seconds from an item's first attempt after which its last exception is raised in the loop, " + describe("deadline"),
    "attempts": "most attempts of an item whose failures are transient (not rate-limited), " + describe("attempts") + " (default 4)",
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
    "breaker_failures": "failed requests in a row that open this host's circuit, " + describe("breaker_failures") + " (default 5)",
    "breaker_cooldown": "seconds the circuit stays open before one trial request, " + describe("breaker_cooldown") + " (default 30)",
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
    "methods": 'HTTP-level prefetch: the request methods that may be sent ahead, a subset of ["GET", "HEAD"] (default both)',
    "max_age": "HTTP-level prefetch: seconds a prefetched answer may wait for the loop before it is not served, " + describe("max_age") + " (default 60)",
    "items": (
        'where the items come from: a parameter name or position of the loop, "module:NAME" (a module-level '
        'object), "returned-by:module:qualname" (a call made inside the loop), or "learned" (the per-item '
        "calls of the loop's previous run)"
    ),
    "args": 'prefetch mode: the per-item call\'s arguments made from each item, e.g. ["item.chain", "item.address"]',
    "window": "prefetch mode: how many calls may run ahead of the loop, " + describe("window") + " (default 16 x concurrency, at least 128)",
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
    "burst": "prefetch mode: per-item calls let through at once under per_second, " + describe("burst") + " (default 1)",
    "retry": "prefetch mode: a table overriding keys of the top-level [retry] for this target",
}


# -- where the items come from -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Argument:
    """``items = "tokens"`` or ``items = 0``: a parameter of the loop, by name or position."""

    where: str | int

    @property
    def text(self) -> str:
        return repr(self.where)


@dataclass(frozen=True, slots=True)
class ModuleObject:
    """``items = "legacy_app.settings:TOKENS"``: a module-level object, read when the loop starts."""

    spec: TargetSpec

    @property
    def text(self) -> str:
        return repr(self.spec.text)


@dataclass(frozen=True, slots=True)
class ReturnedBy:
    """``items = "returned-by:legacy_app.repo:TokenRepo.active"``: what a call made inside
    the loop returns."""

    spec: TargetSpec

    @property
    def text(self) -> str:
        return repr(f"returned-by:{self.spec.text}")


@dataclass(frozen=True, slots=True)
class Learned:
    """``items = "learned"``: the per-item calls of the loop's previous run."""

    @property
    def text(self) -> str:
        return repr("learned")


ItemSource = Argument | ModuleObject | ReturnedBy | Learned

_ITEMS_ALLOWED = (
    'a parameter name or position of the loop, "module:NAME" (a module-level object), '
    '"returned-by:module:qualname" (a call made inside the loop), or "learned" (the per-item '
    "calls of the loop's previous run)"
)


def parse_items(value: object) -> ItemSource:
    """The item source that an ``items`` value names; ValueError saying what is allowed."""
    if isinstance(value, Argument | ModuleObject | ReturnedBy | Learned):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Argument(value)
    if isinstance(value, str) and value:
        if value == "learned":
            return Learned()
        spec = value.removeprefix("returned-by:")
        if ":" in spec:
            try:
                parsed = TargetSpec.parse(spec, allow_path=False)
            except ValueError:
                pass
            else:
                return ReturnedBy(parsed) if value.startswith("returned-by:") else ModuleObject(parsed)
        elif spec == value and value.isidentifier():
            return Argument(value)
    raise ValueError(_ITEMS_ALLOWED)


def valid_type_name(name: str) -> bool:
    module, sep, qualname = name.partition(":")
    return bool(sep) and all(p.isidentifier() for p in module.split(".")) and all(
        p.isidentifier() for p in qualname.split(".")
    )


def valid_pattern(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def valid_host(name: object) -> bool:
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/ @?#"):
        return False
    host, sep, port = name.strip().rpartition(":") if name.count(":") == 1 else ("", "", name)
    return not sep or (bool(host) and port.isdigit())


def is_item_path(path: str) -> bool:
    """``"item"``, ``"item.chain"``, ``"item.0"``: an ``args`` entry (lookups on the item)."""
    parts = path.split(".")
    return parts[0] == "item" and all(parts[1:])


# -- the settings ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How failed per-item calls are retried (``[retry]``, or a target's own ``retry`` table)."""

    enabled: bool = True
    deadline: float = 120.0
    attempts: int = 4
    initial: float = 0.1
    maximum: float = 30.0
    on: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("deadline", "initial", "maximum"):
            bounded("retry", name, getattr(self, name))
        bounded("retry", "attempts", self.attempts)


@dataclass(frozen=True, slots=True)
class HostSettings:
    """The limits of one upstream host (``[hosts."api.example.com"]``)."""

    concurrency: int | None = None
    per_second: float | None = None
    burst: int = 1
    adaptive: bool = True
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0

    def __post_init__(self) -> None:
        bounded("hosts", "concurrency", self.concurrency, optional=True)
        bounded("hosts", "per_second", self.per_second, optional=True)
        bounded("hosts", "burst", self.burst)
        bounded("hosts", "breaker_failures", self.breaker_failures)
        bounded("hosts", "breaker_cooldown", self.breaker_cooldown)


@dataclass(frozen=True, slots=True)
class Target:
    """One declared loop, validated. ``items`` may be given in its config form (``"tokens"``,
    ``0``, ``"module:NAME"``, ...): it is parsed into an :data:`ItemSource`."""

    loop: TargetSpec
    mode: Mode
    concurrency: int
    fetch: TargetSpec | None = None
    items: ItemSource | None = None
    replacement: TargetSpec | None = None
    on_error: OnError = "fallback"
    args: tuple[str, ...] = ()
    window: int | None = None
    timeout: float | None = None
    skip_sleeps: bool = False
    per_second: float | None = None
    burst: int = 1
    retry: RetrySettings = RetrySettings()
    pure: bool = False
    methods: frozenset[str] = frozenset({"GET", "HEAD"})
    max_age: float = 60.0

    def __post_init__(self) -> None:
        if self.mode not in ("replace", "prefetch"):
            raise ValueError(f"targets.mode must be 'replace' or 'prefetch', got {self.mode!r}")
        if self.on_error not in ("fallback", "propagate"):
            raise ValueError(f"targets.on_error must be 'fallback' or 'propagate', got {self.on_error!r}")
        bounded("targets", "concurrency", self.concurrency)
        bounded("targets", "window", self.window, optional=True)
        bounded("targets", "timeout", self.timeout, optional=True)
        bounded("targets", "per_second", self.per_second, optional=True)
        bounded("targets", "burst", self.burst)
        bounded("targets", "max_age", self.max_age)
        methods = frozenset(self.methods)
        if not methods or not methods <= SAFE_METHODS:
            raise ValueError(f"targets.methods must be a non-empty subset of {sorted(SAFE_METHODS)}, got {sorted(methods)!r}")
        object.__setattr__(self, "methods", methods)
        if self.items is not None and not isinstance(self.items, Argument | ModuleObject | ReturnedBy | Learned):
            try:
                object.__setattr__(self, "items", parse_items(self.items))
            except ValueError as exc:
                raise ValueError(f"targets.items = {self.items!r} is not allowed: {exc}") from None

    @property
    def name(self) -> str:
        """How logs, the control file and ``sched-accel on|off`` name this target."""
        return self.loop.text

    @property
    def http(self) -> bool:
        """Whether this target prefetches the loop's requests (no per-item function to run ahead)."""
        return self.mode == "prefetch" and self.fetch is None

    @property
    def window_size(self) -> int:
        """How many calls may run ahead of the loop: ``window``, by default 16 x concurrency,
        at least 128. Deep enough that one slow call does not stall the workers behind it
        (measured: lognormal latencies need about 16 x C), small enough to bound memory."""
        return self.window or max(16 * self.concurrency, 128)


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole config, validated once; ``path`` is None for an empty default config."""

    path: str | None
    targets: tuple[Target, ...] = ()
    concurrency: int = 8
    control_file: str = field(default_factory=default_control_file)
    breaker_threshold: int = 3
    breaker_cooldown: float = 300.0
    log: Literal["loguru", "stdlib"] = "loguru"
    retry: RetrySettings = RetrySettings()
    hosts: dict[str, HostSettings] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bounded("settings", "concurrency", self.concurrency)
        bounded("settings", "breaker_threshold", self.breaker_threshold)
        bounded("settings", "breaker_cooldown", self.breaker_cooldown)
        if self.log not in ("loguru", "stdlib"):
            raise ValueError(f"settings.log must be 'loguru' or 'stdlib', got {self.log!r}")

    @property
    def state_dir(self) -> str:
        """The owner-only folder of our state: the control file's."""
        return os.path.dirname(self.control_file)

    def target(self, name: str) -> Target | None:
        """The target whose loop is ``name``, if declared."""
        return next((t for t in self.targets if t.name == name), None)
