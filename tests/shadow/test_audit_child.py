"""The tests marked ``audit`` need the audit hook, which a traced process (coverage's) does not
add (``_shadow._audit.install_hook``): here they run in a child pytest that is not traced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import traced

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(not traced(), reason="this process is not traced: the audit tests ran here, with the hook")
def test_the_audit_backstop_in_an_untraced_child() -> None:
    """Every ``audit`` test passes in a child that is not traced (so it adds the hook)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "audit", str(HERE)],
        cwd=HERE.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
