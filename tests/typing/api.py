"""Only type-checked (mypy, by `make test`), never run: pins the types of the public API."""

from __future__ import annotations

from collections.abc import Iterator

import sched_accel


def check_install() -> None:
    installed: bool = sched_accel.install()
    also: bool = sched_accel.install("sched_accel.toml")
    settings: sched_accel.Settings = sched_accel.load_config("sched_accel.toml")
    sched_accel.install(settings)
    sched_accel.uninstall()
    active: bool = sched_accel.is_active()
    names: list[str] = sched_accel.patched_targets()
    with sched_accel.installed() as ok:
        flag: bool = ok
    where: str | None = sched_accel.find_config()
    del installed, also, active, names, flag, where


def check_settings(settings: sched_accel.Settings) -> None:
    target: sched_accel.Target | None = settings.target("legacy_app.jobs:update_scores")
    for each in settings.targets:
        name: str = each.name
        concurrency: int = each.concurrency
        spec: sched_accel.TargetSpec = each.loop
        del name, concurrency, spec
    del target


def check_map() -> None:
    def double(x: int) -> int:
        return 2 * x

    results: Iterator[int] = sched_accel.map(double, range(10), concurrency=4, window=8, timeout=1.0)
    first: int = next(results)
    del first


async def check_amap() -> None:
    async def double(x: int) -> int:
        return 2 * x

    async with sched_accel.amap(double, range(10), concurrency=4) as results:
        async for value in results:
            got: int = value
            del got


def check_errors() -> None:
    try:
        sched_accel.load_config("missing.toml")
    except sched_accel.ConfigError as exc:
        base: sched_accel.SchedAccelError = exc
        del base
    sched_accel.log_to_stdlib()
    sched_accel.log_to_loguru()
