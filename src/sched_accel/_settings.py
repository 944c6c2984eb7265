"""The settings: frozen, slotted, validated at construction, with every default in one place.

:mod:`._config` reads TOML into these; a program may build them itself and pass a
:class:`Settings` to :func:`sched_accel.install`. A value out of range raises
``ValueError`` naming the field. Where the items of a loop come from is parsed once, into
one of the :data:`ItemSource` forms.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ._bounds import describe, within
from ._coordination import COORDINATION_KEYS, CoordinationSettings
from ._keys import check, choice, key, keys
from ._state import AppState, Controls, control_file_problem, default_control_file
from ._targets import TargetSpec

__all__ = [
    "COORDINATION_KEYS",
    "HOST_KEYS",
    "METRICS_KEYS",
    "RETRY_KEYS",
    "SAFE_METHODS",
    "TARGET_KEYS",
    "TOP_KEYS",
    "Argument",
    "CoordinationSettings",
    "HostSettings",
    "ItemSource",
    "Learned",
    "MetricsSettings",
    "ModuleObject",
    "Reads",
    "RetrySettings",
    "ReturnedBy",
    "Settings",
    "Target",
    "is_item_path",
    "listen_address",
    "parse_items",
    "parse_reads",
    "valid_host",
    "valid_pattern",
    "valid_type_name",
]

Mode = Literal["replace", "prefetch"]

#: The only request methods ever sent ahead of the loop: idempotent, and without a body.
SAFE_METHODS = frozenset({"GET", "HEAD"})
OnError = Literal["fallback", "propagate"]


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
    return (
        bool(sep)
        and all(p.isidentifier() for p in module.split("."))
        and all(p.isidentifier() for p in qualname.split("."))
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


#: A host to listen on: a name or an IPv4 address (letters, digits, dots, dashes, underscores).
_LISTEN_HOST = re.compile(r"[A-Za-z0-9._-]+")


def listen_address(value: object) -> tuple[str, int] | None:
    """``"127.0.0.1:9464"`` -> ``("127.0.0.1", 9464)``; ``"[::1]:9464"`` -> ``("::1", 9464)``;
    None for anything else (no port, a port out of range, a URL, a path)."""
    if not isinstance(value, str):
        return None
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not within("port", int(port)):
        return None
    if host.startswith("[") and host.endswith("]"):
        inner = host[1:-1]
        return (
            (inner, int(port))
            if inner and all(c in "0123456789abcdefABCDEF:." for c in inner) and ":" in inner
            else None
        )
    return (host, int(port)) if _LISTEN_HOST.fullmatch(host) else None


def is_item_path(path: str) -> bool:
    """``"item"``, ``"item.chain"``, ``"item.0"``: an ``args`` entry (lookups on the item)."""
    parts = path.split(".")
    return parts[0] == "item" and all(parts[1:])


# -- what a host declares that only reads ------------------------------------------------------
#: ``"POST /graphql"``, ``"POST /v1/search/*"``: a method, one space, a path (``*`` last: a prefix).
_READ_REQUEST = re.compile(r"([A-Za-z]+) (/[A-Za-z0-9\-._~%!$&'()+,;=:@/]*)(\*?)")
#: ``"jsonrpc:getBalance"``, ``"jsonrpc:get*"``: a JSON-RPC method (``*``: any characters).
_READ_RPC = re.compile(r"jsonrpc:([A-Za-z0-9_.:/$*-]+)")


@dataclass(frozen=True, slots=True)
class Reads:
    """The requests one host's ``reads`` declares that only read, beyond those
    ``_prefetch._reads`` knows (GET, HEAD, OPTIONS, GraphQL queries, JSON-RPC reads):
    ``requests`` as (method, path, whether the path is a prefix), ``jsonrpc`` the methods."""

    requests: tuple[tuple[str, str, bool], ...] = ()
    jsonrpc: tuple[str, ...] = ()

    def request(self, method: str, path: str) -> bool:
        """Whether ``method`` on ``path`` (the URL's path, as sent) is declared a read."""
        return any(m == method and (path.startswith(p) if prefix else path == p) for m, p, prefix in self.requests)

    def rpc(self, name: str) -> bool:
        """Whether the JSON-RPC method ``name`` is declared a read (case counts)."""
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.jsonrpc)


