"""The demo's runs as tests: each legacy job, flag off then on, in real processes against the fake upstream."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import demo  # noqa: E402
from demo_ideal import Limits, Seen, bounds, lowest, seen_in_status  # noqa: E402
from demo_timeline import write_timeline  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

#: Latencies and pauses at a quarter: calls stay slower than the 5 ms step-aside probe.
SCALE = 0.25


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, demo.Compared]]:
    """Every job of the demo, sequential then accelerated, once for the module; the job
    processes run as in production, without coverage's tracer (see conftest's
    ``unmeasured_children``: a job run as ``python -m`` is patched in ``__main__``)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for key in ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START"):
            monkeypatch.delenv(key, raising=False)
        yield {c.job.name: c for c in demo.run_all(SCALE, tmp_path_factory.mktemp("demo"))}


@pytest.mark.parametrize("name", [job.name for job in demo.JOBS])
def test_both_runs_succeed(results: dict[str, demo.Compared], name: str) -> None:
    """Each job exits cleanly with the flag off and on."""
    compared = results[name]
    assert compared.off.returncode == 0, compared.off.stderr
    assert compared.on.returncode == 0, compared.on.stderr
    assert "sched_accel.run target=" in compared.on.stderr
    assert "sched_accel" not in compared.off.stderr


@pytest.mark.parametrize("name", [job.name for job in demo.JOBS if not job.drops_429 and not job.workers])
def test_deterministic_jobs_write_identical_outputs(results: dict[str, demo.Compared], name: str) -> None:
    """Rows, files and return values are the same in both runs, and nothing is lost."""
    compared = results[name]
    assert compared.off.output is not None
    assert compared.on.output == compared.off.output
    assert compared.on.result == compared.off.result
    assert compared.same and compared.lost == 0


def test_wallet_queue_loses_nothing_to_429s(results: dict[str, demo.Compared]) -> None:
    """Wallet queue: every row the legacy run wrote is written identically, and the wallets the legacy
    code drops on a 429 are retried instead: all of them are written, the queue is drained."""
    compared = results["wallets"]
    assert compared.same and compared.lost == 0
    assert compared.off.result["dropped"] > 0  # the legacy job's own losses, the reason for the policy
    assert compared.on.result["dropped"] == 0
    assert len(compared.on.output["rows"]) == len(demo.WALLETS)


@pytest.mark.parametrize("name", [job.name for job in demo.JOBS])
def test_concurrency_seen_at_the_upstream(results: dict[str, demo.Compared], name: str) -> None:
    """Sequential: one request at a time (per worker, for the gunicorn job); accelerated: more than
    one, never more than the bound (one worker running each tick)."""
    compared = results[name]
    assert 1 <= compared.off.stats["peak_in_flight"] <= max(compared.job.workers, 1)
    assert 1 < compared.on.stats["peak_in_flight"] <= compared.limits.concurrency


def test_gunicorn_workers_run_each_tick_once_with_single_run(results: dict[str, demo.Compared]) -> None:
    """Seed 004: 4 gunicorn workers, each starting the app's scheduler, ran every tick 4 times with
    the flag off; with the flag on and single_run, once, the 3 other workers' calls returning None;
    every row written is the legacy one, and the web front served a page in both runs."""
    compared = results["leaderboard"]
    workers = compared.job.workers
    assert compared.off.result["workers"] == compared.on.result["workers"] == workers
    assert compared.off.result["per_tick"] == [workers] * demo.TICKS
    assert compared.on.result["per_tick"] == [1] * demo.TICKS
    assert compared.off.result["requests_per_tick"] == workers * compared.job.items
    assert compared.on.result["requests_per_tick"] == compared.job.items
    assert compared.off.result["served"] and compared.on.result["served"]
    assert compared.same and compared.lost == 0
    assert compared.on.result["skipped"] >= (workers - 1) * demo.TICKS
    assert "single_run_skipped" not in compared.off.stderr
    assert demo.table([compared]).splitlines()[1].endswith(f"{workers} -> 1")


