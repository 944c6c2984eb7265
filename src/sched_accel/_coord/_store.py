"""The machine backend's store: small record files, each changed under an ``flock``.

Why files and ``flock`` rather than SQLite in WAL mode (``benchmarks/coord_admit.py``, on
the 2-core development machine; every admission reads and writes the host's GCRA state): one
admission costs about 4 µs here against 10-17 µs for SQLite's ``BEGIN IMMEDIATE`` ..
``COMMIT``; with 4 processes admitting flat out, 16-19 µs on average against 51-64 µs,
3.5 times the admissions a second, and the slowest admission tens of milliseconds against
hundreds, as SQLite's busy handler sleeps in steps of milliseconds while a lock is held. And we open every file ourselves, so the trust rule
holds as written (``O_NOFOLLOW``, ``fstat`` of what was opened); SQLite opens its database,
``-wal`` and ``-shm`` files by name, where ``O_NOFOLLOW`` cannot be asked for.

The store lives in ``<state>/coord/<boot id>/``: the machine's monotonic clock, which every
process shares, restarts at boot, and a home shared between machines (NFS) gives each
machine its own folder. Folders are made 0700 and checked by ``_state._trust``; each file
is opened with ``O_NOFOLLOW``, made 0600, and its ``fstat`` must pass the same rule.

A lock is held by an open file description, which a forked child shares: after a fork the
child drops the inherited descriptors and opens its own (``os.register_at_fork``), so a
gunicorn worker forked from a master that used the store still excludes its siblings.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import threading
import time
import weakref
from typing import Self

from .._exceptions import CoordinationUnavailable
from .._state._files import make_folders
from .._state._trust import Refused, check_folders, file_problem, log_refused

__all__ = ["Record", "Store", "boot_id", "record_name"]

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_MAX_BYTES = 4 * 1024 * 1024  # a record file larger than this is refused (leases stay far below)
_CHUNK = 64 * 1024
_MAX_OPEN = 256  # record files kept open by one store
_SPINS = 50  # lock attempts with a yield between them, before sleeping between attempts
_stores: weakref.WeakSet[Store] = weakref.WeakSet()


def boot_id() -> str:
    """This boot's id (Linux), else the boot time to the ten seconds: names the store folder."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            found = file.read().strip()
        if found and all(ch in "0123456789abcdef-" for ch in found):
            return found
    except OSError:
        pass
    return f"boot-{round(time.time() - time.monotonic(), -1):.0f}"


def record_name(kind: str, key: str) -> str:
    """The file name of one record: its kind and a hash of its key (a host or job name can
    then hold any character, ``/`` and ``..`` included, and names no other file)."""
    return f"{kind}-{hashlib.blake2b(key.encode('utf-8', 'surrogatepass'), digest_size=16).hexdigest()}"


class Record:
    """One record file: ``with record:`` holds its lock (this process's threads, then the
    other processes') for one read-modify-write, and turns an ``OSError`` into ours.

    A lock not had within the store's ``lock_timeout`` (a holder stopped in a debugger, a hung
    disk) raises :class:`CoordinationUnavailable`."""

    __slots__ = ("closed", "fd", "lock", "path", "size", "timeout")

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.fd = -1  # once evicted (reopened on next use) or closed
        self.fd = _open_trusted(path)
        self.closed = False
        self.timeout = timeout
        self.size = 0  # bytes read by the holder (write truncates what it no longer needs)
        self.lock = threading.Lock()  # flock excludes processes; this, the threads of one

    def __enter__(self) -> Self:
        deadline = time.monotonic() + self.timeout
        if not self.lock.acquire(timeout=self.timeout):
            raise CoordinationUnavailable(f"{self.path}: busy in this process for more than {self.timeout} s")
        try:
            if self.fd < 0:
                if self.closed:
                    raise CoordinationUnavailable("the machine backend is closed")
                self.fd = _open_trusted(self.path)  # evicted: the trust rule is applied again
            _flock(self, deadline)
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, kind: object, exc: BaseException | None, trace: object) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        except OSError:  # pragma: no cover - unlocking a descriptor we locked
            pass
        finally:
            self.lock.release()
        if isinstance(exc, OSError):
            raise CoordinationUnavailable(f"{self.path}: {exc.strerror or exc}") from exc

    def __del__(self) -> None:  # an evicted record reopened by a thread that still held it
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)

    def read(self, size: int | None = None) -> bytes:
        """The first ``size`` bytes, or all of them (empty for a new record)."""
        if size is not None:
            data = os.pread(self.fd, size, 0)
        else:
            chunks = [os.pread(self.fd, _CHUNK, 0)]
            while len(chunks[-1]) == _CHUNK:
                if len(chunks) * _CHUNK >= _MAX_BYTES:
                    raise CoordinationUnavailable(f"{self.path}: is larger than {_MAX_BYTES} bytes; delete it")
                chunks.append(os.pread(self.fd, _CHUNK, len(chunks) * _CHUNK))
            data = b"".join(chunks)
        self.size = len(data)
        return data

    def write(self, data: bytes) -> None:
        """Replace what was read (in place: every reader holds the lock, none sees it half done)."""
        os.pwrite(self.fd, data, 0)
        if self.size > len(data):
            os.ftruncate(self.fd, len(data))


