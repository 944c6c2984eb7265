"""A Celery task: the daily forecast of each of a list of OpenWeatherMap city ids.

Modelled on clement-daubrenet/web-development (celery/celeryapp.py): a Celery app whose task
asks OpenWeatherMap's daily forecast endpoint for a city id (``forecast/daily?id=...&APPID=...``)
over a list of city ids, run by ``celery -A celeryapp worker``. Ours is one task that walks the
list of ids itself, keeps each city's three days of minimum and maximum in ``forecasts.json``
and returns a summary; the broker and result backend are Redis (REALWORLD_REDIS_URL), the API's
address comes from REALWORLD_API.
Shape: a Celery task, declared as module:task, run by a real worker (solo pool) from a real broker.
"""

import json
import os

import requests
from celery import Celery

API = os.environ.get("REALWORLD_API", "http://api.openweathermap.org") + "/owm/data/2.5/forecast/daily"
REDIS = os.environ.get("REALWORLD_REDIS_URL", "redis://localhost:6379/0")

app = Celery("celeryapp", broker=REDIS, backend=REDIS)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)

CITY_IDS = [2643743, 2950159, 2988507, 5344157, 3169070, 3117735, 2761369, 3067696, 2618425, 658225]


@app.task
def refresh_forecasts(city_ids):
    forecasts = {}
    for city_id in city_ids:
        url = f"{API}?id={city_id}&APPID=64af4014d4d7"
        days = requests.get(url, timeout=10).json()["list"]
        forecasts[str(city_id)] = [(day["temp"]["min"], day["temp"]["max"]) for day in days]
    with open("forecasts.json", "w") as out:
        json.dump(forecasts, out, indent=1)
    return {"cities": len(forecasts), "warmest": max(max(hi for _, hi in days) for days in forecasts.values())}
