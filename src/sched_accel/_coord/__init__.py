"""Coordination backends: the facts about an upstream host and a schedule that must hold
across processes (issue 13), behind one interface.

- ``_base``: :class:`Backend`, the interface, and the arithmetic every backend shares
  (GCRA, the claim rule, argument checks);
- ``_process``: :class:`ProcessBackend`, in this process's memory (today's behaviour);
- ``_store``: the owner-only, ``flock``-ed record files of ``_machine``;
- ``_machine``: :class:`MachineBackend`, every process of this user on this machine;
- ``_scripts`` and ``_redis``: :class:`RedisBackend`, processes on any machine, through
  Redis (the ``redis`` extra; redis-py is imported only when one is made);
- ``_names``: the Redis key names, keyed by a secret the app's processes share (issue 24);
- ``_make``: :func:`make_backend`, the backend a config's ``[coordination]`` asks for.

Every failure of a backend's store is :class:`~sched_accel._exceptions.CoordinationUnavailable`.
"""

from __future__ import annotations

from ._base import Backend
from ._machine import MachineBackend
from ._make import make_backend
from ._process import ProcessBackend
from ._redis import RedisBackend

__all__ = ["Backend", "MachineBackend", "ProcessBackend", "RedisBackend", "make_backend"]
