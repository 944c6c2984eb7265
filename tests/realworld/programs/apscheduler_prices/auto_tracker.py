"""A scheduled job: refresh every tracked laptop model's prices and store them.

Modelled on Mascerade/price-assist-server (track_prices/auto_tracker.py): an APScheduler
``BlockingScheduler`` runs ``price_updater`` on a cron trigger; the job GETs the tracked item
models, GETs each one's prices from the query service and PUTs them back to the store. Ours
runs the job once, at once (a date trigger), then shuts the scheduler down when the job has
run; it logs through the stdlib's logging to ``tracker.log``; the services' address comes from
REALWORLD_API.
Shape: an APScheduler job; the items come from a request inside the job; a write (PUT) per item.
"""

import logging
import os

import requests
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.schedulers.blocking import BlockingScheduler

BASE = os.environ.get("REALWORLD_API", "http://localhost:5003") + "/prices"
log = logging.getLogger("tracker")


def price_updater():
    data = requests.get(BASE + "/item_model_data", timeout=10).json()
    for item_model in data["item_models"]:
        prices = requests.get(BASE + "/api/query", timeout=10, params={
            "retailer": "None", "price": "None", "item_model": item_model, "return_type": "json"}).json()
        stored = requests.put(BASE + "/", json={"item_model": item_model, "data": prices}, timeout=10).json()
        log.info("%s: %s", stored["stored"], min(prices.values()))
    return len(data["item_models"])


def main():
    logging.basicConfig(filename="tracker.log", level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    sched = BlockingScheduler(timezone="UTC")
    outcome = {}

    def done(event):
        outcome["result"] = event.retval if not event.exception else repr(event.exception)
        sched.shutdown(wait=False)

    sched.add_listener(done, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    sched.add_job(price_updater, id="price_updater")  # no trigger: run once, now
    sched.start()
    print("job returned", outcome.get("result"))


if __name__ == "__main__":
    main()
