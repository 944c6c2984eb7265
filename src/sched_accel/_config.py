"""The TOML config: where it is, what it may say, and the frozen settings made from it.

A config is the file named by ``$SCHED_ACCEL_CONFIG``, else ``sched_accel.toml`` in the
working directory, else the ``[tool.sched_accel]`` table of its ``pyproject.toml``. In a
standalone file the same keys sit at the top level and under ``[[targets]]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import _sched_accel_boot as boot

from ._exceptions import ConfigError
from ._targets import TargetSpec

__all__ = ["HostSettings", "RetrySettings", "Settings", "Target", "find_config", "load_config"]

CONCURRENCY_ENV = "SCHED_ACCEL_CONCURRENCY"
CONTROL_ENV = "SCHED_ACCEL_CONTROL"

Mode = Literal["replace", "prefetch"]
OnError = Literal["fallback", "propagate"]

_TOP_KEYS = {
    "concurrency": "default bound for every target, an integer >= 1",
    "control_file": "path of the control file written by `sched-accel on|off`",
    "breaker_threshold": "fallbacks in a row that switch a target off, an integer >= 1",
    "breaker_cooldown": "seconds a tripped target stays off, a number > 0",
    "log": '"loguru" (default) or "stdlib"',
    "retry": "the table [retry]: how rate-limited and transient failures of per-item calls are retried",
    "hosts": 'tables [hosts."api.example.com"]: the limits of one upstream host, shared by every target',
    "targets": "the array of tables [[targets]], one per loop",
}
_RETRY_KEYS = {
    "enabled": "true (default) or false: retry rate-limited and transient failures of per-item calls",
    "deadline": "seconds from an item's first attempt after which its last exception is raised in the loop, a number > 0",
    "attempts": "most attempts of an item whose failures are transient (not rate-limited), an integer >= 1 (default 4)",
    "initial": "the first backoff's widest wait in seconds (full jitter), a number > 0",
    "maximum": "the widest backoff wait in seconds (a Retry-After may ask for longer), a number > 0",
    "on": 'more exception types to retry, as "module:QualName", e.g. ["json:JSONDecodeError"]',
    "patterns": 'regular expressions: an exception whose message matches one is retried, e.g. ["temporarily unavailable"]',
}
_HOST_KEYS = {
    "concurrency": "most requests in flight to this host at once, an integer >= 1",
    "per_second": "most requests started per second (token bucket), a number > 0",
    "burst": "requests let through at once when the bucket is full, an integer >= 1 (default 1)",
    "adaptive": "true (default): halve the concurrency on 429, 503 and timeouts, add 1 back per window of successes",
    "breaker_failures": "failed requests in a row that open this host's circuit, an integer >= 1 (default 5)",
    "breaker_cooldown": "seconds the circuit stays open before one trial request, a number > 0 (default 30)",
}
_TARGET_KEYS = {
    "loop": '"module:qualname" (or "path/to/script.py:qualname") of the function whose body is the loop',
    "fetch": '"module:qualname" of the slow per-item call made inside the loop',
    "items": (
        'where the items come from: a parameter name or position of the loop, "module:NAME" (a module-level '
        'object), "returned-by:module:qualname" (a call made inside the loop), or "learned" (the per-item '
        "calls of the loop's previous run)"
    ),
    "args": 'prefetch mode: the per-item call\'s arguments made from each item, e.g. ["item.chain", "item.address"]',
    "window": "prefetch mode: how many calls may run ahead of the loop, an integer >= 1 (default 2 x concurrency, at least 16)",
    "timeout": (
        "prefetch mode: seconds one attempt of a per-item call may take (its HTTP requests are capped to it); a "
        "timed-out attempt is retried, and TimeoutError reaches the loop once [retry] deadline passes; a number > 0"
    ),
    "skip_sleeps": "prefetch mode: true to skip the loop's own pacing sleeps (time.sleep) while it is accelerated",
    "replacement": '"module:qualname" of a user-written parallel version (replace mode)',
    "mode": '"replace" or "prefetch"; by default replace when `replacement` is set',
    "on_error": '"fallback" (run the original) or "propagate" (raise), for replace mode',
    "concurrency": "this target's bound, an integer >= 1",
    "per_second": "prefetch mode: most per-item calls started per second for this target, a number > 0",
    "burst": "prefetch mode: per-item calls let through at once under per_second, an integer >= 1 (default 1)",
    "retry": "prefetch mode: a table overriding keys of the top-level [retry] for this target",
}


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


@dataclass(frozen=True, slots=True)
class HostSettings:
    """The limits of one upstream host (``[hosts."api.example.com"]``)."""

    concurrency: int | None = None
    per_second: float | None = None
    burst: int = 1
    adaptive: bool = True
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0


@dataclass(frozen=True, slots=True)
class Target:
    """One declared loop, validated."""

    loop: TargetSpec
    mode: Mode
    concurrency: int
    fetch: TargetSpec | None = None
    items: str | int | None = None
    replacement: TargetSpec | None = None
    on_error: OnError = "fallback"
    args: tuple[str, ...] = ()
    window: int | None = None
    timeout: float | None = None
    skip_sleeps: bool = False
    per_second: float | None = None
    burst: int = 1
    retry: RetrySettings = RetrySettings()

    @property
    def name(self) -> str:
        """How logs, the control file and ``sched-accel on|off`` name this target."""
        return self.loop.text


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole config, validated once; ``path`` is None for an empty default config."""

    path: str | None
    targets: tuple[Target, ...] = ()
    concurrency: int = 8
    control_file: str = field(default_factory=lambda: default_control_file())
    breaker_threshold: int = 3
    breaker_cooldown: float = 300.0
    log: Literal["loguru", "stdlib"] = "loguru"
    retry: RetrySettings = RetrySettings()
    hosts: dict[str, HostSettings] = field(default_factory=dict)

    def target(self, name: str) -> Target | None:
        """The target whose loop is ``name``, if declared."""
        return next((t for t in self.targets if t.name == name), None)


