"""The TOML config: where it is, what it may say, and the frozen settings made from it.

A config is the file named by ``$SCHED_ACCEL_CONFIG``, else ``sched_accel.toml`` in the
working directory, else the ``[tool.sched_accel]`` table of its ``pyproject.toml``. In a
standalone file the same keys sit at the top level and under ``[[targets]]``.
"""

from __future__ import annotations

import os
from dataclasses import fields, replace
from typing import Any

import _sched_accel_boot as boot

from ._bounds import describe, within
from ._configfile import read_table, shown, shown_key, shown_text
from ._coordination import CoordinationSettings, coordination_table, target_schedule
from ._exceptions import ConfigError
from ._settings import (
    HOST_KEYS as _HOST_KEYS,
)
from ._settings import (
    METRICS_KEYS as _METRICS_KEYS,
)
from ._settings import (
    RETRY_KEYS as _RETRY_KEYS,
)
from ._settings import (
    SAFE_METHODS,
    HostSettings,
    ItemSource,
    MetricsSettings,
    RetrySettings,
    ReturnedBy,
    Settings,
    Target,
    is_item_path,
    listen_address,
    parse_items,
    parse_reads,
    valid_host,
    valid_pattern,
    valid_type_name,
)
from ._settings import (
    TARGET_KEYS as _TARGET_KEYS,
)
from ._settings import (
    TOP_KEYS as _TOP_KEYS,
)
from ._state import CONTROL_ENV, control_file_problem, default_control_file
from ._targets import TargetSpec
from ._unpatchable import Role, refused_module

__all__ = ["find_config", "load_config"]

CONCURRENCY_ENV = "SCHED_ACCEL_CONCURRENCY"

#: The defaults, from the dataclasses only.
_SETTINGS = Settings(path=None, control_file="")
_HOST = HostSettings()
_RETRY = RetrySettings()
_TARGET: dict[str, Any] = {f.name: f.default for f in fields(Target)}
_LISTED = 6  # the problems a message names; the rest are counted


def find_config(cwd: str | None = None) -> str | None:
    """The config file that would be used from ``cwd``; None when there is none."""
    return boot.find_config(cwd)


