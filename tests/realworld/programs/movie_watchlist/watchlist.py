"""A watchlist's runtimes and genres from TMDB: a search by title, then the movie it names.

Modelled on annyconfessor/cinebrain (predict_by_name.py): search TMDB for a movie by its name,
take the first result's id and fetch that movie's details, saying when no movie has that name.
Ours does it for every title of a watchlist and saves runtime, rating and genres to
``watchlist.json``; the lookup (search, then details) is a function that only reads, declared
as the target's ``fetch``; the API's address comes from REALWORLD_API.
Shape: chained requests (a search, then the detail it names); function level.
"""

import json

from tmdb import lookup

WATCHLIST = ["The Hangover", "Spirited Away", "Parasite", "Untitled Project", "Amélie", "Heat", "Alien",
             "City of God", "Oldboy", "Up", "Arrival", "Her"]


def build_watchlist(titles):
    saved = {}
    for title in titles:
        movie = lookup(title)
        if movie is None:
            print(f"No movie called {title!r}")
            continue
        saved[title] = {"id": movie["id"], "runtime": movie["runtime"], "rating": movie["vote_average"],
                        "genres": [g["name"] for g in movie["genres"]]}
        print(f"{title}: {movie['runtime']} min")
    with open("watchlist.json", "w", encoding="utf-8") as out:
        json.dump(saved, out, indent=2, ensure_ascii=False)
    return sum(m["runtime"] for m in saved.values())


if __name__ == "__main__":
    print("total runtime:", build_watchlist(WATCHLIST), "min")
