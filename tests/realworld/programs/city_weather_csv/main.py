"""Current weather of a list of cities, by name, into a CSV.

Modelled on krav4andrii/weather_api_request (main.py): for each city name, ask OpenWeatherMap's
current-weather endpoint (``q=<city>``), print a line for a city it cannot find, and write
name, id, temperature, description, pressure and wind speed to ``weather_data.csv``. Ours passes
the name through requests' ``params`` on one Session (so ``New York`` goes out as
``q=New+York``), with names that need encoding; the API's address comes from REALWORLD_API.
Shape: values the client encodes (spaces, accents).
"""

import csv
import os

import requests

API = os.environ.get("REALWORLD_API", "https://api.openweathermap.org") + "/owm/data/2.5/weather"
APPID = "298318be08ee"

CITIES = ["Zhitomyr", "Madrid", "New York", "São Paulo", "Tel Aviv", "Dubai", "Atlantis", "Rio de Janeiro",
          "Kraków", "Ho Chi Minh City", "Reykjavík", "Cape Town"]


def weather(city_list, units):
    session = requests.Session()
    rows = []
    for city in city_list:
        try:
            r = session.get(API, params={"q": city, "appid": APPID, "units": units}, timeout=10)
        except requests.exceptions.RequestException:
            print("Some problems with server connecting, please try later!")
            continue
        if r.status_code > 200:
            print(f"Can't find your city '{city}', try another one!")
            continue
        d = r.json()
        rows.append([d["name"], d["id"], d["main"]["temp"], d["weather"][0]["description"],
                     d["main"]["pressure"], d["wind"]["speed"]])
    with open("weather_data.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Name", "Id", "Temperature", "Visibility", "Pressure", "Wind_speed"])
        writer.writerows(rows)
    return len(rows)


if __name__ == "__main__":
    print(weather(CITIES, "metric"), "cities written")