def parse_reads(value: object) -> Reads:
    """The reads a ``reads`` list declares; ValueError saying what is allowed."""
    if isinstance(value, Reads):
        return value
    if not isinstance(value, list | tuple):
        raise ValueError(HOST_KEYS["reads"])
    requests: list[tuple[str, str, bool]] = []
    jsonrpc: list[str] = []
    for entry in value:
        text = entry.strip() if isinstance(entry, str) else ""
        if (rpc := _READ_RPC.fullmatch(text)) is not None:
            jsonrpc.append(rpc.group(1))
        elif (request := _READ_REQUEST.fullmatch(text)) is not None:
            requests.append((request.group(1).upper(), request.group(2), bool(request.group(3))))
        else:
            raise ValueError(HOST_KEYS["reads"])
    return Reads(tuple(requests), tuple(jsonrpc))


# -- what the keys that are neither numbers nor flags become (``_keys.Key.parse``) -------------------
def _strings(value: Any, allowed: Callable[[str], bool]) -> tuple[str, ...]:
    """A list (or tuple) of strings each ``allowed``, as a tuple; ValueError otherwise."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and allowed(v) for v in value):
        raise ValueError(value)
    return tuple(value)


def _type_names(value: Any) -> tuple[str, ...]:
    return _strings(value, valid_type_name)


def _patterns(value: Any) -> tuple[str, ...]:
    return _strings(value, lambda text: bool(text) and valid_pattern(text))


def _item_paths(value: Any) -> tuple[str, ...]:
    return _strings(value, is_item_path)


def _methods(value: Any) -> frozenset[str]:
    """A non-empty list (or set) of GET and HEAD, in any case: the methods sent ahead."""
    if isinstance(value, frozenset | set):
        value = sorted(value)
    methods = _strings(value, lambda method: method.upper() in SAFE_METHODS)
    if not methods:
        raise ValueError(value)
    return frozenset(m.upper() for m in methods)


def _listen(value: Any) -> Any:
    if listen_address(value) is None:
        raise ValueError(value)
    return value


# -- the settings ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How failed per-item calls are retried (``[retry]``, or a target's own ``retry`` table)."""

    enabled: bool = key(
        "true (default) or false: retry rate-limited and transient failures of per-item calls", default=True
    )
    #: Whether transient failures (502, 504, a 503 without Retry-After, a reset or refused
    #: connection, a timeout) are retried too. Off by default: the sequential loop meets them
    #: as well, and a retry would give the app an answer it would never have seen. What our
    #: concurrency may cause (a 429, a 503 with Retry-After, in a run that had more than one
    #: request in flight) is retried anyway while ``enabled`` (``_policy.Policy.retry_delay``).
    transient: bool = key(
        "true or false (default): also retry 502, 504, a 503 without Retry-After, resets and timeouts, "
        "which the sequential loop meets too (a 429 or a 503 with Retry-After our concurrency may have caused is "
        "retried anyway)",
        default=False,
    )
    deadline: float = key(
        "seconds from an item's first attempt after which its last exception is raised in the loop, ",
        range="deadline",
        default=120.0,
    )
    attempts: int = key(
        "most attempts of an item whose failures are transient (transient = true, on, patterns), ",
        range="attempts",
        tail=" (default 4)",
        default=4,
    )
    initial: float = key("the first backoff's widest wait in seconds (full jitter), ", range="initial", default=0.1)
    maximum: float = key(
        "the widest backoff wait in seconds (a Retry-After may ask for longer), ", range="maximum", default=30.0
    )
    on: tuple[str, ...] = key(
        'more exception types to retry, as "module:QualName", e.g. ["json:JSONDecodeError"]',
        parse=_type_names,
        default=(),
    )
    patterns: tuple[str, ...] = key(
        'regular expressions: an exception whose message matches one is retried, e.g. ["temporarily unavailable"]',
        parse=_patterns,
        default=(),
    )

    def __post_init__(self) -> None:
        check(self, "retry")


