"""The corpus of real-world shapes (issue 20, item 9): each program run sequentially and
accelerated, in real processes through the start-up hook, against the fake upstream.

What must hold today is asserted: both runs leave identical results (exit code, exception,
stdout, the app's stderr and logs, files, SQLite rows) and no request reaches the upstream
more often accelerated than sequentially. Where the library fails that today, the case is a
strict xfail naming the shape and the difference seen, so it turns into an XPASS failure
when fixed. Speed is reported (the table at the end of the session), not asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import MEASURED
from .corpus import PROGRAMS, by_name
from .harness import measure
from .upstream import Upstream

pytestmark = pytest.mark.slow

#: program -> what differs today, as observed (issue 20's shapes)
KNOWN: dict[str, str] = {
    "url_health": (
        "issue 23 item 4, a 503 with Retry-After retried once: GET /sites/status-page/health "
        "(503, Retry-After: 1), sent ahead with others in flight, reaches the upstream twice instead "
        "of once (its retry went alone and was answered 503 again: final), and the check takes about "
        "1.25 s instead of 0.7 s; was 7 requests and 7.7 s before retries were kept to what "
        "concurrency causes"
    ),
}


def cases() -> list[object]:
    return [
        pytest.param(
            p.name, id=p.name, marks=[pytest.mark.xfail(strict=True, reason=KNOWN[p.name])] if p.name in KNOWN else []
        )
        for p in PROGRAMS
    ]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("name", cases())
def test_accelerated_run_is_identical_and_repeats_no_request(
    name: str, api: Upstream, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Flag on, the program leaves exactly what it leaves flag off, and sends no request more often."""
    program = by_name(name)
    redis = request.getfixturevalue("redis_url") if program.needs_redis else None
    compared = measure(program, api, tmp_path / name, redis)
    MEASURED.append(compared)
    assert compared.off.total_requests > 0 and not compared.off.ours, compared.summary()
    assert compared.identical, compared.summary()
    assert compared.no_request_repeated, compared.summary()
