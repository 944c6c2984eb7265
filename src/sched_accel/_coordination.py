"""The ``[coordination]`` table: which backend the processes of an app share, and ``single_run``.

::

    [coordination]
    backend = "machine"            # the default; or "process", or url = "redis://..."
    password_env = "REDIS_PASSWORD"  # with url: the variable holding Redis's password
    single_run = false             # the default for every target (a target's own single_run wins)

:class:`CoordinationSettings` is frozen and checks itself, as the other settings do; the
functions below validate the TOML into it for :mod:`._config`, naming the key in each error.
A Redis URL may hold a password: it is never shown, in an error, a log line or a ``repr``
(:func:`redacted`). Or it comes from the environment, out of the config file: from the
variable ``password_env`` names, else from ``$SCHED_ACCEL_REDIS_PASSWORD`` when that is set
(:func:`redis_password`).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ._bounds import within
from ._configfile import shown_key
from ._keys import COORDINATION_KEYS, TARGET_KEYS

__all__ = [
    "BACKENDS",
    "PASSWORD_ENV",
    "CoordinationSettings",
    "coordination_table",
    "redacted",
    "redis_password",
    "target_schedule",
    "url_problem",
]

BackendKind = Literal["process", "machine", "redis"]
BACKENDS: tuple[BackendKind, ...] = ("process", "machine", "redis")
_SCHEMES = ("redis", "rediss", "unix")
_MAX_NAMESPACE = 200
#: Where Redis's password is read from when ``password_env`` names no other variable.
PASSWORD_ENV = "SCHED_ACCEL_REDIS_PASSWORD"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def redacted(url: str) -> str:
    """``url`` as it may be shown: whatever stands before its last ``@`` (user and password),
    and its query (redis-py reads a ``password`` there too), replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***" if "@" in url or "?" in url else url
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    if "?" in rest:
        rest = rest.partition("?")[0] + "?***"
    return f"{scheme}{sep}{rest}"


class _TypeName:
    """Shown as ``<list>``: a value of the wrong type may still hold a URL and its password."""

    def __init__(self, value: object) -> None:
        self._name = type(value).__name__

    def __repr__(self) -> str:
        return f"<{self._name}>"


def _hidden(url: object) -> object:
    """How a ``url`` that is refused may be shown: redacted, or a number as it is, else by its type."""
    if isinstance(url, str):
        return redacted(url)
    return url if isinstance(url, int | float | bool) else _TypeName(url)


def url_problem(url: object) -> str | None:
    """Why ``url`` is not a Redis URL we can connect to, in words that never quote it; None if it is."""
    if not isinstance(url, str) or not url:
        return 'a string: "redis://host:6379/0", "rediss://..." or "unix:///path/to/redis.sock"'
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return "a URL without spaces or control characters"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES:
        return 'a redis://, rediss:// (TLS) or unix:// URL, e.g. "redis://host:6379/0"'
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        return "its port must be a number from 0 to 65535"
    if parts.fragment:
        return "a URL without a #fragment"
    if parts.scheme.lower() == "unix":
        return None if parts.path.startswith("/") else 'the socket\'s absolute path: "unix:///run/redis/redis.sock"'
    if not parts.hostname:
        return 'a host after the scheme: "redis://host:6379/0"'
    database = parts.path.lstrip("/")
    if database and not database.isdigit():
        return 'the database after the host is a number: "redis://host:6379/0"'
    return None


@dataclass(frozen=True, slots=True)
class CoordinationSettings:
    """What the processes of an app share (``[coordination]``).

    ``backend`` None means the default: ``"redis"`` when ``url`` is set, else ``"machine"``.
    ``url`` is left out of the ``repr`` (it may hold a password); :attr:`where` shows it redacted.
    """

    backend: BackendKind | None = None
    url: str | None = field(default=None, repr=False)
    single_run: bool = False
    namespace: str | None = None
    password_env: str | None = None

    def __post_init__(self) -> None:
        if self.backend is not None and self.backend not in BACKENDS:
            raise ValueError(f"coordination.backend must be one of {', '.join(map(repr, BACKENDS))}, got {self.backend!r}")
        if self.url is not None:
            if (problem := url_problem(self.url)) is not None:
                shown = redacted(self.url) if isinstance(self.url, str) else type(self.url).__name__
                raise ValueError(f"coordination.url = {shown!r} is not allowed: {problem}")
            if self.backend not in (None, "redis"):
                raise ValueError(
                    f"coordination.url is the redis backend's, and backend = {self.backend!r}: remove one of them"
                )
        elif self.backend == "redis":
            raise ValueError('coordination.backend = "redis" needs coordination.url = "redis://host:6379/0"')
        if self.password_env is not None:
            if not _valid_env_name(self.password_env):
                raise ValueError(f"coordination.password_env must be {_ENV_NAME_TEXT}, got {self.password_env!r}")
            if self.url is None:
                raise ValueError("coordination.password_env is the redis backend's password: set coordination.url too")
            if urllib.parse.urlsplit(self.url).password is not None:
                raise ValueError(
                    "coordination.url holds a password and coordination.password_env names another: remove one of them"
                )
        if not isinstance(self.single_run, bool):
            raise ValueError(f"coordination.single_run must be true or false, got {self.single_run!r}")
        if self.namespace is not None and not _valid_namespace(self.namespace):
            raise ValueError(f"coordination.namespace must be {_NAMESPACE}, got {self.namespace!r}")

    @property
    def kind(self) -> BackendKind:
        """The backend in force: the declared one, else redis with a URL, else machine."""
        return self.backend or ("redis" if self.url is not None else "machine")

    @property
    def where(self) -> str:
        """How messages name the backend: ``machine``, ``redis at redis://***@host:6379/0``."""
        return f"redis at {redacted(self.url)}" if self.url is not None else self.kind