@pytest.mark.parametrize(
    ("name", "rate"), [("collect", "localhost 8/s declared"), ("wallets", "target 160/s declared")]
)
def test_rate_bound_jobs_are_compared_with_what_the_rate_allows(
    results: dict[str, demo.Compared], name: str, rate: str
) -> None:
    """Collect (source B's [hosts] rate) and wallets (the target's per_second, both at the tests'
    scale): the ideal counts the declared rate; the wallet queue's allows less than its concurrency."""
    compared = results[name]
    found = {bound.why: bound for bound in compared.bounds}
    assert rate in found and found[rate].rate_bound, found
    assert compared.ideal.speedup <= found[rate].speedup
    if name == "wallets":
        assert compared.ideal.why == rate


@pytest.mark.parametrize("name", [job.name for job in demo.JOBS])
def test_no_run_beats_its_ideal(results: dict[str, demo.Compared], name: str) -> None:
    """The ideal is an upper bound: no accelerated run's throughput exceeds it (15% for timing noise)."""
    compared = results[name]
    assert 0 < compared.speedup <= compared.ideal.speedup * 1.15


STATUS = """\
ENABLE_SCHEDULER_OPTIMIZATION='1': on
control file: /tmp/state/control.json
  legacy_app.collection:collect_prices: on (prefetch, concurrency 3)
    last run: 2026-12-02 15:51:05 (pid 1), outcome=ok 5.484 s, items=11 ok=11 failed=0 http_429=0
      host 127.0.0.1: requests=11 http_429=0 overloads=0 peak_concurrency=3 limit_now=34 waited=0.000s circuit=closed
      host api.example.com: requests=42 http_429=0 overloads=0 peak_concurrency=1 limit_now=unbounded waited=9.1s circuit=closed
  legacy_app.wallets:refresh_wallets: on (prefetch, concurrency 20)
    last run: 2026-12-02 15:51:58 (pid 2), outcome=ok 10.549 s, items=120 ok=120 failed=0
      host 127.0.0.1: requests=166 http_429=46 overloads=46 peak_concurrency=17 limit_now=9 waited=111.786s circuit=closed
  host localhost: per_second 2, burst 2
  host api.example.com: told 4 requests/s in its answers (the next run starts at it)
  host 127.0.0.1: learned 12.5 requests/s from its refusals (the next run starts at it)
"""


def test_status_gives_the_hosts_of_the_targets_last_run_and_the_kept_rates() -> None:
    """The requests each host got are the target's own; the kept rates, told or learned, are every host's."""
    seen = seen_in_status(STATUS, "legacy_app.collection:collect_prices")
    assert seen.requests == (("127.0.0.1", 11), ("api.example.com", 42))
    assert seen.kept == (("api.example.com", 4.0, "told"), ("127.0.0.1", 12.5, "learned"))
    assert seen_in_status(STATUS, "legacy_app.wallets:refresh_wallets").requests == (("127.0.0.1", 166),)


def test_ideal_is_the_lower_of_the_concurrency_and_the_rate_bound() -> None:
    """A rate declared for the host wins over a kept one; a told rate counts where none is declared;
    with no rate, the concurrency bound holds."""
    seen = Seen(requests=(("api.example.com", 42),), kept=(("api.example.com", 4.0, "told"),))

    def ideal(declared: Limits, seen: Seen) -> tuple[str, float]:
        bound = lowest(
            bounds(
                items=40,
                concurrency=8,
                sequential_rate=1.0,
                accelerated_done=40,
                attempts=40,
                declared=declared,
                seen=seen,
            )
        )
        return bound.why, round(bound.speedup, 6)

    assert ideal(Limits(8), Seen()) == ("concurrency 8", 8.0)
    assert ideal(Limits(8), seen) == ("api.example.com 4/s told", round(40 / (41 / 4), 6))  # 42 requests, burst 1
    assert ideal(Limits(8, hosts=(("api.example.com", 2.0, 2),)), seen) == ("api.example.com 2/s declared", 2.0)
    assert ideal(Limits(8, per_second=5.0, burst=10), Seen()) == ("target 5/s declared", round(40 / 6, 6))


def test_timeline_picture(results: dict[str, demo.Compared], tmp_path: Path) -> None:
    """The timeline page holds one SVG per job with a bar per request of both runs."""
    page = write_timeline(list(results.values()), tmp_path / "timeline.html").read_text()
    assert page.count("<svg") == len(results) == len(demo.JOBS)
    requests = sum(len(c.off.timeline) + len(c.on.timeline) for c in results.values())
    assert page.count("<rect") == requests
