"""A Celery task declared as ``loop = "module:task"`` (issue 20, item 9): the ``run`` a worker
calls is what is patched, so a real ``celery worker`` (solo and prefork pools, on a real
redis-server as broker and result backend), ``task.apply()`` and a direct ``task(...)`` all go
through the wrapper, once per call; and the task's lazy proxy is never forced into being at
import (that would bind it to an app not configured yet)."""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sched_accel
from sched_accel import TargetSpec
from sched_accel._patching import is_ours
from sched_accel._targets import CELERY_TASK

from .conftest import ENV_KEYS, App
from .coord.redis_server import serving
from .faultserver import FaultServer, value_of

pytestmark = pytest.mark.slow

pytest.importorskip("celery", reason="celery is not installed: `pip install celery` to run these tests")

# The task: a sequential loop of HTTP GETs, one per key. Its app's broker and result backend
# come from the environment (a real redis-server for the worker; none needed by apply()).
TASKS = """
    import os

    import requests
    from celery import Celery

    app = Celery("tasks", broker=os.environ.get("TASKS_REDIS", "memory://"),
                 backend=os.environ.get("TASKS_REDIS", "cache+memory://"))
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                    broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
    CALLS = []


    @app.task
    def refresh(base, keys):
        CALLS.append(list(keys))
        values = {}
        for key in keys:
            values[key] = requests.get(f"{base}/item/{key}", timeout=10).json()["value"]
        return values


    @app.task(bind=True, autoretry_for=(KeyError,))
    def refresh_bound(self, base, keys):
        return refresh.run(base, keys)
"""
# A @shared_task beside them. Celery keeps the maker of every task (an @app.task is shared too)
# for the life of the process and runs them all whenever an app is finalized, so each test
# imports these modules under names of its own: a task name made twice would clash.
SHARED = """
    from celery import shared_task

    from {tasks} import refresh


    @shared_task
    def refresh_shared(base, keys):
        return refresh.run(base, keys)
"""
CONFIG = """
    [[targets]]
    loop = "{task}"
    items = "keys"
    concurrency = 8
"""
KEYS = [f"city{n:02d}" for n in range(12)]
LATENCY = 0.05
EXPECTED = {key: value_of(key) for key in KEYS}
_RUN = re.compile(r"sched_accel\.run target=tasks:refresh .*")


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """The upstream: every GET answered after LATENCY, counted per key, with its peak in flight."""
    with FaultServer(latency=LATENCY) as upstream:
        yield upstream


