"""The demo's 'ideal' column: the most an accelerated run could achieve, and what bounds it.

Two bounds, the lower one holds:

- **concurrency**: ``items / ceil(items / concurrency)``, ``concurrency`` slots, each as fast
  as the sequential loop;
- **rate**: where the upstream has an allowed rate, the requests the accelerated run needed
  (refused ones count: they spend the host's tokens too) cannot start faster than it, so
  the run lasts at least ``(requests - burst) / rate`` seconds. The rate is the one declared
  in the accel config (the target's own ``per_second``, counted against its attempts, or its
  host's ``[hosts]`` one), else the one sched_accel kept for the host, told in its answers
  or learned from its refusals (``sched-accel status`` says which, and the requests each
  host got in the target's last run).

Pure functions over the config, the run's ``sched_accel.run`` line and ``sched-accel status``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from sched_accel import load_config

__all__ = ["Bound", "Limits", "Seen", "bounds", "host_rates", "limits", "lowest", "run_fields", "seen_in_status"]


@dataclass(frozen=True, slots=True)
class Limits:
    """What the accel config declares for one target."""

    concurrency: int
    per_second: float | None = None  # the target's own rate, per attempt of its per-item call
    burst: int = 1
    hosts: tuple[tuple[str, float, int], ...] = ()  # every [hosts] entry with a rate: (host, per_second, burst)


@dataclass(frozen=True, slots=True)
class Seen:
    """What ``sched-accel status`` shows after a target's run: the requests each host got in
    that run, and the rates sched_accel keeps for hosts, with how it knows them."""

    requests: tuple[tuple[str, int], ...] = ()  # (host, requests)
    kept: tuple[tuple[str, float, str], ...] = ()  # (host, per_second, "told" or "learned")


@dataclass(frozen=True, slots=True)
class Bound:
    """The ideal speedup and what bounds it (``concurrency 8``, ``target 40/s declared``,
    ``localhost 2/s declared``); for a rate, how (``11 requests to localhost, burst 2: at least 4.50 s``)."""

    speedup: float
    why: str
    rate_bound: bool = False
    detail: str = ""


def limits(config: Path, target: str) -> Limits:
    """The concurrency and rates ``config`` declares for the target whose loop is ``target``."""
    settings = load_config(config)
    found = settings.target(target)
    if found is None:
        raise ValueError(f"{target!r} is not a target of {config}")
    hosts = tuple(
        (name, conf.per_second, conf.burst) for name, conf in sorted(settings.hosts.items()) if conf.per_second
    )
    return Limits(found.concurrency, found.per_second, found.burst, hosts)


_FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')


def run_fields(stderr: str) -> dict[str, str]:
    """The fields of the last ``sched_accel.run`` line in a job's stderr (empty if none)."""
    lines = [line for line in stderr.splitlines() if "sched_accel.run " in line]
    if not lines:
        return {}
    line = lines[-1]
    return {key: value.strip('"') for key, value in _FIELD.findall(line[line.index("sched_accel.run ") :])}


_HOST_REQUESTS = re.compile(r"^\s+host (\S+): requests=(\d+)\b")
_HOST_KEPT = re.compile(r"^\s+host (\S+): (told|learned) ([0-9.e+]+) requests/s\b")


def seen_in_status(status: str, target: str) -> Seen:
    """The hosts of ``target``'s last run and the kept rates, from ``sched-accel status``'s output."""
    requests: list[tuple[str, int]] = []
    kept: list[tuple[str, float, str]] = []
    inside = False
    for line in status.splitlines():
        if re.match(r"^  \S", line):  # a target's or a host's own line
            inside = line.startswith(f"  {target}: ")
            if match := _HOST_KEPT.match(line):
                kept.append((match[1], float(match[3]), match[2]))
        elif inside and (match := _HOST_REQUESTS.match(line)):
            requests.append((match[1], int(match[2])))
    return Seen(tuple(requests), tuple(kept))


def host_rates(declared: Limits, seen: Seen) -> list[tuple[str, float, int, int, str]]:
    """The rate of each host the run called, as (host, per_second, burst, requests, how): the
    declared one, or else the one kept for it (told or learned; paced one at a time, burst 1)."""
    declared_hosts = {host: (rate, burst) for host, rate, burst in declared.hosts}
    kept_hosts = {host: (rate, how) for host, rate, how in seen.kept}
    rates = []
    for host, requests in seen.requests:
        if host in declared_hosts:
            rate, burst = declared_hosts[host]
            rates.append((host, rate, burst, requests, "declared"))
        elif host in kept_hosts:
            rate, how = kept_hosts[host]
            rates.append((host, rate, 1, requests, how))
    return rates


def bounds(
    *,
    items: int,
    concurrency: int,
    sequential_rate: float,
    accelerated_done: int,
    attempts: int,
    declared: Limits,
    seen: Seen,
) -> list[Bound]:
    """Every bound on the speedup of a run's throughput: the concurrency's, then each rate's.
    ``sequential_rate`` is the sequential run's items done per second; ``accelerated_done``
    the items the accelerated run completed, with ``attempts`` of the per-item call."""
    found = [Bound(items / math.ceil(items / concurrency), f"concurrency {concurrency}")]
    held = host_rates(declared, seen)
    if declared.per_second is not None:
        held.insert(0, ("target", declared.per_second, declared.burst, attempts, "declared"))
    if sequential_rate <= 0 or accelerated_done <= 0:
        return found
    for what, rate, burst, requests, how in held:
        seconds = (requests - burst) / rate
        if seconds <= 0:
            continue  # the burst lets every request through at once
        counted = "attempts of the per-item call" if what == "target" else f"requests to {what}"
        detail = f"{requests} {counted}, burst {burst}: at least {seconds:.2f} s"
        found.append(Bound(accelerated_done / seconds / sequential_rate, f"{what} {rate:.3g}/s {how}", True, detail))
    return found


def lowest(found: list[Bound]) -> Bound:
    """The ideal: the bound that holds, the lowest of :func:`bounds`."""
    return min(found, key=lambda bound: bound.speedup)
