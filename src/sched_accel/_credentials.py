"""Where Redis's password may go: where the app's owner says, never where a config says.

A password of the environment (``$SCHED_ACCEL_REDIS_PASSWORD``, or the variable the config's
``password_env`` names) is the owner's. Whoever can write a config must not be able to send
it, or any other secret of the environment, to a server of their choosing:

- ``password_env`` may name only a variable starting with ``SCHED_ACCEL_``, or one the owner
  lists in ``$SCHED_ACCEL_PASSWORD_ENVS`` (comma-separated; read from the environment only);
- the password goes only to a server that ``$SCHED_ACCEL_REDIS_URL`` names (comma-separated
  Redis URLs: scheme, host and port must match; nothing else of them is read), or, when that
  is not set, only when the config file passes the trust rule (``_coordination.config_trusted``).

Otherwise it is withheld (:attr:`RedisPassword.withheld` says why): the backend connects
without it, Redis refuses, and the app falls back as when Redis is down. A password in the
URL itself is the config's own, and goes where the config says.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "PASSWORD_ENV",
    "PASSWORD_ENVS_ENV",
    "REDIS_URL_ENV",
    "RedisPassword",
    "password_env_problem",
    "password_for",
    "server_of",
]

#: Where Redis's password is read from when ``password_env`` names no other variable.
PASSWORD_ENV = "SCHED_ACCEL_REDIS_PASSWORD"
#: The owner's list (comma-separated) of more variables ``password_env`` may name.
PASSWORD_ENVS_ENV = "SCHED_ACCEL_PASSWORD_ENVS"
#: The Redis servers (comma-separated URLs) a password of the environment may be sent to.
REDIS_URL_ENV = "SCHED_ACCEL_REDIS_URL"
_OWN_PREFIX = "SCHED_ACCEL_"
_SCHEMES = ("redis", "rediss", "unix")
Environ = Mapping[str, str]


def password_env_problem(name: str, environ: Environ = os.environ) -> str | None:
    """Why a config may not name the variable ``name`` as ``password_env`` (one line, saying
    how to fix it), or None: it starts with ``SCHED_ACCEL_``, or the owner listed it."""
    if name.startswith(_OWN_PREFIX) or name in {n.strip() for n in environ.get(PASSWORD_ENVS_ENV, "").split(",")}:
        return None
    return (
        f"coordination.password_env = {name!r} is refused: a config may name only variables starting with "
        f"{_OWN_PREFIX} (else it could send any secret of the environment to the server it names): rename the "
        f"variable to {_OWN_PREFIX}..., or export {PASSWORD_ENVS_ENV}={name}"
    )


def server_of(url: str) -> str:
    """Where a Redis URL connects, as messages show it: ``host:port`` (the default port filled
    in), or the socket's path; never its user, password or query."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() == "unix":
        return parts.path
    host = parts.hostname or "?"
    return f"[{host}]:{parts.port or 6379}" if ":" in host else f"{host}:{parts.port or 6379}"


def _server_key(url: str) -> tuple[str, str] | None:
    """``(scheme, server)`` of a Redis URL; None when it is not one."""
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        return (scheme, server_of(url)) if scheme in _SCHEMES else None
    except ValueError:  # a port that is not a number
        return None


@dataclass(frozen=True, slots=True)
class RedisPassword:
    """Redis's password as the environment and the config give it (the value is never shown).

    ``value`` is what to send (None: the URL's own, or none); ``source`` where it comes from
    (``the URL``, ``$VARIABLE``, or None: no password); ``withheld`` why a password of the
    environment is not sent to this server (None: it is, or there is none)."""

    value: str | None = field(default=None, repr=False)
    source: str | None = None
    withheld: str | None = None


def password_for(
    url: str, password_env: str | None, untrusted: Callable[[], str | None], environ: Environ = os.environ
) -> RedisPassword:
    """Redis's password for ``url``, withheld unless the owner's rule lets it go there (module
    docstring); ``untrusted()`` says why the config may not be trusted with it (None: it may).
    ``password_env`` named and not set is a ``ValueError`` (which says what to set, never a value)."""
    if password_env is not None:
        variable, password = password_env, environ.get(password_env)
        if password is None:
            raise ValueError(
                f"coordination.password_env = {variable!r}, and ${variable} is not set "
                "in this process's environment: export it, or remove password_env"
            )
    elif urllib.parse.urlsplit(url).password is not None:
        return RedisPassword(source="the URL")
    else:
        variable, password = PASSWORD_ENV, environ.get(PASSWORD_ENV) or None
        if password is None:
            return RedisPassword()
    why = _withheld(url, variable, untrusted, environ)
    if why is None:
        return RedisPassword(password, f"${variable}")
    return RedisPassword(
        source=f"${variable}", withheld=f"the password in ${variable} is not sent to {server_of(url)}: {why}"
    )


def _withheld(url: str, variable: str, untrusted: Callable[[], str | None], environ: Environ) -> str | None:
    """Why the password in ``$variable`` may not go to ``url``, or None."""
    if (refused := password_env_problem(variable, environ)) is not None:
        return refused
    allowed = environ.get(REDIS_URL_ENV, "").strip()
    if allowed:
        if _server_key(url) in {_server_key(one.strip()) for one in allowed.split(",")} - {None}:
            return None
        return f"${REDIS_URL_ENV} does not name this server (scheme, host and port): correct coordination.url, or add it there"
    problem = untrusted()
    return None if problem is None else f"{problem}; or name the server in ${REDIS_URL_ENV}"
