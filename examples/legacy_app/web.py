"""The web front: a WSGI app showing the leaderboard, served by ``gunicorn --workers 4 legacy_app.web:app``.

It starts the app's scheduler when it is imported, to keep the leaderboard fresh. Under
gunicorn each worker imports it, so each of the 4 workers starts its own scheduler and
publishes the leaderboard every second: every tick runs 4 times (seed 004).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from legacy_app import leaderboard

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
log = logging.getLogger("legacy_app.web")

scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
scheduler.add_job(leaderboard.publish_leaderboard, "interval", seconds=leaderboard.EVERY, id="leaderboard")
scheduler.start()
log.info("scheduler started in worker %d", os.getpid())


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``GET /leaderboard``: the last one published, as JSON; anything else: 404."""
    if environ.get("PATH_INFO") != "/leaderboard":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    body = json.dumps(leaderboard.latest()).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