def load_config(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read, parse and validate a config; raise :class:`ConfigError` saying what to fix."""
    try:
        found = os.fspath(path) if path is not None else find_config()
    except TypeError:
        raise ConfigError(f"{shown(path)} is not a config: name a TOML file by its path (a str or a Path)") from None
    if found is None:
        raise ConfigError(
            "no config found: set SCHED_ACCEL_CONFIG to your TOML file, or put sched_accel.toml "
            "(or a [tool.sched_accel] table in pyproject.toml) in the working directory"
        )
    found = os.path.abspath(found)
    table, prefix, text = read_table(found)
    return _Validator(found, prefix, text).settings(table)


class _Validator:
    """Turns the TOML table into Settings, collecting every problem with its place."""

    def __init__(self, path: str, prefix: str, text: str) -> None:
        self.path = path
        self.prefix = prefix
        self.prescanned = set(boot.prescan(text))
        self.errors: list[str] = []
        self.coordination = CoordinationSettings()

    def fail(self, where: str, key: str, value: object, allowed: str) -> None:
        self.errors.append(f"{where}{self.prefix}{key} = {shown(value)} is not allowed: {allowed}")

    def settings(self, table: dict[str, Any]) -> Settings:
        self._unknown("", table, _TOP_KEYS)
        concurrency = self._positive_int("", table, "concurrency", _SETTINGS.concurrency)
        concurrency_override = self._override()
        threshold = self._positive_int("", table, "breaker_threshold", _SETTINGS.breaker_threshold)
        cooldown = self._number(
            "", table, "breaker_cooldown", _SETTINGS.breaker_cooldown, _TOP_KEYS["breaker_cooldown"], ""
        )
        log = table.get("log", _SETTINGS.log)
        if log not in ("auto", "loguru", "stdlib"):
            self.fail("", "log", log, _TOP_KEYS["log"])
            log = _SETTINGS.log
        user_control = default_control_file()
        control = self._control_file(table.get("control_file"), os.path.dirname(user_control))
        retry = self._retry("", table.get("retry", {}), _RETRY, "retry.")
        hosts = self._hosts(table.get("hosts", {}))
        self.coordination = coordination_table(self, table.get("coordination", {}))
        metrics = self._metrics(table.get("metrics", {}))
        targets = self._targets(table.get("targets", []), concurrency_override or concurrency, retry)
        if concurrency_override is not None:
            targets = [replace(t, concurrency=concurrency_override) for t in targets]
        if self.errors:
            listed = "; ".join(self.errors[1:_LISTED]) + ("; ..." if len(self.errors) > _LISTED else "")
            more = f" (and {len(self.errors) - 1} more: {listed})" if len(self.errors) > 1 else ""
            raise ConfigError(f"{self.path}: {self.errors[0]}{more}")
        return Settings(
            path=self.path,
            targets=tuple(targets),
            concurrency=concurrency_override or concurrency,
            control_file=user_control,
            app_control_file=control,
            breaker_threshold=threshold,
            breaker_cooldown=cooldown or _SETTINGS.breaker_cooldown,
            log=log,
            retry=retry,
            hosts=hosts,
            coordination=self.coordination,
            metrics=metrics,
        )

    def _control_file(self, value: object, state_dir: str) -> str | None:
        """This app's control file as the config names it (relative to the config's folder), when
        it is directly in the state folder; ignored when ``$SCHED_ACCEL_CONTROL`` names the state
        folder (the environment decides where state lives)."""
        if value is None:
            return None
        if not (isinstance(value, str) and value and "\0" not in value):
            self.fail("", "control_file", value, "a non-empty path")
            return None
        if os.environ.get(CONTROL_ENV):
            return None
        path = os.path.normpath(os.path.join(os.path.dirname(self.path), os.path.expanduser(value)))
        if (problem := control_file_problem(path, state_dir)) is not None:
            self.fail("", "control_file", value, problem)
            return None
        return path

    def _override(self) -> int | None:
        """``$SCHED_ACCEL_CONCURRENCY``, which overrides every target's concurrency."""
        raw = os.environ.get(CONCURRENCY_ENV, "").strip()
        if raw:
            if raw.isdigit() and within("concurrency", int(raw)):
                return int(raw)
            self.errors.append(
                f"${CONCURRENCY_ENV} = {shown(raw)} is not allowed: {describe('concurrency')} (1 = sequential)"
            )
        return None

    def _number(
        self, where: str, table: dict[str, Any], key: str, default: float | None, allowed: str, section: str
    ) -> float | None:
        value = table.get(key, default)
        if value is None:
            return None
        if not within(key, value):  # a number in the key's range (``_bounds``)
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
        if not isinstance(on, list) or not all(isinstance(name, str) and valid_type_name(name) for name in on):
            self.fail(where, section + "on", on, _RETRY_KEYS["on"])
            on = list(base.on)
        patterns = raw.get("patterns", list(base.patterns))
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p and valid_pattern(p) for p in patterns):
            self.fail(where, section + "patterns", patterns, _RETRY_KEYS["patterns"])
            patterns = list(base.patterns)
        return RetrySettings(
            enabled=self._bool(where, raw, "enabled", base.enabled, section),
            transient=self._bool(where, raw, "transient", base.transient, section),
            deadline=numbers["deadline"] or base.deadline,
            attempts=self._positive_int(where, raw, "attempts", base.attempts, section),
            initial=numbers["initial"] or base.initial,
            maximum=numbers["maximum"] or base.maximum,
            on=tuple(on),
            patterns=tuple(patterns),
        )

    def _metrics(self, raw: object) -> MetricsSettings:
        """The ``[metrics]`` table."""
        if not isinstance(raw, dict):
            self.fail("", "metrics", raw, "a table [metrics] of " + ", ".join(sorted(_METRICS_KEYS)))
            return MetricsSettings()
        self._unknown("", raw, _METRICS_KEYS, "metrics.")
        prometheus = raw.get("prometheus")
        if prometheus is not None and listen_address(prometheus) is None:
            self.fail("", "metrics.prometheus", prometheus, _METRICS_KEYS["prometheus"])
            return MetricsSettings()
        return MetricsSettings(prometheus=prometheus)

    def _hosts(self, raw: object) -> dict[str, HostSettings]:
        if not isinstance(raw, dict):
            self.fail("", "hosts", raw, 'tables [hosts."api.example.com"], one per upstream host')
            return {}
        hosts: dict[str, HostSettings] = {}
        for name, entry in raw.items():
            section = f'hosts."{name}".'
            if not valid_host(name):
                self.fail(
                    "", "hosts", name, 'a host name, optionally with its port: "api.example.com" or "127.0.0.1:8080"'
                )
                continue
            if not isinstance(entry, dict):
                self.fail("", section.rstrip("."), entry, "a table of " + ", ".join(sorted(_HOST_KEYS)))
                continue
            self._unknown("", entry, _HOST_KEYS, section)
            concurrency = self._positive_int("", entry, "concurrency", 1, section) if "concurrency" in entry else None
            try:
                reads = parse_reads(entry.get("reads", []))
            except ValueError:
                self.fail("", section + "reads", entry["reads"], _HOST_KEYS["reads"])
                reads = _HOST.reads
            hosts[name.strip().lower()] = HostSettings(
                concurrency=concurrency,
                per_second=self._number("", entry, "per_second", None, _HOST_KEYS["per_second"], section),
                burst=self._positive_int("", entry, "burst", _HOST.burst, section),
                adaptive=self._bool("", entry, "adaptive", _HOST.adaptive, section),
                breaker_failures=self._positive_int("", entry, "breaker_failures", _HOST.breaker_failures, section),
                breaker_cooldown=self._number(
                    "", entry, "breaker_cooldown", _HOST.breaker_cooldown, _HOST_KEYS["breaker_cooldown"], section
                )
                or _HOST.breaker_cooldown,
                reads=reads,
            )
        return hosts

    def _unknown(self, where: str, table: dict[str, Any], known: dict[str, str], section: str = "") -> None:
        for key in table:
            if key not in known:
                self.errors.append(
                    f"{where}unknown key {self.prefix}{section}{shown_key(key)}; the keys here are {', '.join(sorted(known))}"
                )

    def _positive_int(self, where: str, table: dict[str, Any], key: str, default: int, section: str = "") -> int:
        value = table.get(key, default)
        if not within(key, value):
            self.fail(where, section + key, value, describe(key))
            return default
        return int(value)

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
            label = f"target {index} ({shown_text(loop_text)}): " if isinstance(loop_text, str) else f"target {index}: "
            target = self._target(label, entry, default_concurrency, retry)
            if target is None:
                continue
            if target.name in seen:
                self.fail(label, "targets.loop", target.name, "each loop is declared once")
                continue
            seen.add(target.name)
            targets.append(target)
        return targets

    def _spec(self, where: str, entry: dict[str, Any], key: Role, *, allow_path: bool) -> TargetSpec | None:
        value = entry.get(key)
        if value is None:
            return None
        try:
            return TargetSpec.parse(value, base=os.path.dirname(self.path), allow_path=allow_path, role=key)
        except ValueError as exc:
            self.fail(where, f"targets.{key}", value, str(exc))
            return None

    def _target(
        self, where: str, entry: dict[str, Any], default_concurrency: int, retry: RetrySettings
    ) -> Target | None:
        before = len(self.errors)
        self._unknown(where, entry, _TARGET_KEYS, "targets.")
        if "loop" not in entry:
            self.errors.append(f"{where}missing key {self.prefix}targets.loop: {_TARGET_KEYS['loop']}")
            return None
        loop = self._spec(where, entry, "loop", allow_path=True)
        if loop is not None and loop.text not in self.prescanned:
            self.fail(where, "targets.loop", loop.text, 'write it as a one-line string: loop = "module:function"')
        # fetch = "http" (or none): the loop's requests are prefetched, not a function.
        fetch = None if entry.get("fetch") == "http" else self._spec(where, entry, "fetch", allow_path=False)
        replacement = self._spec(where, entry, "replacement", allow_path=False)
        mode = entry.get("mode", "replace" if replacement is not None else "prefetch")
        if mode not in ("replace", "prefetch"):
            self.fail(where, "targets.mode", mode, _TARGET_KEYS["mode"])
        elif mode == "replace" and replacement is None and "replacement" not in entry:
            self.errors.append(f"{where}mode = 'replace' needs {self.prefix}targets.replacement = \"module:function\"")
        items: ItemSource | None = None
        if entry.get("items") is not None:
            try:
                items = parse_items(entry["items"])
            except ValueError:
                self.fail(where, "targets.items", entry["items"], _TARGET_KEYS["items"])
            if isinstance(items, ReturnedBy) and items.spec.module is not None:
                if (refused := refused_module(items.spec.module, "items")) is not None:
                    self.fail(where, "targets.items", entry["items"], refused)
                items = ReturnedBy(replace(items.spec, role="items"))
        if mode == "prefetch" and fetch is not None and items is None and "items" not in entry:
            more = f"{_TARGET_KEYS['items']}; or leave fetch out to prefetch the loop's HTTP requests"
            self.errors.append(
                f"{where}a per-item function (fetch = {fetch.text!r}) needs {self.prefix}targets.items: {more}"
            )
        pure = self._bool(where, entry, "pure", False, "targets.")
        shadow = self._bool(where, entry, "shadow", False, "targets.")
        if shadow and fetch is None:
            self.errors.append(
                f'{where}{self.prefix}targets.shadow = true needs a per-item function: set fetch = "module:qualname"'
            )
        methods = entry.get("methods", sorted(_TARGET["methods"]))
        if (
            not isinstance(methods, list)
            or not methods
            or not all(isinstance(m, str) and m.upper() in SAFE_METHODS for m in methods)
        ):
            self.fail(where, "targets.methods", methods, _TARGET_KEYS["methods"])
            methods = sorted(_TARGET["methods"])
        max_age = self._number(where, entry, "max_age", _TARGET["max_age"], _TARGET_KEYS["max_age"], "targets.")
        args = entry.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) and is_item_path(a) for a in args):
            self.fail(where, "targets.args", args, _TARGET_KEYS["args"])
            args = []
        window = self._positive_int(where, entry, "window", 1, "targets.") if "window" in entry else None
        timeout = entry.get("timeout")
        if timeout is not None and not within("timeout", timeout):
            self.fail(where, "targets.timeout", timeout, _TARGET_KEYS["timeout"])
            timeout = None
        skip_sleeps = self._bool(where, entry, "skip_sleeps", False, "targets.")
        on_error = entry.get("on_error", _TARGET["on_error"])
        if on_error not in ("fallback", "propagate"):
            self.fail(where, "targets.on_error", on_error, _TARGET_KEYS["on_error"])
        concurrency = (
            self._positive_int(where, entry, "concurrency", default_concurrency, "targets.")
            if "concurrency" in entry
            else default_concurrency
        )
        per_second = self._number(where, entry, "per_second", None, _TARGET_KEYS["per_second"], "targets.")
        burst = self._positive_int(where, entry, "burst", _TARGET["burst"], "targets.")
        if "retry" in entry:
            retry = self._retry(where, entry["retry"], retry, "targets.retry.")
        single_run, tick = target_schedule(self, where, entry, self.coordination)
        if len(self.errors) > before or loop is None:
            return None
        try:
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
                skip_sleeps=skip_sleeps,
                per_second=per_second,
                burst=burst,
                retry=retry,
                pure=pure,
                shadow=shadow,
                methods=frozenset(m.upper() for m in methods),
                max_age=float(max_age) if max_age is not None else _TARGET["max_age"],
                single_run=single_run,
                tick=tick,
            )
        except ValueError as exc:  # a check only the settings make: the same one line
            self.errors.append(f"{where}{exc}")
            return None