class Store:
    """The record files of one folder; thread-safe, fork-safe, every lock wait bounded."""

    def __init__(self, folder: str, *, lock_timeout: float = 0.5) -> None:
        self.folder = os.path.abspath(folder)
        self.lock_timeout = lock_timeout
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str | None], Record] = {}
        self._closed = False
        try:
            make_folders(self.folder)
            check_folders(os.path.join(self.folder, "record"))
        except Refused as exc:
            raise _refused(exc) from exc
        except OSError as exc:
            raise CoordinationUnavailable(f"{self.folder}: cannot be made ({exc.strerror or exc})") from exc
        _stores.add(self)

    def record(self, kind: str, key: str | None = None) -> Record:
        """The record of ``kind`` for ``key`` (one per kind without a key), opened once."""
        found = self._records.get((kind, key))
        if found is not None:
            return found
        with self._lock:
            if self._closed:
                raise CoordinationUnavailable("the machine backend is closed")
            found = self._records.get((kind, key))
            if found is None:
                if len(self._records) >= _MAX_OPEN:
                    self._evict()
                path = os.path.join(self.folder, kind if key is None else record_name(kind, key))
                found = self._records[(kind, key)] = Record(path, self.lock_timeout)
            return found

    def _evict(self) -> None:
        """Close the oldest records not in use (under the store's lock): descriptors stay
        bounded whatever the number of hosts; an evicted record reopens when used again."""
        for key, record in list(self._records.items())[: _MAX_OPEN // 4]:
            if record.lock.acquire(blocking=False):
                try:
                    with contextlib.suppress(OSError):
                        os.close(record.fd)
                    record.fd = -1
                    del self._records[key]
                finally:
                    record.lock.release()

    def _after_fork(self) -> None:
        """In a forked child: the inherited descriptors share the parent's locks; drop them."""
        self._lock = threading.Lock()
        for record in self._records.values():
            with contextlib.suppress(OSError):
                os.close(record.fd)
            record.fd = -1
        self._records = {}

    def close(self) -> None:
        """Close every file; later use raises :class:`CoordinationUnavailable`."""
        with self._lock:
            self._closed = True
            records, self._records = self._records, {}
        for record in records.values():
            with record.lock:
                record.closed = True
                with contextlib.suppress(OSError):
                    os.close(record.fd)
                record.fd = -1


def _refused(exc: Refused) -> CoordinationUnavailable:
    log_refused(exc)
    return CoordinationUnavailable(f"the machine backend's store is refused: {exc}")


def _open_trusted(path: str) -> int:
    """Open (or create, 0600) one record file under the trust rule; its descriptor."""
    try:
        fd = os.open(path, _OPEN_FLAGS, 0o600)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(path):
            raise _refused(Refused(path, "is a symbolic link, which is never followed", "delete it")) from exc
        raise CoordinationUnavailable(f"{path}: cannot be opened ({exc.strerror or exc})") from exc
    try:
        problem = file_problem(os.fstat(fd))
    except OSError as exc:  # pragma: no cover - fstat of an open descriptor
        os.close(fd)
        raise CoordinationUnavailable(f"{path}: cannot be checked ({exc.strerror or exc})") from exc
    if problem is not None:
        os.close(fd)
        raise _refused(Refused(path, *problem))
    return fd


def _flock(file: Record, deadline: float) -> None:
    """Take the file's ``flock`` by ``deadline``: try, yield the core a few times, then sleep
    between tries (50 µs, doubling to 1 ms). A blocking ``flock`` cannot time out, and one
    process stopped while holding it would hang every other; measured with 4 processes
    admitting flat out, it gained little (15 µs a call on average against 17 µs here)."""
    tries = 0
    while True:
        try:
            fcntl.flock(file.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:
            raise CoordinationUnavailable(f"{file.path}: cannot be locked ({exc.strerror or exc})") from exc
        if time.monotonic() >= deadline:
            raise CoordinationUnavailable(f"{file.path}: locked by another process for more than {file.timeout} s")
        tries += 1
        if tries <= _SPINS:
            os.sched_yield()
        else:
            time.sleep(min(0.001, 0.00005 * 2 ** min(tries - _SPINS, 5)))


def _after_fork_in_child() -> None:  # pragma: no cover - runs in forked children only
    for store in list(_stores):
        store._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
