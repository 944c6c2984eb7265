"""A throw-away PostgreSQL server on 127.0.0.1, from the machine's own binaries (Debian's
``postgresql`` package): found, started in a temp folder, stopped. None when there is none."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

__all__ = ["PostgresServer", "find_bindir"]


def find_bindir() -> str | None:
    """The folder of ``initdb`` and ``pg_ctl``, or None."""
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(candidates[-1]) if candidates else None


class PostgresServer:
    """One server, trusting local connections for the user ``postgres``."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.folder = tempfile.mkdtemp(prefix="sched-accel-pg-")
        self.port = 0

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _run(self, *args: str) -> None:
        command = [os.path.join(self.bindir, args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.folder, "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        data = os.path.join(self.folder, "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", data, "-o", options, "-l", os.path.join(self.folder, "log"), "-w", "start")
        time.sleep(0.1)

    def stop(self) -> None:
        try:
            if os.path.exists(os.path.join(self.folder, "data", "postmaster.pid")):
                self._run("pg_ctl", "-D", os.path.join(self.folder, "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