@pytest.fixture
def tasks_app(app: App, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> App:
    """The task modules in an app folder, named after the test; the flag on."""
    app.write(f"{module_name('tasks', request)}.py", TASKS)
    app.write(f"{module_name('shared', request)}.py", SHARED.format(tasks=module_name("tasks", request)))
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
    return app


def module_name(kind: str, request: pytest.FixtureRequest) -> str:
    """This test's module of ``kind`` (``tasks`` or ``shared``)."""
    return f"{kind}_" + re.sub(r"\W", "_", request.node.name)


def task_spec(task: str, request: pytest.FixtureRequest) -> str:
    """``module:task`` for one of the tasks above, in this test's modules."""
    return f"{module_name('shared' if task == 'refresh_shared' else 'tasks', request)}:{task}"


# -- in this process: resolved where the worker calls it, the proxy left alone --------------------
@pytest.mark.parametrize("task", ["refresh", "refresh.run", "refresh_bound", "refresh_shared"])
def test_a_task_resolves_to_its_run_without_making_it(
    tasks_app: App, task: str, request: pytest.FixtureRequest
) -> None:
    """module:task (and module:task.run) resolve to the task's run, its lazy proxy unevaluated."""
    spec = TargetSpec.parse(task_spec(task, request))
    module = importlib.import_module(spec.module or "")
    resolved = spec.resolve(module)
    assert resolved.attribute == "run"
    assert resolved.described == CELERY_TASK
    assert resolved.kind == ("method" if task == "refresh_bound" else "staticmethod")
    assert sys.modules[module_name("tasks", request)].app.finalized is False  # it makes its tasks once ready
    if task != "refresh_shared":  # @app.task's PromiseProxy (a shared task's proxy evaluates at each use)
        assert getattr(module, task.split(".")[0]).__evaluated__() is False


@pytest.mark.parametrize("task", ["refresh", "refresh_bound", "refresh_shared"])
def test_apply_and_a_direct_call_go_through_the_wrapper_once(
    tasks_app: App, server: FaultServer, task: str, capture_events: list[str], request: pytest.FixtureRequest
) -> None:
    """task.apply() and task(...) are accelerated, one run each, equal to the unpatched result."""
    spec = task_spec(task, request)
    tasks_app.config(CONFIG.format(task=spec))
    assert sched_accel.install() is True
    module = importlib.import_module(spec.partition(":")[0])
    [patched] = [line for line in capture_events if line.startswith("sched_accel.patched ")]
    assert f'kind="{CELERY_TASK}"' in patched
    the_task = getattr(module, task)
    assert the_task.apply(args=[server.url, KEYS]).get() == EXPECTED
    assert server.peak > 1, "the GETs went out one at a time"
    assert the_task(server.url, KEYS[:4]) == {key: EXPECTED[key] for key in KEYS[:4]}
    runs = [line for line in capture_events if line.startswith(f"sched_accel.run target={spec} ")]
    assert len(runs) == 2, runs  # one per call: the wrapper is in the path exactly once
    assert sys.modules[module_name("tasks", request)].CALLS == [KEYS, KEYS[:4]]
    assert all(server.requests[key] == (2 if key in KEYS[:4] else 1) for key in KEYS)
    sched_accel.uninstall()
    server.reset_counts()
    assert the_task.apply(args=[server.url, KEYS]).get() == EXPECTED  # unpatched: the same result
    assert server.peak == 1
    assert len([line for line in capture_events if line.startswith("sched_accel.run ")]) == 2


def test_uninstall_reaches_a_task_made_before_or_after_it(tasks_app: App, request: pytest.FixtureRequest) -> None:
    """A task made while installed has its run restored by uninstall; one made after is never patched."""
    tasks_app.config(
        CONFIG.format(task=task_spec("refresh", request)) + CONFIG.format(task=task_spec("refresh_bound", request))
    )
    assert sched_accel.install() is True
    module = importlib.import_module(module_name("tasks", request))
    made = module.refresh._get_current_object()  # its app makes it now: patched then
    assert is_ours(vars(type(made))["run"])
    sched_accel.uninstall()
    assert not is_ours(vars(type(made))["run"])
    later = module.refresh_bound._get_current_object()  # made after uninstall: left alone
    assert not is_ours(vars(type(later))["run"])
    assert sched_accel.patched_targets() == []


def test_check_says_a_task_is_patched_at_its_run(tasks_app: App, request: pytest.FixtureRequest) -> None:
    """sched-accel check reports a task's loop as `celery task (run)`, like the patched line."""
    spec = task_spec("refresh", request)
    tasks_app.config(CONFIG.format(task=spec))
    out = tasks_app.run(
        "-m", "sched_accel", "check", env={"SCHED_ACCEL_CONFIG": str(tasks_app.root / "sched_accel.toml")}
    )
    assert out.returncode == 0, out.stdout + out.stderr
    [line] = [line for line in out.stdout.splitlines() if re.match(rf"^\s+{spec}\s+loop\s", line)]
    assert re.search(rf"\sok\s+{re.escape(CELERY_TASK)}, sync$", line), line


# -- a real worker on a real broker -------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server: the broker and result backend (skipped without one)."""
    yield from serving(str(tmp_path_factory.mktemp("celery-redis")))


class Worker:
    """A `celery worker` started in its own folder with the flag on, and its log."""

    def __init__(self, folder: Path, pool: str, redis_url: str) -> None:
        self.folder, self.pool, self.queue, self.redis_url = folder, pool, f"refresh-{pool}", redis_url
        self.log = folder / "worker.log"
        env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and not k.startswith("COVERAGE_")}
        env.update(
            {
                "ENABLE_SCHEDULER_OPTIMIZATION": "true",
                "TASKS_REDIS": redis_url,
                "SCHED_ACCEL_CONTROL": str(folder / "state" / "control.json"),
            }
        )
        pool_args = ["--pool=solo"] if pool == "solo" else ["--pool=prefork", "--concurrency=1"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tasks",
                    "worker",
                    *pool_args,
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel=WARNING",
                    "-Q",
                    self.queue,
                    "-n",
                    f"{self.queue}@test",
                ],
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def result(self, result: Any, timeout: float = 60) -> Any:
        """The task's result, or a failure showing the log as soon as the worker has died."""
        deadline = time.monotonic() + timeout
        while not result.ready():
            assert self.process.poll() is None, f"the worker exited ({self.process.returncode}):\n{self.text()}"
            assert time.monotonic() < deadline, f"no result after {timeout} s:\n{self.text()}"
            time.sleep(0.05)
        return result.get(timeout=5)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)  # a warm shutdown
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module", params=["solo", "prefork"])
def worker(
    request: pytest.FixtureRequest, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """One worker per pool for the module, started in a folder holding tasks.py and sched_accel.toml."""
    folder = tmp_path_factory.mktemp(f"celery-{request.param}")
    (folder / "tasks.py").write_text(textwrap.dedent(TASKS), encoding="utf-8")
    (folder / "sched_accel.toml").write_text(textwrap.dedent(CONFIG.format(task="tasks:refresh")), encoding="utf-8")
    started = Worker(folder, request.param, redis_url)
    yield started
    started.stop()


@pytest.fixture
def producer(worker: Worker) -> Iterator[Any]:
    """An app of this process on the worker's broker, flag off: what the test sends the task with."""
    from celery import Celery  # type: ignore[import-untyped]

    app = Celery("producer", broker=worker.redis_url, backend=worker.redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    yield app
    app.close()


@pytest.mark.timeout(90)
def test_a_real_worker_runs_the_task_accelerated(worker: Worker, producer: Any, server: FaultServer) -> None:
    """A worker (solo, prefork) fed by redis runs the task through the wrapper: same result, GETs overlapped."""
    value = worker.result(producer.signature("tasks.refresh", queue=worker.queue).delay(server.url, KEYS))
    log = worker.text()
    assert value == EXPECTED, log
    assert all(server.requests[key] == 1 for key in KEYS), server.requests  # each GET once
    assert server.peak > 1, log  # overlapped: accelerated
    assert f'sched_accel.patched target=tasks:refresh mode=prefetch concurrency=8 kind="{CELERY_TASK}"' in log, log
    [run] = _RUN.findall(log)
    assert "items=12" in run and "ok=12" in run, run
