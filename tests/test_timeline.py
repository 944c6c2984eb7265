"""``sched-accel timeline``: the app's own last runs of a target as one self-contained HTML
page, drawn from real runs against a real server, and opened in a real headless Chromium
(the system's; skipped with the reason when it is not installed)."""

from __future__ import annotations

import importlib
import itertools
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import sched_accel
from sched_accel._cli import main
from sched_accel._state import DISABLED_ENV
from sched_accel._timeline import page

from .conftest import App
from .faultserver import FaultServer

pytestmark = pytest.mark.slow

JOB = """
    import httpx

    def refresh(base, tokens):
        with httpx.Client() as client:
            return [client.get(f"{base}/item/{token}").json()["value"] for token in tokens]
"""
TOKENS = [f"t{i}" for i in range(12)]


class Shapes(HTMLParser):
    """The page's request bars, its baseline bar, and whether it loads anything from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = self.baselines = self.scripts = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "rect" and found.get("class") == "request":
            self.requests += 1
        if tag == "rect" and found.get("class") == "baseline":
            self.baselines += 1
        if tag == "script":
            self.scripts += 1
        self.external += [v for k, v in attrs if k in ("src", "href") and v]


def shapes(text: str) -> Shapes:
    parser = Shapes()
    parser.feed(text)
    return parser


@pytest.fixture
def drawn(app: App, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Three real runs of one target: switched off (the baseline), at concurrency 1 (one
    request at a time: kept), accelerated; then the page `sched-accel timeline` writes."""
    app.write("job.py", JOB)
    app.config('[[targets]]\nloop = "job:refresh"\nitems = "tokens"\nconcurrency = 6\n')
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    job: Any = None
    with FaultServer(latency=0.03) as server:
        for env in ({DISABLED_ENV: "job:refresh"}, {"SCHED_ACCEL_CONCURRENCY": "1"}, {}):
            for key in (DISABLED_ENV, "SCHED_ACCEL_CONCURRENCY"):
                monkeypatch.delenv(key, raising=False)
            for key, value in env.items():
                monkeypatch.setenv(key, value)
            sched_accel.reset()
            assert sched_accel.install() is True
            job = job or importlib.import_module("job")
            assert len(job.refresh(server.url, TOKENS)) == len(TOKENS)
    monkeypatch.chdir(app.root)
    out = tmp_path / "timeline.html"
    assert main(["timeline", "job:refresh", "-o", str(out)]) == 0
    return out


def test_the_page_draws_the_sequential_and_the_accelerated_run_and_the_baseline(drawn: Path) -> None:
    """One bar per request of the one-at-a-time run and of the last run, the baseline above;
    nothing loaded from elsewhere, no script."""
    text = drawn.read_text()
    found = shapes(text)
    assert found.requests == 2 * len(TOKENS)
    assert found.baselines == 1
    assert found.scripts == 0 and found.external == []
    assert "one request at a time" in text and "speedup" in text and "effective concurrency" in text


def test_the_runs_file_keeps_the_spans_bounded(drawn: Path, app: App) -> None:
    record = json.loads((app.state(here=True) / "runs" / "job_refresh.json").read_text())
    spans = record["timeline"]["spans"]
    assert len(spans) == len(TOKENS) and record["timeline"]["dropped"] == 0
    start, took, host, who, status = spans[0]
    assert took >= 0.03 and host == "127.0.0.1" and who in ("ahead", "live") and status == 200
    assert len(record["sequential"]["spans"]) == len(TOKENS)
    sequential = sorted(record["sequential"]["spans"])
    assert all(b[0] >= a[0] + a[1] - 0.005 for a, b in itertools.pairwise(sequential))  # one at a time


@pytest.mark.skipif(
    shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
    reason="no Chromium on this machine (apt-get install chromium): the page is checked by parsing only",
)
def test_a_real_headless_browser_renders_every_bar(drawn: Path, tmp_path: Path) -> None:
    """Chromium (headless, no network, a profile of its own) parses the page: the DOM it
    builds holds every bar; its screenshot is written."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser is not None
    common = [
        browser,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
    ]
    dom = subprocess.run([*common, "--dump-dom", drawn.as_uri()], capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert shapes(dom.stdout).requests == 2 * len(TOKENS)
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1000,1400", drawn.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000


def test_what_a_runs_file_says_is_escaped_and_bad_figures_left_out() -> None:
    """A runs file is data: markup in it is escaped, numbers that are not numbers are skipped."""
    record = {
        "finished": "soon",
        "run": {"outcome": "<script>alert(1)</script>", "seconds": "NaN", "speedup": float("inf")},
        "timeline": {
            "spans": [
                [0.0, 0.1, "<img src=x onerror=alert(1)>", "ahead", 200],
                [float("nan"), 1, "h", "live", 200],
                ["0", 1, "h", "live", 200],
                [0.2, -1, "h", "live", 200],
                "junk",
            ],
            "dropped": "many",
        },
        "plain": {"seconds": "<b>"},
    }
    text = page({"<t>": record}, title="<title>")
    found = shapes(text)
    assert found.requests == 1 and found.baselines == 0 and found.scripts == 0 and found.external == []
    assert "<script>alert" not in text and "<img" not in text and "&lt;t&gt;" in text


def test_no_run_recorded_is_said(app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    app.config('[[targets]]\nloop = "job:refresh"\nitems = "tokens"\n')
    monkeypatch.chdir(app.root)
    assert main(["timeline", "-o", str(app.root / "t.html")]) == 1
    assert "no run of any target of this app is recorded" in capsys.readouterr().err
    assert not (app.root / "t.html").exists()