@dataclass(frozen=True, slots=True)
class HostSettings:
    """The limits of one upstream host (``[hosts."api.example.com"]``), and what else it answers
    that only reads (``reads``)."""

    concurrency: int | None = key("most requests in flight to this host at once, ", range="concurrency", default=None)
    per_second: float | None = key(
        "most requests started per second (token bucket), ", range="per_second", default=None
    )
    burst: int = key(
        "requests let through at once when the bucket is full, ", range="burst", tail=" (default 1)", default=1
    )
    adaptive: bool = key(
        "true (default): halve the concurrency on 429, 503 and timeouts, add 1 back per window of successes",
        default=True,
    )
    breaker_failures: int = key(
        "failed requests in a row that open this host's circuit, ",
        range="breaker_failures",
        tail=" (default 5)",
        default=5,
    )
    breaker_cooldown: float = key(
        "seconds the circuit stays open before one trial request, ",
        range="breaker_cooldown",
        tail=" (default 30)",
        default=30.0,
    )
    reads: Reads = key(  # given as a list of entries, it is parsed
        "requests of this host that only read, beyond GET, HEAD, OPTIONS, GraphQL queries and the known JSON-RPC "
        'reads: a list of "METHOD /path" (a path ending in * is a prefix) and "jsonrpc:method" (* matches any '
        'characters), e.g. ["POST /graphql", "jsonrpc:getBalance", "POST /search/*"]',
        parse=parse_reads,
        default=Reads(),
    )

    def __post_init__(self) -> None:
        check(self, "hosts")


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Where the runs' figures go besides the app's own OpenTelemetry (``[metrics]``):
    ``prometheus``, the ``"HOST:PORT"`` at which this process serves them for Prometheus
    (``_metrics``); None, the default: no endpoint of ours."""

    prometheus: str | None = key(
        '"HOST:PORT" where this process serves its metrics for Prometheus at /metrics, e.g. "127.0.0.1:9464" '
        "(the port: " + describe("port") + '; an IPv6 host in brackets: "[::1]:9464"); '
        "default: not served (an app's own OpenTelemetry MeterProvider gets them all the same); "
        "needs pip install 'sched-accel[otel]'",
        parse=_listen,
        default=None,
    )

    def __post_init__(self) -> None:
        check(self, "metrics")

    @property
    def address(self) -> tuple[str, int] | None:
        """The (host, port) to listen on, or None."""
        return None if self.prometheus is None else listen_address(self.prometheus)


@dataclass(frozen=True, slots=True)
class Target:
    """One declared loop, validated. ``items`` may be given in its config form (``"tokens"``,
    ``0``, ``"module:NAME"``, ...): it is parsed into an :data:`ItemSource`."""

    loop: TargetSpec = key('"module:qualname" (or "path/to/script.py:qualname") of the function whose body is the loop')
    mode: Mode = key(
        '"replace" or "prefetch"; by default replace when `replacement` is set', parse=choice("replace", "prefetch")
    )
    concurrency: int = key("this target's bound, ", range="concurrency")
    fetch: TargetSpec | None = key(
        'prefetch mode: "http" (the default: the loop\'s GET and HEAD requests are sent ahead, nothing else) or '
        '"module:qualname" of a per-item function to run ahead (only when it writes nothing: see `pure`)',
        default=None,
    )
    items: ItemSource | None = key(
        'where the items come from: a parameter name or position of the loop, "module:NAME" (a module-level '
        'object), "returned-by:module:qualname" (a call made inside the loop), or "learned" (the per-item '
        "calls of the loop's previous run)",
        parse=parse_items,
        default=None,
    )
    replacement: TargetSpec | None = key(
        '"module:qualname" of a user-written parallel version (replace mode)', default=None
    )
    on_error: OnError = key(
        '"fallback" (run the original) or "propagate" (raise), for replace mode',
        parse=choice("fallback", "propagate"),
        default="fallback",
    )
    args: tuple[str, ...] = key(
        'prefetch mode: the per-item call\'s arguments made from each item, e.g. ["item.chain", "item.address"]',
        parse=_item_paths,
        default=(),
    )
    window: int | None = key(
        "prefetch mode: how many calls may run ahead of the loop, ",
        range="window",
        tail=" (default 16 x concurrency, at least 128)",
        default=None,
    )
    timeout: float | None = key(
        "prefetch mode: seconds one attempt of a per-item call may take (its HTTP requests are capped to it); a "
        "timed-out attempt is retried, and TimeoutError reaches the loop once [retry] deadline passes; ",
        range="timeout",
        default=None,
    )
    skip_sleeps: bool = key(
        "prefetch mode: true to skip the loop's own pacing sleeps (time.sleep) while it is accelerated", default=False
    )
    per_second: float | None = key(
        "prefetch mode: most per-item calls started per second for this target, ", range="per_second", default=None
    )
    burst: int = key(
        "prefetch mode: per-item calls let through at once under per_second, ",
        range="burst",
        tail=" (default 1)",
        default=1,
    )
    retry: RetrySettings = key(
        "prefetch mode: a table overriding keys of the top-level [retry] for this target", default=RetrySettings()
    )
    pure: bool = key(
        "prefetch mode: true to confirm that the `fetch` function only reads (no prints, logs, DB or file writes, "
        "no assignments outside itself), when sched_accel cannot tell from its code",
        default=False,
    )
    shadow: bool = key(
        "prefetch mode: true to run the `fetch` function ahead of the loop as a shadow: its GET and HEAD requests "
        "are sent ahead and kept, its prints and logs dropped, any other effect stops it; the loop's own call then "
        "runs in place, answered only with the exact requests it makes (not with `pure`)",
        default=False,
    )
    methods: frozenset[str] = key(
        'HTTP-level prefetch: the request methods that may be sent ahead, a subset of ["GET", "HEAD"] (default both)',
        parse=_methods,
        default=frozenset({"GET", "HEAD"}),
    )
    max_age: float = key(
        "HTTP-level prefetch: seconds a prefetched answer may wait for the loop before it is not served, ",
        range="max_age",
        tail=" (default 60)",
        default=60.0,
    )
    single_run: bool | None = key(  # None: [coordination] single_run (Settings.runs_once)
        "true: each call of the loop runs in one process per schedule tick across the processes sharing the "
        "[coordination] backend (the others skip it and return None); false: every process runs it; "
        "default: [coordination] single_run",
        default=None,
    )
    tick: float | None = key(
        "single_run: the schedule's tick in seconds, ",
        range="tick",
        tail="; a call belongs to tick floor(time / tick), its time being the scheduled run time under APScheduler "
        "or schedule, else the clock",
        default=None,
    )

    def __post_init__(self) -> None:
        check(self, "targets")
        if self.shadow and self.pure:
            raise ValueError("targets.shadow and targets.pure are two ways to run `fetch` ahead: set one of them")

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
    targets: tuple[Target, ...] = key("the array of tables [[targets]], one per loop", default=())
    concurrency: int = key("default bound for every target, ", range="concurrency", default=8)
    #: The user-wide control file; its folder is the state folder (every app's state under it).
    control_file: str = field(default_factory=default_control_file)
    #: This app's control file when its config names one (directly in the state folder);
    #: None: ``control.json`` in the app's folder.
    app_control_file: str | None = key(
        "this app's control file, written by `sched-accel on|off`: a file directly in the state folder "
        "(the folder of $SCHED_ACCEL_CONTROL, else $XDG_STATE_HOME/sched_accel), not its control.json; "
        "default: control.json in the app's folder there; ignored when $SCHED_ACCEL_CONTROL is set",
        toml="control_file",
        default=None,
    )
    breaker_threshold: int = key("fallbacks in a row that switch a target off, ", range="breaker_threshold", default=3)
    breaker_cooldown: float = key("seconds a tripped target stays off, ", range="breaker_cooldown", default=300.0)
    log: Literal["auto", "loguru", "stdlib"] = key(
        '"auto" (default: the stdlib logger when the app configured logging, else loguru), "loguru" or "stdlib"',
        parse=choice("auto", "loguru", "stdlib"),
        default="auto",
    )
    retry: RetrySettings = key(
        "the table [retry]: how rate-limited and transient failures of per-item calls are retried",
        default=RetrySettings(),
    )
    hosts: dict[str, HostSettings] = key(
        'tables [hosts."api.example.com"]: the limits of one upstream host, shared by every target',
        default_factory=dict,
    )
    coordination: CoordinationSettings = key(
        "the table [coordination]: what the processes of the app share (the backend) and single_run",
        default=CoordinationSettings(),
    )
    metrics: MetricsSettings = key(
        'the table [metrics]: prometheus = "127.0.0.1:9464" serves the runs\' figures for Prometheus',
        default=MetricsSettings(),
    )

    def __post_init__(self) -> None:
        check(self, "settings")
        if self.app_control_file is not None and (
            problem := control_file_problem(self.app_control_file, self.state_dir)
        ):
            raise ValueError(f"settings.app_control_file = {self.app_control_file!r} is not allowed: {problem}")
        if self.coordination.kind == "process" and any(self.runs_once(t) for t in self.targets):
            raise ValueError(
                'settings: single_run needs a backend the processes share, not coordination.backend = "process"'
            )

    @property
    def state_dir(self) -> str:
        """The user's owner-only state folder: the user-wide control file's. The machine
        backend's store is in it; each app's own state in :attr:`app_dir`."""
        return os.path.dirname(self.control_file)

    @property
    def app(self) -> AppState:
        """This app's state: the app named by ``[coordination] namespace``, else by the config's
        path (the coordination namespace's rule), in ``apps/`` of the state folder."""
        return AppState(self.state_dir, self.path, self.coordination.namespace, self.app_control_file)

    @property
    def app_dir(self) -> str:
        """This app's state folder (runs, learned calls, ``hosts.json``); '' without a state folder."""
        return self.app.folder if self.state_dir else ""

    @property
    def app_control(self) -> str:
        """This app's control file (``sched-accel off [TARGET]`` with this config)."""
        return self.app.control

    def controls(self, *, announce: bool = False) -> Controls:
        """What switches this app's targets off: ``$SCHED_ACCEL_DISABLED_TARGETS``, this app's
        control file and the user-wide one (``announce``: a running app's, which says each
        target it finds off in one ``switched_off`` line)."""
        return Controls.open(self.app_control if self.state_dir else None, self.control_file, announce=announce)

    def runs_once(self, target: Target) -> bool:
        """Whether ``target`` is single_run: its own say, else ``[coordination] single_run``."""
        return self.coordination.single_run if target.single_run is None else target.single_run

    def target(self, name: str) -> Target | None:
        """The target whose loop is ``name``, if declared."""
        return next((t for t in self.targets if t.name == name), None)


#: Each table's keys, by their TOML name: what each may say (``_keys``: declared on the fields).
TOP_KEYS = keys(Settings)
RETRY_KEYS = keys(RetrySettings)
HOST_KEYS = keys(HostSettings)
METRICS_KEYS = keys(MetricsSettings)
TARGET_KEYS = keys(Target)
