"""What cron and the ops side do: start a worker, queue the task, print its result, stop the worker."""

import os
import subprocess
import sys

from celeryapp import CITY_IDS, app, refresh_forecasts

if __name__ == "__main__":
    queue = "forecasts-" + os.path.basename(os.getcwd())
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celeryapp", "worker", "--pool=solo", "--concurrency=1",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=ERROR", "-Q", queue,
         "-n", f"{queue}@realworld"],
        stdout=subprocess.DEVNULL,
    )
    try:
        result = refresh_forecasts.apply_async(args=[CITY_IDS], queue=queue)
        print("task result:", result.get(timeout=60))
    finally:
        app.control.shutdown(destination=[f"{queue}@realworld"])
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
