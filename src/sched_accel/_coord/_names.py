"""The Redis backend's key names: shared by every process of the app, on any machine, and
not derivable by another client of the server (issue 24, item 7).

A key was ``sched_accel:{<namespace hash>:<host>}:tat``: anyone who knew the config's path (or
guessed it: ``/srv/app/sched_accel.toml``) could name an app's keys before it ever wrote them,
and set a pause or a ``single_run`` claim there. Now each name is keyed by a secret the app's
processes share and another client of the server does not have:

- ``$SCHED_ACCEL_REDIS_KEY_SECRET``, when the owner sets it (the same random value in every
  process of the app, on every machine: ``python -c "import secrets; print(secrets.token_urlsafe(32))"``);
- else the Redis password the backend sends (the URL's or the environment's): every process
  that can reach the server has it, on every machine, and a client with other credentials
  (an ACL user of its own) does not;
- else none: the names are the namespace's, as before, and one
  ``sched_accel.redis_keys_guessable`` line says so and what to set.

Why not the per-user secret of ``_state._secret`` (the learned calls' HMAC key)? It is made on
each machine, so processes of one app on two machines would name their keys apart, and share
nothing: the multi-machine deployments Redis exists for would silently stop coordinating.

From that secret and the app's namespace (``[coordination] namespace``, else the config's path)
comes the app's key, ``HMAC-SHA256(secret, namespace)``. Every name is then
``sched_accel:<app>:{<tag>}:<what>``: ``<app>`` (16 hex digits, a per-app prefix the owner can
``SCAN`` for) and ``<tag>`` (32 hex digits: a host, a job, the heartbeats) are HMACs under the
app's key, so neither the host names nor the jobs show, and one client cannot name another
app's keys. Changing the secret (or the password it comes from) renames every key: processes
with the old one and the new one coordinate apart until all have the new one.

What this does not do: a client that may list the server's keys (``KEYS``, ``SCAN``, ``MONITOR``)
still sees the names once they are written, and may overwrite them; what it can then do is
bounded (``_scripts``: a pause cut to the retry deadline, places and claims that expire). A
Redis ACL user per app (``~sched_accel:<app>:*``) keeps other clients out of them altogether.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["KEY_SECRET_ENV", "PREFIX", "KeyNames", "key_names"]

#: The variable the owner sets to the secret the app's key names are keyed by.
KEY_SECRET_ENV = "SCHED_ACCEL_REDIS_KEY_SECRET"
#: What every key name of ours starts with.
PREFIX = "sched_accel:"
_LABEL = b"sched_accel.redis-keys/1\x00"


@dataclass(frozen=True, slots=True)
class KeyNames:
    """How one app names its Redis keys: ``prefix``, and ``key`` (None: the tags as they are,
    derivable from the namespace alone); ``source`` says where the secret came from."""

    prefix: str = PREFIX
    key: bytes | None = field(default=None, repr=False)
    source: str = "none"

    def tag(self, tag: str) -> str:
        """The name of ``tag`` (a host, a job, ``processes``) inside the braces of its keys."""
        if self.key is None:
            return tag
        return hmac.new(self.key, b"tag\x00" + tag.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def key_names(namespace: str, password: str | None, environ: Mapping[str, str] = os.environ) -> KeyNames:
    """The key names of the app of ``namespace``: keyed by ``$SCHED_ACCEL_REDIS_KEY_SECRET``,
    else by ``password`` (the one sent to Redis), else not keyed (the old, guessable names)."""
    owner = environ.get(KEY_SECRET_ENV, "")
    if owner:
        secret, source = owner.encode("utf-8", "surrogatepass"), f"${KEY_SECRET_ENV}"
    elif password:
        secret, source = password.encode("utf-8", "surrogatepass"), "the Redis password"
    else:
        return KeyNames()
    key = hmac.new(secret, _LABEL + namespace.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    app = hmac.new(key, b"prefix", hashlib.sha256).hexdigest()[:16]
    return KeyNames(f"{PREFIX}{app}:", key, source)
