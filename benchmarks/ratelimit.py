"""A rate-limited upstream: sched_accel's host limits and retries against the peers' plain retry.

The upstream (``_upstream.py`` in its own process) allows 20 requests/s with a burst of 5
and answers 429 with a Retry-After above that; each answer takes 50 ms. 100 items are
fetched at concurrency 16, once with fractional Retry-After values and once with whole
seconds. The peers each retry a 429 after its Retry-After (the usual hand-written fix);
sched_accel runs the unchanged legacy loop with the host's limit declared in its config:

    [hosts."127.0.0.1"]
    per_second = 20
    burst = 5

Ideal = (N - burst) / rate + latency: the burst goes at once, the rest at the rate, and the
last answer takes one latency. Goals for sched_accel (issue 12; ``goal()``): with the limit
declared (one client, or a new one per item), wall / ideal <= 1.05 and at most 5 answers of
429; with none declared, the rate learned from the 429s, <= 1.10 (<= 1.15 with whole-second
Retry-After) and at most 20; that job's next run, and the next run of a job whose host tells
its rate, <= 1.05 and at most 2; a host that tells its rate, <= 1.05 and at most 1. No item lost.

    python benchmarks/ratelimit.py            # both Retry-After forms, and the answers' own fields
    python benchmarks/ratelimit.py int --repeat 3
    python benchmarks/ratelimit.py told       # no limit declared; the answers carry RateLimit fields
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _upstream  # noqa: E402
import legacy_jobs  # noqa: E402
from _harness import EVENTS, ROOT, machine, patched, table  # noqa: E402

ITEMS = 100
CONCURRENCY = 16
RATE = 20.0
BURST = 5
LATENCY = 0.05
HOST_LIMIT = f'[hosts."127.0.0.1"]\nper_second = {RATE:g}\nburst = {BURST}\n'


def ideal() -> float:
    return (ITEMS - BURST) / RATE + LATENCY


@dataclass(slots=True)
class Result:
    wall: float
    refused: int  # answers of 429, counted by the upstream
    lost: int  # items without their answer
    note: str = ""


# -- the peers' per-item call: a plain retry that honours Retry-After ----------------------------
def get_with_retry(http: httpx.Client, item: int) -> Any:
    while True:
        response = http.get(f"/item/{item}")
        if response.status_code == 429:
            time.sleep(float(response.headers["Retry-After"]))
            continue
        response.raise_for_status()
        return response.json()


async def aget_with_retry(http: httpx.AsyncClient, item: int, sleep: Callable[[float], Awaitable[None]]) -> Any:
    while True:
        response = await http.get(f"/item/{item}")
        if response.status_code == 429:
            await sleep(float(response.headers["Retry-After"]))
            continue
        response.raise_for_status()
        return response.json()


def _limits() -> httpx.Limits:
    return httpx.Limits(max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY * 2)


def thread_pool(url: str) -> list[Any]:
    with httpx.Client(base_url=url, timeout=120, limits=_limits()) as http, ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(lambda item: get_with_retry(http, item), range(ITEMS)))


def gather_semaphore(url: str) -> list[Any]:
    async def main() -> list[Any]:
        semaphore = asyncio.Semaphore(CONCURRENCY)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=_limits()) as http:

            async def one(item: int) -> Any:
                async with semaphore:
                    return await aget_with_retry(http, item, asyncio.sleep)

            return list(await asyncio.gather(*(one(item) for item in range(ITEMS))))

    return asyncio.run(main())


def task_group(url: str) -> list[Any]:
    async def main() -> list[Any]:
        limiter = anyio.CapacityLimiter(CONCURRENCY)
        results: list[Any] = [None] * ITEMS
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=_limits()) as http:

            async def one(item: int) -> None:
                async with limiter:
                    results[item] = await aget_with_retry(http, item, anyio.sleep)

            async with anyio.create_task_group() as group:
                for item in range(ITEMS):
                    group.start_soon(one, item)
        return results

    return anyio.run(main)


def aiometer_run(max_per_second: float | None) -> Callable[[str], list[Any]]:
    def run(url: str) -> list[Any]:
        import functools

        import aiometer

        async def main() -> list[Any]:
            async with httpx.AsyncClient(base_url=url, timeout=120, limits=_limits()) as http:
                jobs = [functools.partial(aget_with_retry, http, item, asyncio.sleep) for item in range(ITEMS)]
                return list(await aiometer.run_all(jobs, max_at_once=CONCURRENCY, max_per_second=max_per_second))

        return asyncio.run(main())

    return run


# -- sched_accel: the legacy loop, unchanged, patched ----------------------------------------------
def sched_accel_sync(top: str, *, keep_learned: bool = False, fresh: bool = False) -> Callable[[str], list[Any]]:
    def run(url: str) -> list[Any]:
        with (
            patched(CONCURRENCY, top=top, keep_learned=keep_learned),
            httpx.Client(base_url=url, timeout=120, limits=_limits()) as http,
        ):
            return legacy_jobs.fetch_all(range(ITEMS), legacy_jobs.Api(http, fresh=fresh))

    return run


def sched_accel_async(top: str, *, keep_learned: bool = False, fresh: bool = False) -> Callable[[str], list[Any]]:
    def run(url: str) -> list[Any]:
        async def main() -> list[Any]:
            async with httpx.AsyncClient(base_url=url, timeout=120, limits=_limits()) as http:
                return await legacy_jobs.afetch_all(range(ITEMS), legacy_jobs.AsyncApi(http, fresh=fresh))

        with patched(CONCURRENCY, top=top, keep_learned=keep_learned):
            return asyncio.run(main())

    return run


CONTENDERS: dict[str, Callable[[str], list[Any]]] = {
    "sched_accel, sync loop, host limit declared": sched_accel_sync(HOST_LIMIT),
    "sched_accel, async loop, host limit declared": sched_accel_async(HOST_LIMIT),
    "sched_accel, sync loop, host limit declared, a new client per item": sched_accel_sync(HOST_LIMIT, fresh=True),
    "sched_accel, async loop, host limit declared, a new client per item": sched_accel_async(HOST_LIMIT, fresh=True),
    "sched_accel, sync loop, no host limit (rate learned from the 429s)": sched_accel_sync(""),
    "sched_accel, async loop, no host limit (rate learned from the 429s)": sched_accel_async(""),
    "sched_accel, sync loop, no host limit, the next run (the rate learned by the last)": sched_accel_sync(
        "", keep_learned=True
    ),
    "ThreadPoolExecutor.map + retry": thread_pool,
    "asyncio.gather + Semaphore + retry": gather_semaphore,
    "anyio task group + CapacityLimiter + retry": task_group,
    "aiometer.run_all + retry": aiometer_run(None),
    "aiometer.run_all(max_per_second=20) + retry": aiometer_run(RATE),
}
LEARNED = (
    "sched_accel, sync loop, no host limit (rate learned from the 429s)",
    "sched_accel, async loop, no host limit (rate learned from the 429s)",
)
LEARNED_NEXT = "sched_accel, sync loop, no host limit, the next run (the rate learned by the last)"


def goal(name: str, retry_after: str) -> tuple[float, int] | None:
    """Issue 12's goal for a row of ours: (most wall / ideal, most answers of 429), or None."""
    if name in LEARNED:
        return (1.10, 20) if retry_after == "fraction" else (1.15, 20)
    if name == LEARNED_NEXT:
        return 1.05, 2
    if name.startswith("sched_accel"):
        return 1.05, 5  # a host limit declared, with one client or a new one per item
    return None


