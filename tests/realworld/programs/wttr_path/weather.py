"""Weather of a few places from wttr.in, the place in the URL's path.

Modelled on Forgman75/weather (weather.py): for each place name (Cyrillic), GET
``https://wttr.in/<place>`` with a few format parameters and print the answer's text. Ours has
more places, some of them one or two letters long; the API's address comes from REALWORLD_API.
Shape: the item inside a path segment, percent-encoded by the client.
"""

import os

import requests

BASE = os.environ.get("REALWORLD_API", "https://wttr.in") + "/wttr/"
PARAMS = {"n": "", "T": "", "q": "", "lang": "ru"}

PLACES = ["Лондон", "Шереметьево", "Череповец", "Москва", "Уфа", "Ош", "Сочи", "Тверь", "Омск", "Ейск"]


def report(places):
    for place in places:
        response = requests.get(BASE + place, params=PARAMS, timeout=10)
        response.raise_for_status()
        print(response.text, end="")


if __name__ == "__main__":
    report(PLACES)
