"""TMDB lookups: a title's search, then the details of the movie it finds."""

import os

import requests

BASE = os.environ.get("REALWORLD_API", "https://api.themoviedb.org") + "/tmdb/3"
API_KEY = "a773e9c7af78"


def get_movie_details(movie_id):
    response = requests.get(f"{BASE}/movie/{movie_id}", params={"api_key": API_KEY}, timeout=10)
    return response.json()


def lookup(movie_name):
    response = requests.get(f"{BASE}/search/movie", params={"query": movie_name, "api_key": API_KEY}, timeout=10)
    results = response.json().get("results")
    if not results:
        return None
    return get_movie_details(results[0]["id"])