def measure(name: str, retry_after: str, headers: str = "none") -> Result:
    """One run of a contender against a fresh upstream (a full bucket, counters at 0)."""
    args = (
        "--fixed",
        f"{LATENCY}",
        "--per-second",
        f"{RATE:g}",
        "--burst",
        str(BURST),
        "--retry-after",
        retry_after,
        "--headers",
        headers,
    )
    with _upstream.running(*args) as url:
        time.sleep(0.3)  # the bucket is full, as for a job that starts after a quiet spell
        EVENTS.runs.clear()
        started = time.perf_counter()
        results = CONTENDERS[name](url)
        wall = time.perf_counter() - started
        counts = json.loads(httpx.get(f"{url}/stats").text)
    lost = sum(1 for index, value in enumerate(results) if value != {"item": index})
    note = ""
    if EVENTS.runs:
        run = EVENTS.runs[-1]
        note = f"retried {run.get('retried')}, peak {run.get('peak_requests')}, waited {run.get('limit_wait')} s"
    return Result(wall, int(counts["429"]), lost, note)


def scenario(retry_after: str, repeat: int, names: Sequence[str]) -> list[bool]:
    print(f"\n## Retry-After in {'whole seconds' if retry_after == 'int' else 'fractional seconds'}")
    print(
        f"{ITEMS} items, concurrency {CONCURRENCY}, upstream limit {RATE:g}/s burst {BURST}, {LATENCY * 1000:g} ms; "
        f"ideal = ({ITEMS} - {BURST}) / {RATE:g} + {LATENCY:g} = {ideal():.2f} s; median of {repeat}"
    )
    print(
        "$ "
        + shlex.join(
            [
                sys.executable.replace(str(ROOT) + "/", ""),
                "benchmarks/ratelimit.py",
                retry_after,
                "--repeat",
                str(repeat),
            ]
        )
    )
    rows = []
    verdicts: list[tuple[str, tuple[float, int], bool]] = []
    for name in names:
        if name == LEARNED_NEXT:  # a first run learns the rate; each measured run is the one after it
            runs = sorted((_after(LEARNED[0], name, retry_after) for _ in range(repeat)), key=lambda r: r.wall)
        else:
            runs = sorted((measure(name, retry_after) for _ in range(repeat)), key=lambda r: r.wall)
        median = runs[len(runs) // 2]
        rows.append(
            [
                name,
                f"{median.wall:.2f}",
                f"{median.wall / ideal():.3f}",
                str(median.refused),
                str(median.lost),
                median.note,
            ]
        )
        wanted = goal(name, retry_after)
        if wanted is not None:
            most, refused = wanted
            verdicts.append(
                (name, wanted, all(r.wall / ideal() <= most and r.refused <= refused and r.lost == 0 for r in runs))
            )
    print(table(["contender", "wall s", "/ ideal", "429s", "lost", "sched_accel's run line"], rows))
    for name, (most, refused), ok in verdicts:
        print(
            f"goal: {name}: wall/ideal <= {most:.2f}, <= {refused} answers of 429, 0 lost, in every run: "
            f"{'PASS' if ok else 'FAIL'}"
        )
    return [ok for _, _, ok in verdicts]


TOLD = ("sched_accel, sync loop, no host limit", "sched_accel, async loop, no host limit")
NEXT = "sched_accel, sync loop, no host limit, the next run (the rate kept from the last)"
CONTENDERS[TOLD[1]] = sched_accel_async("")
CONTENDERS[NEXT] = sched_accel_sync("", keep_learned=True)


def told(form: str, repeat: int) -> list[bool]:
    """No limit declared; the upstream's answers carry its rate-limit fields (issue 12):
    goal <= 1.05 of ideal and at most 1 answer of 429."""
    what = {
        "ratelimit": 'the IETF draft\'s RateLimit-Policy: "default";q=20;w=1 and RateLimit: r, t',
        "x-ratelimit": "X-RateLimit-Limit/Remaining/Reset (no window)",
    }[form]
    print(f"\n## No limit declared; every answer carries {what}")
    print(
        f"{ITEMS} items, concurrency {CONCURRENCY}, upstream limit {RATE:g}/s burst {BURST}, {LATENCY * 1000:g} ms; "
        f"ideal = {ideal():.2f} s; median of {repeat}"
    )
    rows, verdicts = [], []
    for name in (*TOLD, NEXT) if form == "ratelimit" else TOLD:
        contender = LEARNED[0] if name == TOLD[0] else name
        if name == NEXT:  # a first run teaches the rate; each measured run is the one after it
            runs = sorted((_second(form) for _ in range(repeat)), key=lambda r: r.wall)
        else:
            runs = sorted((measure(contender, "fraction", form) for _ in range(repeat)), key=lambda r: r.wall)
        median = runs[len(runs) // 2]
        rows.append(
            [
                name,
                f"{median.wall:.2f}",
                f"{median.wall / ideal():.3f}",
                str(median.refused),
                str(median.lost),
                median.note,
            ]
        )
        verdicts.append(
            all(r.wall / ideal() <= 1.05 and r.refused <= (2 if name == NEXT else 1) and r.lost == 0 for r in runs)
        )
    print(table(["contender", "wall s", "/ ideal", "429s", "lost", "sched_accel's run line"], rows))
    for name, ok in zip((*TOLD, NEXT), verdicts, strict=False):
        most = 2 if name == NEXT else 1
        print(
            f"goal: {name}, {form}: wall/ideal <= 1.05, <= {most} answer(s) of 429, 0 lost, in every run: {'PASS' if ok else 'FAIL'}"
        )
    return verdicts


def _second(form: str) -> Result:
    """The run after one that learned the host's rate from its answers (a cron job's next)."""
    return _after(LEARNED[0], NEXT, "fraction", form)


def _after(first: str, name: str, retry_after: str, form: str = "none") -> Result:
    """``name``'s run after a run of ``first`` (which kept what it learned), as a cron job's next."""
    measure(first, retry_after, form)
    return measure(name, retry_after, form)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "forms", nargs="*", metavar="FORM", help="which Retry-After forms the upstream sends (default: both)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender; the median is shown (default 3)")
    parser.add_argument("--ours-only", action="store_true", help="only sched_accel's rows")
    args = parser.parse_args(argv)
    if not set(args.forms) <= {"fraction", "int", "told"}:
        parser.error(f"FORM is fraction, int or told (the answers carry rate-limit fields), not {' '.join(args.forms)}")
    print(machine())
    names = [n for n in CONTENDERS if (not args.ours_only or n.startswith("sched_accel")) and n not in (TOLD[1], NEXT)]
    verdicts = []
    for form in args.forms or ["fraction", "int", "told"]:
        if form == "told":
            verdicts += told("ratelimit", args.repeat) + told("x-ratelimit", args.repeat)
        else:
            verdicts += scenario(form, args.repeat, names)
    print(f"\ngoals: {sum(verdicts)} of {len(verdicts)} pass")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
