"""The demo's runs as tests: each legacy job, flag off then on, in real processes against the fake upstream."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import demo  # noqa: E402

pytestmark = pytest.mark.timeout(180)

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


@pytest.mark.parametrize("name", [job.name for job in demo.JOBS if not job.drops_429])
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
    assert len(compared.on.output["rows"]) == demo.JOBS[-1].items


@pytest.mark.parametrize("name", [job.name for job in demo.JOBS])
def test_concurrency_seen_at_the_upstream(results: dict[str, demo.Compared], name: str) -> None:
    """Sequential: one request at a time; accelerated: more than one, never more than the bound."""
    compared = results[name]
    assert compared.off.stats["peak_in_flight"] == 1
    assert 1 < compared.on.stats["peak_in_flight"] <= compared.job.concurrency


def test_timeline_picture(results: dict[str, demo.Compared], tmp_path: Path) -> None:
    """The timeline page holds one SVG per job with a bar per request of both runs."""
    page = demo.write_timeline(list(results.values()), tmp_path / "timeline.html").read_text()
    assert page.count("<svg") == len(demo.JOBS)
    requests = sum(len(c.off.timeline) + len(c.on.timeline) for c in results.values())
    assert page.count("<rect") == requests
