"""Backend.held: the claim in force (its tick and its winner's fencing token), read without
changing it, on the process, machine and redis backends alike."""

from __future__ import annotations

import time

import pytest

from sched_accel._coord import Backend
from sched_accel._exceptions import CoordinationUnavailable

from .helpers import Spec


@pytest.mark.slow
def test_held_names_the_latest_winner_until_the_claim_expires(backend: Backend) -> None:
    """None before any claim; then (tick, token) of the latest winner; None again once it expires."""
    assert backend.held("job") is None
    assert backend.claim("job", 7, ttl=0.3) == 1
    assert backend.held("job") == (7, 1)
    assert backend.claim("job", 7, ttl=0.3) is None  # a loser changes nothing
    assert backend.held("job") == (7, 1)
    assert backend.claim("job", 9, ttl=0.3) == 2
    assert backend.held("job") == (9, 2) and backend.held("other") is None
    time.sleep(0.35)
    assert backend.held("job") is None
    assert backend.claim("job", 9, ttl=0.3) == 3  # reading it took nothing


def test_held_is_shared_by_instances(shared_spec: Spec) -> None:
    """Another instance on the same store reads the claim the first one won."""
    one, two = shared_spec.build(), shared_spec.build()
    try:
        assert one.claim("job", 3, ttl=5) == 1
        assert two.held("job") == (3, 1)
    finally:
        one.close()
        two.close()


def test_held_on_a_closed_backend_is_unavailable(backend: Backend) -> None:
    """Like every call: our one error after close()."""
    backend.close()
    with pytest.raises(CoordinationUnavailable):
        backend.held("job")
