"""The ``[coordination]`` table: which backend the processes of an app share, and ``single_run``.

::

    [coordination]
    backend = "machine"            # the default; or "process", or url = "redis://..."
    password_env = "SCHED_ACCEL_REDIS_PASSWORD"  # with url: the variable holding Redis's password
    single_run = false             # the default for every target (a target's own single_run wins)

:class:`CoordinationSettings` is frozen and checks itself, as the other settings do; the
functions below validate the TOML into it for :mod:`._config`, naming the key in each error.
A Redis URL may hold a password: it is never shown, in an error, a log line or a ``repr``
(:func:`redacted`). Or it comes from the environment, out of the config file: from the
variable ``password_env`` names, else from ``$SCHED_ACCEL_REDIS_PASSWORD`` when that is set
(:func:`redis_password`), and goes only where the owner's rule lets it (:mod:`._credentials`:
``password_env`` names only ``SCHED_ACCEL_...`` variables, and the password goes to the server
``$SCHED_ACCEL_REDIS_URL`` names, or, without it, from a config that passes :func:`config_trusted`).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ._bounds import within
from ._configfile import shown_key
from ._credentials import PASSWORD_ENV, RedisPassword, password_env_problem, password_for
from ._events import REDIS_PASSWORD_WITHHELD
from ._exceptions import Problem
from ._keys import key, keys
from ._log import event
from ._state._trust import CONFIG, Refused, check_file

__all__ = [
    "BACKENDS",
    "COORDINATION_KEYS",
    "PASSWORD_ENV",
    "CoordinationSettings",
    "config_trusted",
    "coordination_table",
    "password_of",
    "redacted",
    "redis_password",
    "target_schedule",
    "url_problem",
]

BackendKind = Literal["process", "machine", "redis"]
BACKENDS: tuple[BackendKind, ...] = ("process", "machine", "redis")
_SCHEMES = ("redis", "rediss", "unix")
_MAX_NAMESPACE = 200
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: Query keys redis-py would take as the server, away from the host and port the URL shows
#: (the backend drops them, and those loosening TLS: ``_coord._redis``).
_SERVER_KEYS = ("host", "port", "path")


def redacted(url: str) -> str:
    """``url`` as it may be shown: its user and password (:func:`._redact.redact_url`), and
    its whole query (redis-py reads a ``password`` and other options there), replaced by ``***``."""
    from ._redact import MASK, redact_url

    if "://" not in url:
        return MASK if "@" in url or "?" in url else url
    shown = redact_url(url)
    return f"{shown.partition('?')[0]}?{MASK}" if "?" in shown else shown


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
    query = dict(urllib.parse.parse_qsl(parts.query))
    if _loosens_tls(query):
        return (
            "a URL that keeps TLS certificates verified (no ssl_cert_reqs, ssl_check_hostname or ssl_exclude_verify_flags "
            "loosening it); only the environment may: export SCHED_ACCEL_REDIS_TLS_INSECURE=1 for a test server"
        )
    if any(key in query for key in _SERVER_KEYS):
        return 'the server in the URL itself, not in its query (host, port, path): "redis://host:6379/0"'
    if parts.scheme.lower() == "unix":
        return None if parts.path.startswith("/") else 'the socket\'s absolute path: "unix:///run/redis/redis.sock"'
    if not parts.hostname:
        return 'a host after the scheme: "redis://host:6379/0"'
    database = parts.path.lstrip("/")
    if database and not database.isdigit():
        return 'the database after the host is a number: "redis://host:6379/0"'
    return None


def _loosens_tls(query: dict[str, str]) -> bool:
    """Whether a URL's query would have redis-py skip a check of the server's certificate."""
    return (
        query.get("ssl_cert_reqs", "required").lower() != "required"
        or query.get("ssl_check_hostname", "").upper() in ("0", "F", "FALSE", "N", "NO")  # redis-py's to_bool
        or "ssl_exclude_verify_flags" in query
    )


@dataclass(frozen=True, slots=True)
class CoordinationSettings:
    """What the processes of an app share (``[coordination]``).

    ``backend`` None means the default: ``"redis"`` when ``url`` is set, else ``"machine"``.
    ``url`` is left out of the ``repr`` (it may hold a password); :attr:`where` shows it redacted.
    ``source`` is the config file they were read from (None: made by the app's own code), whose
    trust decides whether a password of the environment may go to ``url``.
    """

    backend: BackendKind | None = key(
        '"machine" (the default: every process of this user on this machine, no server), "process" (nothing '
        'shared: each process on its own) or "redis" (with url)',
        default=None,
    )
    url: str | None = key(
        'a Redis server shared by processes on any machine: "redis://[:password@]host[:port][/db]", "rediss://..." '
        "(TLS) or \"unix:///path/to/redis.sock\" (needs pip install 'sched-accel[redis]')",
        default=None,
        repr=False,
    )
    single_run: bool = key(
        "true: every target is single_run unless it says single_run = false (default false)", default=False
    )
    namespace: str | None = key(
        "the name under which processes coordinate: those with the same namespace on the same backend share "
        "their claims (default: the config file's path)",
        default=None,
    )
    password_env: str | None = key(
        "with url: the name of the environment variable holding Redis's password, kept out of the "
        "config file (default: $SCHED_ACCEL_REDIS_PASSWORD, when it is set and the URL holds none)",
        default=None,
    )
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.backend is not None and self.backend not in BACKENDS:
            raise ValueError(
                f"coordination.backend must be one of {', '.join(map(repr, BACKENDS))}, got {self.backend!r}"
            )
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
            if (refused := password_env_problem(self.password_env)) is not None:
                raise ValueError(refused)
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
        if self.source is not None and not isinstance(self.source, str):
            raise ValueError(f"coordination.source must be a config file's path, got {self.source!r}")

    @property
    def kind(self) -> BackendKind:
        """The backend in force: the declared one, else redis with a URL, else machine."""
        return self.backend or ("redis" if self.url is not None else "machine")

    @property
    def where(self) -> str:
        """How messages name the backend: ``machine``, ``redis at redis://***@host:6379/0``."""
        return f"redis at {redacted(self.url)}" if self.url is not None else self.kind


def config_trusted(path: str) -> str | None:
    """None when the config file at ``path`` may be trusted with a password of the environment,
    else why not and what to do (one sentence naming the file): the one trust rule of the
    config (``_state._trust.CONFIG``: the user's or root's, writable by nobody else, not a
    symbolic link, in folders only they can change), checked again when the password is sent."""
    try:
        check_file(path, CONFIG)
    except Refused as refused:
        return f"the config {path} {refused.problem}"
    return None


def password_of(settings: CoordinationSettings, environ: Mapping[str, str] = os.environ) -> RedisPassword:
    """Redis's password for ``settings`` (:func:`._credentials.password_for`): withheld from a
    config that fails :func:`config_trusted`, unless ``$SCHED_ACCEL_REDIS_URL`` names its server."""
    if settings.url is None:
        return RedisPassword()
    source = settings.source
    return password_for(
        settings.url, settings.password_env, lambda: None if source is None else config_trusted(source), environ
    )


def redis_password(settings: CoordinationSettings, environ: Mapping[str, str] = os.environ) -> str | None:
    """The password to send with ``settings.url`` (None: the URL's own, or none): :func:`password_of`'s,
    with one ``sched_accel.redis_password_withheld`` line when it is withheld."""
    found = password_of(settings, environ)
    if found.withheld is not None:
        event(REDIS_PASSWORD_WITHHELD, f"{found.withheld}; Redis is asked without it", backend=settings.where)
    return found.value


_ENV_NAME_TEXT = "the name of an environment variable (letters, digits and _, not starting with a digit)"


def _valid_env_name(value: object) -> bool:
    return isinstance(value, str) and _ENV_NAME.fullmatch(value) is not None


_NAMESPACE = f"a non-empty string of at most {_MAX_NAMESPACE} printable characters"


def _valid_namespace(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_NAMESPACE and value.isprintable()


class Validating(Protocol):
    """What of the config's validator these functions use (``_config._Validator``)."""

    path: str  # the config file's
    prefix: str
    errors: list[Problem]

    def fail(self, where: str, key: str, value: object, allowed: str) -> None: ...

    def say(self, text: str) -> None: ...


def coordination_table(v: Validating, raw: object) -> CoordinationSettings:
    """The ``[coordination]`` table, each problem recorded in ``v`` under its key."""
    if not isinstance(raw, dict):
        v.fail("", "coordination", raw, "a table [coordination] of " + ", ".join(sorted(COORDINATION_KEYS)))
        return CoordinationSettings()
    before = len(v.errors)
    for name in raw:
        if name not in COORDINATION_KEYS:
            v.say(
                f"unknown key {v.prefix}coordination.{shown_key(name)}; the keys here are {', '.join(sorted(COORDINATION_KEYS))}"
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
    elif password_env is not None and (refused := password_env_problem(password_env)) is not None:
        v.say(f"{v.prefix}{refused}")
    if len(v.errors) > before:
        return CoordinationSettings()
    try:
        return CoordinationSettings(
            backend=backend,
            url=url,
            single_run=single_run,
            namespace=namespace,
            password_env=password_env,
            source=v.path,
        )
    except ValueError as exc:  # the checks only the settings make (backend and url together)
        v.say(f"{v.prefix}{exc}" if v.prefix else str(exc))
        return CoordinationSettings()


def target_schedule(
    v: Validating, where: str, entry: dict[str, object], top: CoordinationSettings, tick_allowed: str
) -> tuple[bool | None, float | None]:
    """A target's ``single_run`` (None: the ``[coordination]`` default) and ``tick`` (what it
    may say: ``tick_allowed``, its key's words)."""
    single_run = entry.get("single_run")
    if single_run is not None and not isinstance(single_run, bool):
        v.fail(where, "targets.single_run", single_run, "true or false")
        single_run = None
    tick = entry.get("tick")
    if tick is not None and not within("tick", tick):
        v.fail(where, "targets.tick", tick, tick_allowed)
        tick = None
    once = top.single_run if single_run is None else single_run
    if tick is not None and not once:
        v.say(
            f"{where}{v.prefix}targets.tick is the schedule tick of single_run, which is off for this target: "
            "set single_run = true (here or in [coordination]), or remove tick"
        )
    if once and top.kind == "process":
        v.say(
            f'{where}single_run needs a backend the processes share, and {v.prefix}coordination.backend = "process" '
            'shares nothing (each process would run every tick): use backend = "machine" or url = "redis://..."'
        )
    assert single_run is None or isinstance(single_run, bool)
    return single_run, float(tick) if isinstance(tick, int | float) else None


#: The ``[coordination]`` table's keys, by their TOML name (``_keys``: declared on the fields).
COORDINATION_KEYS = keys(CoordinationSettings)