def redis_password(settings: CoordinationSettings, environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """Redis's password from the environment (None: the URL's own, or none). ``password_env``
    named and not set is a ``ValueError`` (which says what to set, never a value)."""
    if settings.password_env is not None:
        password = environ.get(settings.password_env)
        if password is None:
            raise ValueError(
                f"coordination.password_env = {settings.password_env!r}, and ${settings.password_env} is not set "
                "in this process's environment: export it, or remove password_env"
            )
        return password
    if settings.url is None or urllib.parse.urlsplit(settings.url).password is not None:
        return None
    return environ.get(PASSWORD_ENV) or None


_ENV_NAME_TEXT = "the name of an environment variable (letters, digits and _, not starting with a digit)"


def _valid_env_name(value: object) -> bool:
    return isinstance(value, str) and _ENV_NAME.fullmatch(value) is not None


_NAMESPACE = f"a non-empty string of at most {_MAX_NAMESPACE} printable characters"


def _valid_namespace(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_NAMESPACE and value.isprintable()


class Validating(Protocol):
    """What of the config's validator these functions use (``_config._Validator``)."""

    prefix: str
    errors: list[str]

    def fail(self, where: str, key: str, value: object, allowed: str) -> None: ...


def coordination_table(v: Validating, raw: object) -> CoordinationSettings:
    """The ``[coordination]`` table, each problem recorded in ``v`` under its key."""
    if not isinstance(raw, dict):
        v.fail("", "coordination", raw, "a table [coordination] of " + ", ".join(sorted(COORDINATION_KEYS)))
        return CoordinationSettings()
    before = len(v.errors)
    for key in raw:
        if key not in COORDINATION_KEYS:
            v.errors.append(
                f"unknown key {v.prefix}coordination.{shown_key(key)}; the keys here are {', '.join(sorted(COORDINATION_KEYS))}"
            )
    backend = raw.get("backend")
    if backend is not None and backend not in BACKENDS:
        v.fail("", "coordination.backend", backend, COORDINATION_KEYS["backend"])
    url = raw.get("url")
    if url is not None and (problem := url_problem(url)) is not None:
        v.fail("", "coordination.url", _hidden(url), problem)
    single_run = raw.get("single_run", False)
    if not isinstance(single_run, bool):
        v.fail("", "coordination.single_run", single_run, "true or false")
    namespace = raw.get("namespace")
    if namespace is not None and not _valid_namespace(namespace):
        v.fail("", "coordination.namespace", namespace, _NAMESPACE)
    password_env = raw.get("password_env")
    if password_env is not None and not _valid_env_name(password_env):
        v.fail("", "coordination.password_env", password_env, _ENV_NAME_TEXT)
    if len(v.errors) > before:
        return CoordinationSettings()
    try:
        return CoordinationSettings(
            backend=backend, url=url, single_run=single_run, namespace=namespace, password_env=password_env
        )
    except ValueError as exc:  # the checks only the settings make (backend and url together)
        v.errors.append(f"{v.prefix}{exc}" if v.prefix else str(exc))
        return CoordinationSettings()


def target_schedule(v: Validating, where: str, entry: dict[str, object], top: CoordinationSettings) -> tuple[bool | None, float | None]:
    """A target's ``single_run`` (None: the ``[coordination]`` default) and ``tick``."""
    single_run = entry.get("single_run")
    if single_run is not None and not isinstance(single_run, bool):
        v.fail(where, "targets.single_run", single_run, "true or false")
        single_run = None
    tick = entry.get("tick")
    if tick is not None and not within("tick", tick):
        v.fail(where, "targets.tick", tick, TARGET_KEYS["tick"])
        tick = None
    once = top.single_run if single_run is None else single_run
    if tick is not None and not once:
        v.errors.append(
            f"{where}{v.prefix}targets.tick is the schedule tick of single_run, which is off for this target: "
            "set single_run = true (here or in [coordination]), or remove tick"
        )
    if once and top.kind == "process":
        v.errors.append(
            f'{where}single_run needs a backend the processes share, and {v.prefix}coordination.backend = "process" '
            'shares nothing (each process would run every tick): use backend = "machine" or url = "redis://..."'
        )
    assert single_run is None or isinstance(single_run, bool)
    return single_run, float(tick) if isinstance(tick, int | float) else None
