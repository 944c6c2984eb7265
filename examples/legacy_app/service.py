"""The service: an APScheduler BackgroundScheduler running the app's jobs.

``python -m legacy_app.service`` runs it until stopped; ``python -m legacy_app.service --once JOB``
runs one job now, through the same scheduler, and prints its result as JSON (what an
operator does to re-run a job by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler

from legacy_app import predictions
from legacy_app.collection import collect_prices
from legacy_app.jobs import update_scores
from legacy_app.wallets import refresh_wallets

log = logging.getLogger("legacy_app.service")


def run_predictions() -> int:
    return asyncio.run(predictions.main())


#: name: (function, args, trigger, trigger arguments)
JOBS: dict[str, tuple[Callable[..., Any], tuple[Any, ...], str, dict[str, Any]]] = {
    "score_hot": (update_scores, ("hot",), "interval", {"minutes": 1}),
    "score_cold": (update_scores, ("cold",), "interval", {"minutes": 5}),
    "predictions": (run_predictions, (), "cron", {"minute": "*"}),
    "collect": (collect_prices, (), "interval", {"minutes": 2}),
    "wallets": (refresh_wallets, (), "interval", {"seconds": 30}),
}


def make_scheduler() -> BackgroundScheduler:
    return BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})


def serve() -> None:
    scheduler = make_scheduler()
    for name, (func, args, trigger, when) in JOBS.items():
        scheduler.add_job(func, trigger, args=args, id=name, **when)
    scheduler.start()
    log.info("scheduler started with %d jobs", len(JOBS))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        scheduler.shutdown()


def run_once(name: str) -> dict[str, Any]:
    """Run one job now through the scheduler; its result, or its error, and its seconds."""
    func, args, _, _ = JOBS[name]
    scheduler = make_scheduler()
    finished = threading.Event()
    outcome: dict[str, Any] = {"job": name}

    def listener(event: JobExecutionEvent) -> None:
        outcome["seconds"] = round(time.perf_counter() - started, 3)
        if event.exception is not None:
            outcome["error"] = repr(event.exception)
        else:
            outcome["result"] = event.retval
        finished.set()

    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    started = time.perf_counter()
    scheduler.add_job(func, args=args, id=name)  # no trigger: run now, once
    scheduler.start()
    finished.wait()
    scheduler.shutdown()
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description="the legacy service's scheduler")
    parser.add_argument("--once", choices=sorted(JOBS), help="run this job once, now, and print its result")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.once:
        print(json.dumps(run_once(args.once)))
    else:
        serve()


if __name__ == "__main__":
    main()
