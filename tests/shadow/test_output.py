"""_output: a shadow's prints, stream writes, log records and warnings are dropped; the rest
of the process, at the same time, is untouched."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import warnings

import pytest
from loguru import logger

from sched_accel._exceptions import Stopped
from sched_accel._shadow import Shadow, activate, active, deactivate, shadowed
from sched_accel._shadow._output import StreamProxy

from .helpers import in_thread


@pytest.mark.usefixtures("active")
def test_prints_logs_and_warnings_of_a_shadow_thread_are_dropped_while_the_main_threads_go_on(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Shadow and main thread print and log in turn: only the main thread's lines come out."""
    caplog.set_level(logging.INFO)
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="INFO")
    turn = threading.Semaphore(0)
    back = threading.Semaphore(0)

    def shadow_job() -> None:
        for i in range(20):
            turn.acquire()
            print(f"shadow print {i}")
            sys.stderr.write(f"shadow stderr {i}\n")
            sys.stdout.writelines([f"shadow lines {i}\n"])
            logging.getLogger("app").info("shadow log %d", i)
            logger.info("shadow loguru {}", i)
            warnings.warn(f"shadow warning {i}", UserWarning, stacklevel=1)
            back.release()

    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(in_thread(shadow_job)))
    thread.start()
    try:
        for i in range(20):
            turn.release()
            print(f"main print {i}")
            logging.getLogger("app").info("main log %d", i)
            logger.info("main loguru {}", i)
            back.acquire()
    finally:
        thread.join()
        logger.remove(sink)
    out, err = capsys.readouterr()
    assert "shadow" not in out + err
    assert out.splitlines() == [f"main print {i}" for i in range(20)]
    assert [r.getMessage() for r in caplog.records] == [f"main log {i}" for i in range(20)]
    assert lines == [f"main loguru {i}" for i in range(20)]
    outcome = results[0]
    assert outcome.error is None and outcome.shadow.stopped is None  # type: ignore[attr-defined]
    assert outcome.shadow.dropped == 20 * 7  # type: ignore[attr-defined]  # print() writes twice


@pytest.mark.usefixtures("active")
@pytest.mark.audit
def test_a_stopped_shadow_that_goes_on_is_stopped_again_by_its_next_print() -> None:
    """After an effect, a print in the app's ``except`` raises Stopped again."""

    def job() -> None:
        try:
            open("/dev/null", "w")  # noqa: SIM115 - the effect
        except BaseException:
            print("in a bare except")

    outcome = in_thread(job)
    assert isinstance(outcome.error, Stopped)
    assert outcome.shadow.stopped is not None and "for writing" in outcome.shadow.stopped


def test_the_proxy_forwards_everything_but_a_shadows_writes() -> None:
    """The proxy reads as the real stream: attributes, buffer, fileno; it writes outside a shadow."""
    real = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    proxy = StreamProxy(real)
    assert proxy.encoding == "utf-8" and proxy.writable() and repr(proxy) == repr(real)
    proxy.write("kept\n")
    proxy.flush()
    with shadowed(Shadow()):
        proxy.write("dropped\n")
        proxy.buffer.write(b"dropped bytes\n")
    proxy.buffer.write(b"kept bytes\n")
    proxy.flush()
    assert real.buffer.getvalue() == b"kept\nkept bytes\n"


def test_the_proxies_are_in_place_while_a_run_is_active_and_taken_out_by_the_last() -> None:
    """activate()/deactivate() are counted; the last one restores the real streams."""
    real_out, real_err = sys.stdout, sys.stderr
    assert active() == 0
    activate()
    try:
        assert isinstance(sys.stdout, StreamProxy) and isinstance(sys.stderr, StreamProxy)
        activate()
        deactivate()
        assert active() == 1 and isinstance(sys.stdout, StreamProxy)
    finally:
        deactivate()
    assert active() == 0 and sys.stdout is real_out and sys.stderr is real_err


def test_a_stream_replaced_meanwhile_gets_a_proxy_as_a_shadow_starts_and_is_left_to_its_owner() -> None:
    """redirect_stdout while active: a shadow starting then is still dropped; the last
    deactivate() leaves the app's stream where the app put it."""
    activate()
    mine = io.StringIO()
    try:
        with contextlib.redirect_stdout(mine):
            with shadowed(Shadow()):
                print("dropped")
            print("kept")
            deactivate()
            assert sys.stdout is mine
    finally:
        if active():
            deactivate()
    assert mine.getvalue() == "kept\n"
