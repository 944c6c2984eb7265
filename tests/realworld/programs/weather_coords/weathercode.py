"""Hourly forecasts for a list of places, one JSON file per place.

Modelled on cosimopoccianti/Free-weather-API (weathercode.py): a script that walks a list of
locations with their latitude and longitude, asks Open-Meteo for each one's hourly forecast and
writes it to ``Forecast_<place>.json``, printing each file's name. Ours keeps the places as
dicts of floats and passes them through requests' ``params``; the API's address comes from
REALWORLD_API. Shape: items that are dicts of floats; files written.
"""

import json
import os

import requests

API = os.environ.get("REALWORLD_API", "https://api.open-meteo.com") + "/openmeteo/v1/forecast"

LOCATIONS = [
    {"name": "Rome", "lat": 41.8955, "lon": 12.4823},
    {"name": "Reykjavik", "lat": 64.1353, "lon": -21.8952},
    {"name": "Jerusalem", "lat": 31.7857, "lon": 35.2007},
    {"name": "Barcelona", "lat": 41.3949, "lon": 2.1756},
    {"name": "Lamezia Terme", "lat": 38.9429, "lon": 16.3316},
    {"name": "Florence", "lat": 43.7683, "lon": 11.259},
    {"name": "Urbania", "lat": 43.6683, "lon": 12.5224},
    {"name": "Lienz", "lat": 46.8289, "lon": 12.7693},
    {"name": "Matrei", "lat": 47.0744, "lon": 12.694},
    {"name": "Tromso", "lat": 69.6496, "lon": 18.956},
    {"name": "Quito", "lat": -0.2299, "lon": -78.5249},
    {"name": "Hobart", "lat": -42.8821, "lon": 147.3272},
]


def fetch_forecasts(locations):
    written = []
    for location in locations:
        response = requests.get(
            API,
            params={"latitude": location["lat"], "longitude": location["lon"],
                    "hourly": "temperature_2m", "timezone": "Europe/Berlin"},
            timeout=20,
        )
        response.raise_for_status()
        name = "Forecast_" + location["name"].replace(" ", "_") + ".json"
        with open(name, "w") as out:
            out.write(response.text)
        print(name)
        written.append(name)
    return written


if __name__ == "__main__":
    files = fetch_forecasts(LOCATIONS)
    print(f"{len(files)} forecasts written")
