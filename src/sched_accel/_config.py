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

from ._bounds import BOUNDS, describe, within
from ._configfile import read_table, shown, shown_key, shown_text
from ._coordination import CoordinationSettings, coordination_table, target_schedule
from ._exceptions import ConfigError, Problem
from ._keys import declared
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
    TARGET_KEYS as _TARGET_KEYS,
)
from ._settings import (
    TOP_KEYS as _TOP_KEYS,
)
from ._settings import (
    HostSettings,
    ItemSource,
    MetricsSettings,
    RetrySettings,
    ReturnedBy,
    Settings,
    Target,
    parse_items,
    valid_host,
)
from ._state import CONTROL_ENV, control_file_problem, default_control_file
from ._targets import TargetSpec
from ._unpatchable import Role, refused_module

__all__ = ["find_config", "load_config"]

CONCURRENCY_ENV = "SCHED_ACCEL_CONCURRENCY"

#: The defaults, from the dataclasses only.
_RETRY = RetrySettings()
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
        self.errors: list[Problem] = []
        self.coordination = CoordinationSettings()

    def fail(self, where: str, key: str, value: object, allowed: str) -> None:
        """A key's value is not allowed: say where, the key, the value and what is allowed."""
        key = self.prefix + key
        self.errors.append(
            Problem(f"{where}{key} = {shown(value)} is not allowed: {allowed}", where, key, value, allowed)
        )

    def say(self, text: str) -> None:
        """A problem of no one key's value (an unknown key, keys that contradict), in words."""
        self.errors.append(Problem(text))

    def settings(self, table: dict[str, Any]) -> Settings:
        self._unknown("", table, _TOP_KEYS)
        top = self._walk("", table, Settings, "", {})
        concurrency = top["concurrency"]
        concurrency_override = self._override()
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
            said = [str(problem) for problem in self.errors]
            listed = "; ".join(said[1:_LISTED]) + ("; ..." if len(said) > _LISTED else "")
            more = f" (and {len(said) - 1} more: {listed})" if len(said) > 1 else ""
            raise ConfigError(f"{self.path}: {said[0]}{more}", tuple(self.errors))
        return Settings(
            path=self.path,
            targets=tuple(targets),
            concurrency=concurrency_override or concurrency,
            control_file=user_control,
            app_control_file=control,
            breaker_threshold=top["breaker_threshold"],
            breaker_cooldown=top["breaker_cooldown"],
            log=top["log"],
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
            self.say(f"${CONCURRENCY_ENV} = {shown(raw)} is not allowed: {describe('concurrency')} (1 = sequential)")
        return None

    def _walk(
        self,
        where: str,
        table: dict[str, Any],
        cls: type,
        section: str,
        defaults: dict[str, Any],
        *,
        skip: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """The keys of settings class ``cls`` read from ``table`` as their declarations say
        (``_keys``: a number in a range, a flag, or a value its key parses): by field name, each
        the value found (parsed) or, missing or not allowed (a problem recorded), ``defaults``'
        (else the field's own). Those in ``skip`` are the caller's to read."""
        values: dict[str, Any] = {}
        for f, k in declared(cls):
            name = k.toml or f.name
            default = defaults.get(f.name, f.default)
            if name in skip or not (k.range is not None or isinstance(f.default, bool) or k.parse is not None):
                continue
            value = table.get(name, default)
            if k.parse is not None:
                if name in table:
                    try:
                        value = k.parse(value)
                    except ValueError:
                        self.fail(where, section + name, value, k.text)
                        value = default
            elif k.range is None:  # a flag
                if not isinstance(value, bool):
                    self.fail(where, section + name, value, "true or false")
                    value = default
            elif value is not None:
                whole = BOUNDS[k.range][2]
                if not k.allows(value):
                    # A whole number's allowed words are its range; another number's, its key's.
                    self.fail(where, section + name, value, describe(k.range) if whole else k.text)
                    value = default
                elif not whole:
                    value = float(value)
            values[f.name] = value
        return values

    def _retry(self, where: str, raw: object, base: RetrySettings, section: str) -> RetrySettings:
        """A ``[retry]`` table over ``base`` (the defaults, or the top-level table for a target)."""
        if not isinstance(raw, dict):
            self.fail(where, section.rstrip("."), raw, "a table of " + ", ".join(sorted(_RETRY_KEYS)))
            return base
        self._unknown(where, raw, _RETRY_KEYS, section)
        walked = self._walk(where, raw, RetrySettings, section, {f.name: getattr(base, f.name) for f in fields(base)})
        return RetrySettings(**walked)

    def _metrics(self, raw: object) -> MetricsSettings:
        """The ``[metrics]`` table."""
        if not isinstance(raw, dict):
            self.fail("", "metrics", raw, "a table [metrics] of " + ", ".join(sorted(_METRICS_KEYS)))
            return MetricsSettings()
        self._unknown("", raw, _METRICS_KEYS, "metrics.")
        return MetricsSettings(**self._walk("", raw, MetricsSettings, "metrics.", {}))

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
            hosts[name.strip().lower()] = HostSettings(**self._walk("", entry, HostSettings, section, {}))
        return hosts

    def _unknown(self, where: str, table: dict[str, Any], known: dict[str, str], section: str = "") -> None:
        for key in table:
            if key not in known:
                self.say(
                    f"{where}unknown key {self.prefix}{section}{shown_key(key)}; the keys here are {', '.join(sorted(known))}"
                )

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
            self.say(f"{where}missing key {self.prefix}targets.loop: {_TARGET_KEYS['loop']}")
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
            self.say(f"{where}mode = 'replace' needs {self.prefix}targets.replacement = \"module:function\"")
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
            self.say(f"{where}a per-item function (fetch = {fetch.text!r}) needs {self.prefix}targets.items: {more}")
        walked = self._walk(
            where,
            entry,
            Target,
            "targets.",
            {"concurrency": default_concurrency},
            skip=frozenset({"tick", "items", "mode"}),  # read above: items further checked, mode's default
        )
        pure, shadow = walked["pure"], walked["shadow"]
        if shadow and fetch is None:
            self.say(
                f'{where}{self.prefix}targets.shadow = true needs a per-item function: set fetch = "module:qualname"'
            )
        if "retry" in entry:
            retry = self._retry(where, entry["retry"], retry, "targets.retry.")
        single_run, tick = target_schedule(self, where, entry, self.coordination, _TARGET_KEYS["tick"])
        if len(self.errors) > before or loop is None:
            return None
        try:
            return Target(
                loop=loop,
                mode=mode,
                concurrency=walked["concurrency"],
                fetch=fetch,
                items=items,
                replacement=replacement,
                on_error=walked["on_error"],
                args=walked["args"],
                window=walked["window"],
                timeout=walked["timeout"],
                skip_sleeps=walked["skip_sleeps"],
                per_second=walked["per_second"],
                burst=walked["burst"],
                retry=retry,
                pure=pure,
                shadow=shadow,
                methods=walked["methods"],
                max_age=walked["max_age"],
                single_run=single_run,
                tick=tick,
            )
        except ValueError as exc:  # a check only the settings make: the same one line
            self.say(f"{where}{exc}")
            return None
