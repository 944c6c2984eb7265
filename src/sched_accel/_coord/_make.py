"""The backend a config asks for: made here, from the ``[coordination]`` settings.

A Redis one names its keys under the app's secret (``_names.key_names``): the owner's variable,
else the password sent; without either, a ``redis_keys_guessable`` line says so, once per server.
"""

from __future__ import annotations

import urllib.parse

from .._coordination import CoordinationSettings, redis_password
from .._events import REDIS_KEYS_GUESSABLE
from .._exceptions import CoordinationUnavailable
from .._log import event
from ._base import Backend
from ._machine import MachineBackend
from ._names import KEY_SECRET_ENV, key_names
from ._process import ProcessBackend
from ._redis import RedisBackend

__all__ = ["make_backend"]

_said_guessable: set[str] = set()  # the servers whose guessable key names were said (once each)


def make_backend(settings: CoordinationSettings, state_dir: str | None, kind: str | None = None) -> Backend:
    """A backend of ``kind`` (default: the configured one); CoordinationUnavailable if it cannot be had.
    A Redis one names its keys under the app's secret (``_coord._names.key_names``: the owner's
    variable, else the password sent); without one, a ``redis_keys_guessable`` line says so, once."""
    kind = kind or settings.kind
    if kind == "process":
        return ProcessBackend()
    if kind == "machine":
        if not state_dir:
            raise CoordinationUnavailable("the machine backend needs the state folder, and there is none")
        return MachineBackend(state_dir)
    assert settings.url is not None
    try:
        password = redis_password(settings)
    except ValueError as exc:  # password_env names a variable that is not set: said by check, and here
        raise CoordinationUnavailable(f"{settings.where}: {exc}") from None
    in_url = urllib.parse.urlsplit(settings.url).password
    names = key_names(
        settings.namespace or settings.source or "", password or (in_url and urllib.parse.unquote(in_url))
    )
    if names.key is None and settings.where not in _said_guessable:
        _said_guessable.add(settings.where)
        event(
            REDIS_KEYS_GUESSABLE,
            "the app's keys on Redis are named from its namespace alone, which another client of the server can "
            f"derive; set ${KEY_SECRET_ENV} to one random value in every process of the app (or give Redis a password) "
            "to name them under a secret",
            backend=settings.where,
        )
    try:
        return RedisBackend(settings.url, prefix=names.prefix, key=names.key, password=password)
    except ValueError as exc:  # checked when the config was read; redis-py may still refuse it
        raise CoordinationUnavailable(f"{settings.where}: {exc}") from None
