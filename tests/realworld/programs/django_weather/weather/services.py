import os

import requests

from .models import Forecast

API = os.environ.get("REALWORLD_API", "https://api.open-meteo.com") + "/openmeteo/v1/forecast"


def fetch_and_store_forecast(city):
    response = requests.get(API, params={"latitude": city.lat, "longitude": city.lon, "hourly": "temperature_2m",
                                         "timezone": "Europe/Helsinki"}, timeout=10)
    response.raise_for_status()
    hourly = response.json()["hourly"]
    for time, temperature in zip(hourly["time"], hourly["temperature_2m"]):
        Forecast.objects.update_or_create(city=city, time=time, defaults={"temperature": temperature})
