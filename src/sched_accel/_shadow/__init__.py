"""The effects of a shadow call: a call of the app's per-item function run ahead of its loop,
in a worker thread or a task of its event loop, only so that its HTTP reads are sent early.
Its effects must not happen:

- dropped: its prints and ``sys.stdout``/``sys.stderr`` writes, stdlib logging and loguru
  records, warnings (``_output``);
- at once: its ``time.sleep`` and ``asyncio``/``anyio``/``trio`` sleeps (``_sleeps``);
- stopped where it stands (:class:`Stopped`, which the app's ``except Exception`` cannot
  swallow, raised again at its next effect if a bare ``except`` or ``finally`` goes on):
  a write through a database driver or ORM (``_drivers``; sqlite3 by an authorizer,
  ``_sqlite``), work handed to a process pool or a new thread (``_threads``), and, as the
  backstop, any audited event outside a short allow-list: a file opened for writing, ``os``
  writes, a subprocess, network use outside a read (``_audit``).

The shadow runner uses::

    activate()                        # once per run (refcounted), deactivate() at its end
    shadow = Shadow()
    with shadowed(shadow):            # in the worker thread, or in the task
        function(*args, **kwargs)     # raises Stopped at an effect: shadow.stopped says why
    ...
    with reading():                   # around a read we send for the shadow
        send(...)

Everything outside :func:`shadowed`, in any thread, is untouched: each hook first reads one
context variable. What is not caught is said in each module (and in the README's list).
"""

from __future__ import annotations

from .._exceptions import Stopped
from ._context import SHADOW, Shadow, acting, reading, where
from ._drivers import SUPPORTED
from ._install import activate, active, deactivate, install, shadowed

__all__ = [
    "SHADOW",
    "SUPPORTED",
    "Shadow",
    "Stopped",
    "activate",
    "acting",
    "active",
    "deactivate",
    "install",
    "reading",
    "shadowed",
    "where",
]
