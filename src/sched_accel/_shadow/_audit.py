"""The backstop: an audit hook (PEP 578) that stops a shadow at any audited event not known to
be harmless, for the effects no integration of ours knows.

Added once per process and never removable (``sys.addaudithook``), it returns at once
outside a shadow, after one C call. Raising from an audit hook aborts the audited
operation, so the file is not opened, the subprocess not started: the :class:`Stopped`
raised here reaches the shadow's code in place of the operation.

Deny by default. In a shadow these go on:

- :data:`ALLOWED`: what only runs or inspects Python (imports, ``compile``/``exec`` of code,
  unpickling, frame and object introspection, ``id()``, the asyncgen hooks a new event loop
  sets; setting an attribute of a class or function is Python state, which the runner checks
  before it shadows a function), lists or reads the file system (``os.listdir``/``scandir``/``walk``, ``glob``),
  resolves names (``socket.getaddrinfo``...), makes a socket (without connecting it), builds
  a ``urllib`` request, sleeps;
- :data:`RULES` that look at the arguments: ``open`` without a flag that writes or creates,
  ``sqlite3.connect`` to a database that exists (our authorizer then refuses its writes), the
  start of a thread pool's worker, where a thread's start is audited (``_threads``).

Everything else stops it, with what and where: ``open`` for writing, ``os.*`` writes, renames,
removes, permissions, environment, signals, ``shutil``/``tempfile`` writes, ``subprocess``,
``os.system``/``exec``/``fork``/``spawn``/``posix_spawn``, ``ctypes``, ``mmap``,
``fcntl`` locks, ``input``, debuggers, tracing, and network use outside :func:`reading`:
``socket.connect``/``bind``/``sendto``/``sendmsg``, ``http.client``, ``smtplib``, ``ftplib``...

Not audited, so not seen: writes through a file, socket or connection opened before the
shadow (``f.write``, ``sock.send``: the drivers' wrappers cover the database ones),
``os.write`` to a descriptor, and C libraries' own I/O (libpq's sockets among them).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from ._context import ACTING, where
from ._sqlite import creates
from ._threads import is_pool_worker

__all__ = ["ALLOWED", "RULES", "TRACED_ENV", "install_hook"]

ALLOWED = frozenset({
    "import", "compile", "exec", "code.__new__", "function.__new__", "marshal.load", "marshal.loads",
    "marshal.dumps", "pickle.find_class", "builtins.id", "object.__getattr__", "object.__setattr__",
    "object.__delattr__", "sys._getframe", "sys._getframemodulename", "sys._current_frames",
    "sys._current_exceptions", "sys.excepthook", "sys.unraisablehook", "sys.set_asyncgen_hook_firstiter",
    "sys.set_asyncgen_hook_finalizer", "gc.get_objects", "gc.get_referrers", "gc.get_referents", "array.__new__",
    "os.listdir", "os.scandir", "os.walk", "os.fwalk", "os.getxattr", "os.listxattr", "os.listdrives",
    "os.listmounts", "os.listvolumes", "glob.glob", "glob.glob/2", "pathlib.Path.glob", "pathlib.Path.rglob",
    "socket.__new__", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.gethostname",
    "socket.getnameinfo", "socket.getservbyname", "socket.getservbyport", "time.sleep", "urllib.Request",
    "sqlite3.connect/handle",
})  # fmt: skip

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _name(value: object) -> str:
    """``repr(value)``, cut to 80 characters: a path keeps its end (the file's name)."""
    text = repr(value)
    if len(text) <= 80:
        return text
    return text[0] + "..." + text[-76:] if isinstance(value, (str, bytes, os.PathLike)) else text[:77] + "..."


def _open(args: tuple[Any, ...]) -> str | None:
    path, mode, flags = (tuple(args) + (None, None, 0))[:3]
    if isinstance(flags, int) and flags & _WRITE_FLAGS:
        return f"opened {_name(path)} for writing"
    return None


def _sqlite_connect(args: tuple[Any, ...]) -> str | None:
    if args and creates(args[0]):
        return f"opened the SQLite database {_name(args[0])}, which it would create"
    return None


def _thread(args: tuple[Any, ...]) -> str | None:
    """Where a Python audits thread starts (3.11 does not: ``_threads`` wraps ``Thread.start``;
    3.12 audits ``_thread.start_new_thread``, 3.13 ``_thread.start_joinable_thread``)."""
    thread = getattr(args[0], "__self__", None) if args else None
    return None if is_pool_worker(thread) else "started a thread, which would run outside the shadow"


def _network(verb: str) -> Callable[[tuple[Any, ...]], str]:
    return lambda args: f"{verb} {_name(args[1]) if len(args) > 1 else ''} outside a read".replace("  ", " ")


#: Events judged on their arguments: a reason to stop, or None to go on.
RULES: dict[str, Callable[[tuple[Any, ...]], str | None]] = {
    "open": _open,
    "sqlite3.connect": _sqlite_connect,
    "_thread.start_new_thread": _thread,
    "_thread.start_joinable_thread": _thread,  # Python 3.13's threading.Thread.start (found by the version matrix)
    "socket.connect": _network("connected a socket to"),
    "socket.bind": _network("bound a socket to"),
    "socket.sendto": _network("sent a datagram to"),
    "socket.sendmsg": _network("sent a message to"),
    "http.client.connect": lambda args: f"opened an HTTP connection to {args[1]}:{args[2]} outside a read",
    "http.client.send": lambda args: "sent on an HTTP connection outside a read",
    "subprocess.Popen": lambda args: f"started a subprocess {_name(args[1] if len(args) > 1 else args[0])}",
    "os.system": lambda args: f"ran a shell command {_name(args[0])}",
    "os.fork": lambda args: "forked the process",
}


def _describe(event: str, args: tuple[Any, ...]) -> str:
    shown = ", ".join(_name(arg) for arg in args[:2])
    return f"{event}({shown})"


def _hook(event: str, args: tuple[Any, ...]) -> None:
    shadow = ACTING.get()
    if shadow is None:
        return
    if event in ALLOWED:
        return
    rule = RULES.get(event)
    why: str | None
    try:
        why = _describe(event, args) if rule is None else rule(args)
    except Exception:  # a rule of ours failed: the safe side is to stop
        why = _describe(event, args)
    if why is not None and not _importing():
        shadow.stop(f"{why} ({where()})")


def _importing() -> bool:
    """Whether this event comes from a module's code run by its import. A module is imported
    once per process, whoever imports it first, so what its import does happens once either
    way; stopping it half-way would leave a half-made module in ``sys.modules`` for the real
    run (seen: a shadow's first ``httpx.get`` imports httpcore, whose import loads a library)."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


_lock = threading.Lock()
_installed = False


#: Set to ``1`` (tests only): add the hook even in a traced process (see :func:`install_hook`).
TRACED_ENV = "SCHED_ACCEL_AUDIT_WHEN_TRACED"


def install_hook() -> bool:
    """Add the audit hook, once per process; whether it is there.

    Not in a process being traced (a debugger, a profiler, coverage: a trace function set for
    every thread): there each thread's start calls ``sys.settrace``, which calls the audit hooks
    while it holds CPython's one "being installed" flag, and a Python hook can give the GIL to
    another thread starting at that moment, whose own ``sys.settrace`` then fails ("Cannot install
    a trace function while another trace function is being installed"): its thread dies before
    it runs. Seen under coverage, in a server's request thread. There the backstop is off; the
    drivers', output and sleep hooks are Python wrappers outside ``sys.settrace``, and stay."""
    global _installed
    with _lock:
        if not _installed:
            traced = sys.gettrace() is not None or threading.gettrace() is not None
            if traced and os.environ.get(TRACED_ENV) != "1":
                return False
            sys.addaudithook(_hook)
            _installed = True
        return True