def default_control_file() -> str:
    """``$SCHED_ACCEL_CONTROL``, else ``$XDG_STATE_HOME/sched_accel/control.json``."""
    named = os.environ.get(CONTROL_ENV)
    if named:
        return os.path.abspath(named)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "sched_accel", "control.json")


def find_config(cwd: str | None = None) -> str | None:
    """The config file that would be used from ``cwd``; None when there is none."""
    return boot.find_config(cwd)


def load_config(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read, parse and validate a config; raise :class:`ConfigError` saying what to fix."""
    import tomllib

    found = os.fspath(path) if path is not None else find_config()
    if found is None:
        raise ConfigError(
            "no config found: set SCHED_ACCEL_CONFIG to your TOML file, or put sched_accel.toml "
            "(or a [tool.sched_accel] table in pyproject.toml) in the working directory"
        )
    found = os.path.abspath(found)
    try:
        with open(found, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise ConfigError(f"{found}: cannot read the config: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{found}: not valid TOML: {exc}; fix the syntax") from None
    if os.path.basename(found) == "pyproject.toml" or "tool" in data and "sched_accel" in data.get("tool", {}):
        table = data.get("tool", {}).get("sched_accel")
        if not isinstance(table, dict):
            raise ConfigError(f"{found}: has no [tool.sched_accel] table; add one with [[tool.sched_accel.targets]]")
        prefix = "tool.sched_accel."
    else:
        table, prefix = data, ""
    return _Validator(found, prefix, text).settings(table)


class _Validator:
    """Turns the TOML table into Settings, collecting every problem with its place."""

    def __init__(self, path: str, prefix: str, text: str) -> None:
        self.path = path
        self.prefix = prefix
        self.prescanned = set(boot.prescan(text))
        self.errors: list[str] = []

    def fail(self, where: str, key: str, value: object, allowed: str) -> None:
        self.errors.append(f"{where}{self.prefix}{key} = {value!r} is not allowed: {allowed}")

    def settings(self, table: dict[str, Any]) -> Settings:
        self._unknown("", table, _TOP_KEYS)
        concurrency = self._positive_int("", table, "concurrency", 8)
        override = os.environ.get(CONCURRENCY_ENV, "").strip() or None
        if override is not None:
            try:
                value = int(override)
                if value < 1:
                    raise ValueError
                concurrency_override: int | None = value
            except ValueError:
                self.errors.append(f"${CONCURRENCY_ENV} = {override!r} is not allowed: an integer >= 1 (1 = sequential)")
                concurrency_override = None
        else:
            concurrency_override = None
        threshold = self._positive_int("", table, "breaker_threshold", 3)
        cooldown = table.get("breaker_cooldown", 300.0)
        if isinstance(cooldown, bool) or not isinstance(cooldown, int | float) or cooldown <= 0:
            self.fail("", "breaker_cooldown", cooldown, _TOP_KEYS["breaker_cooldown"])
            cooldown = 300.0
        log = table.get("log", "loguru")
        if log not in ("loguru", "stdlib"):
            self.fail("", "log", log, _TOP_KEYS["log"])
            log = "loguru"
        control = table.get("control_file")
        if control is not None and not (isinstance(control, str) and control):
            self.fail("", "control_file", control, "a non-empty path")
            control = None
        if control is not None and not os.environ.get(CONTROL_ENV):
            control = os.path.join(os.path.dirname(self.path), os.path.expanduser(control))
        else:
            control = default_control_file()
        retry = self._retry("", table.get("retry", {}), RetrySettings(), "retry.")
        hosts = self._hosts(table.get("hosts", {}))
        targets = self._targets(table.get("targets", []), concurrency_override or concurrency, retry)
        if concurrency_override is not None:
            targets = [_with_concurrency(t, concurrency_override) for t in targets]
        if self.errors:
            more = f" (and {len(self.errors) - 1} more: {'; '.join(self.errors[1:])})" if len(self.errors) > 1 else ""
            raise ConfigError(f"{self.path}: {self.errors[0]}{more}")
        return Settings(
            path=self.path,
            targets=tuple(targets),
            concurrency=concurrency_override or concurrency,
            control_file=control,
            breaker_threshold=threshold,
            breaker_cooldown=float(cooldown),
            log=log,
            retry=retry,
            hosts=hosts,
        )

    def _number(self, where: str, table: dict[str, Any], key: str, default: float | None, allowed: str, section: str) -> float | None:
        value = table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
            self.fail(where, section + key, value, allowed)
            return default
        return float(value)

    def _bool(self, where: str, table: dict[str, Any], key: str, default: bool, section: str) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.fail(where, section + key, value, "true or false")
            return default
        return value

    def _retry(self, where: str, raw: object, base: RetrySettings, section: str) -> RetrySettings:
        """A ``[retry]`` table over ``base`` (the defaults, or the top-level table for a target)."""
        if not isinstance(raw, dict):
            self.fail(where, section.rstrip("."), raw, "a table of " + ", ".join(sorted(_RETRY_KEYS)))
            return base
        self._unknown(where, raw, _RETRY_KEYS, section)
        numbers = {
            key: self._number(where, raw, key, getattr(base, key), _RETRY_KEYS[key], section)
            for key in ("deadline", "initial", "maximum")
        }
        on = raw.get("on", list(base.on))
        if not isinstance(on, list) or not all(isinstance(name, str) and _valid_type_name(name) for name in on):
            self.fail(where, section + "on", on, _RETRY_KEYS["on"])
            on = list(base.on)
        patterns = raw.get("patterns", list(base.patterns))
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p and _valid_pattern(p) for p in patterns):
            self.fail(where, section + "patterns", patterns, _RETRY_KEYS["patterns"])
            patterns = list(base.patterns)
        return RetrySettings(
            enabled=self._bool(where, raw, "enabled", base.enabled, section),
            deadline=numbers["deadline"] or base.deadline,
            attempts=self._positive_int(where, raw, "attempts", base.attempts, section),
            initial=numbers["initial"] or base.initial,
            maximum=numbers["maximum"] or base.maximum,
            on=tuple(on),
            patterns=tuple(patterns),
        )

    def _hosts(self, raw: object) -> dict[str, HostSettings]:
        if not isinstance(raw, dict):
            self.fail("", "hosts", raw, 'tables [hosts."api.example.com"], one per upstream host')
            return {}
        hosts: dict[str, HostSettings] = {}
        for name, entry in raw.items():
            section = f'hosts."{name}".'
            if not _valid_host(name):
                self.fail("", "hosts", name, 'a host name, optionally with its port: "api.example.com" or "127.0.0.1:8080"')
                continue
            if not isinstance(entry, dict):
                self.fail("", section.rstrip("."), entry, "a table of " + ", ".join(sorted(_HOST_KEYS)))
                continue
            self._unknown("", entry, _HOST_KEYS, section)
            concurrency = self._positive_int("", entry, "concurrency", 1, section) if "concurrency" in entry else None
            hosts[name.strip().lower()] = HostSettings(
                concurrency=concurrency,
                per_second=self._number("", entry, "per_second", None, _HOST_KEYS["per_second"], section),
                burst=self._positive_int("", entry, "burst", 1, section),
                adaptive=self._bool("", entry, "adaptive", True, section),
                breaker_failures=self._positive_int("", entry, "breaker_failures", 5, section),
                breaker_cooldown=self._number("", entry, "breaker_cooldown", 30.0, _HOST_KEYS["breaker_cooldown"], section)
                or 30.0,
            )
        return hosts

    def _unknown(self, where: str, table: dict[str, Any], known: dict[str, str], section: str = "") -> None:
        for key in table:
            if key not in known:
                self.errors.append(
                    f"{where}unknown key {self.prefix}{section}{key!s}; the keys here are {', '.join(sorted(known))}"
                )

    def _positive_int(self, where: str, table: dict[str, Any], key: str, default: int, section: str = "") -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(where, section + key, value, "an integer >= 1")
            return default
        return value

    def _targets(self, raw: object, default_concurrency: int, retry: RetrySettings) -> list[Target]:
        if not isinstance(raw, list):
            self.fail("", "targets", raw, "an array of tables: write each target under [[" + self.prefix + "targets]]")
            return []
        targets: list[Target] = []
        seen: set[str] = set()
        for index, entry in enumerate(raw, start=1):
            if not isinstance(entry, dict):
                self.fail("", "targets", entry, "each target is a table under [[" + self.prefix + "targets]]")
                continue
            loop_text = entry.get("loop")
            label = f"target {index} ({loop_text}): " if isinstance(loop_text, str) else f"target {index}: "
            target = self._target(label, entry, default_concurrency, retry)
            if target is None:
                continue
            if target.name in seen:
                self.fail(label, "targets.loop", target.name, "each loop is declared once")
                continue
            seen.add(target.name)
            targets.append(target)
        return targets

    def _spec(self, where: str, entry: dict[str, Any], key: str, *, allow_path: bool) -> TargetSpec | None:
        value = entry.get(key)
        if value is None:
            return None
        try:
            return TargetSpec.parse(value, base=os.path.dirname(self.path), allow_path=allow_path)
        except ValueError as exc:
            self.fail(where, f"targets.{key}", value, str(exc))
            return None

    def _target(self, where: str, entry: dict[str, Any], default_concurrency: int, retry: RetrySettings) -> Target | None:
        before = len(self.errors)
        self._unknown(where, entry, _TARGET_KEYS, "targets.")
        if "loop" not in entry:
            self.errors.append(f"{where}missing key {self.prefix}targets.loop: {_TARGET_KEYS['loop']}")
            return None
        loop = self._spec(where, entry, "loop", allow_path=True)
        if loop is not None and loop.text not in self.prescanned:
            self.fail(where, "targets.loop", loop.text, 'write it as a one-line string: loop = "module:function"')
        fetch = self._spec(where, entry, "fetch", allow_path=False)
        replacement = self._spec(where, entry, "replacement", allow_path=False)
        mode = entry.get("mode", "replace" if replacement is not None else "prefetch")
        if mode not in ("replace", "prefetch"):
            self.fail(where, "targets.mode", mode, _TARGET_KEYS["mode"])
        elif mode == "replace" and replacement is None and "replacement" not in entry:
            self.errors.append(f"{where}mode = 'replace' needs {self.prefix}targets.replacement = \"module:function\"")
        elif mode == "prefetch" and fetch is None and "fetch" not in entry:
            self.errors.append(
                f"{where}a target needs {self.prefix}targets.fetch (prefetch mode: the slow per-item call) "
                f"or {self.prefix}targets.replacement (replace mode: your parallel version)"
            )
        items = entry.get("items")
        if items is not None and not _valid_items(items):
            self.fail(where, "targets.items", items, _TARGET_KEYS["items"])
        if mode == "prefetch" and items is None and "items" not in entry:
            self.errors.append(f"{where}prefetch mode needs {self.prefix}targets.items: {_TARGET_KEYS['items']}")
        args = entry.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) and _valid_item_path(a) for a in args):
            self.fail(where, "targets.args", args, _TARGET_KEYS["args"])
            args = []
        window = self._positive_int(where, entry, "window", 1, "targets.") if "window" in entry else None
        timeout = entry.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0):
            self.fail(where, "targets.timeout", timeout, _TARGET_KEYS["timeout"])
        skip_sleeps = entry.get("skip_sleeps", False)
        if not isinstance(skip_sleeps, bool):
            self.fail(where, "targets.skip_sleeps", skip_sleeps, "true or false")
        on_error = entry.get("on_error", "fallback")
        if on_error not in ("fallback", "propagate"):
            self.fail(where, "targets.on_error", on_error, _TARGET_KEYS["on_error"])
        concurrency = (
            self._positive_int(where, entry, "concurrency", default_concurrency, "targets.")
            if "concurrency" in entry
            else default_concurrency
        )
        per_second = self._number(where, entry, "per_second", None, _TARGET_KEYS["per_second"], "targets.")
        burst = self._positive_int(where, entry, "burst", 1, "targets.")
        if "retry" in entry:
            retry = self._retry(where, entry["retry"], retry, "targets.retry.")
        if len(self.errors) > before or loop is None:
            return None
        return Target(
            loop=loop,
            mode=mode,
            concurrency=concurrency,
            fetch=fetch,
            items=items,
            replacement=replacement,
            on_error=on_error,
            args=tuple(args),
            window=window,
            timeout=float(timeout) if timeout is not None else None,
            skip_sleeps=bool(skip_sleeps),
            per_second=per_second,
            burst=burst,
            retry=retry,
        )


def _with_concurrency(target: Target, concurrency: int) -> Target:
    from dataclasses import replace

    return replace(target, concurrency=concurrency)


def _valid_items(items: object) -> bool:
    if isinstance(items, bool):
        return False
    if isinstance(items, int):
        return items >= 0
    if not isinstance(items, str) or not items:
        return False
    spec = items.removeprefix("returned-by:")
    if ":" in spec:
        try:
            TargetSpec.parse(spec, allow_path=False)
        except ValueError:
            return False
        return True
    return items.isidentifier()


def _valid_type_name(name: str) -> bool:
    module, sep, qualname = name.partition(":")
    return bool(sep) and all(p.isidentifier() for p in module.split(".")) and all(
        p.isidentifier() for p in qualname.split(".")
    )


def _valid_pattern(pattern: str) -> bool:
    import re

    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _valid_host(name: object) -> bool:
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/ @?#"):
        return False
    host, sep, port = name.strip().rpartition(":") if name.count(":") == 1 else ("", "", name)
    return not sep or (bool(host) and port.isdigit())


def _valid_item_path(path: str) -> bool:
    parts = path.split(".")
    return parts[0] == "item" and all(parts[1:])
