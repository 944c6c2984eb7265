"""Each club's check-ins, revenue and active members, from behind the ClubReady login.

Modelled on zwa004/fitness_memberships (requests.session.py): in a ``requests.session()``, POST
the login form to ClubReady, then GET the main dashboard and read it. Ours does that for each of
a chain's clubs (a login per club, as each has its own account), reads two figures off the
dashboard with a regex, GETs the active members' count, and writes ``memberships.csv``; the
site's address comes from REALWORLD_API.
Shape: a login POST per item, then GETs in that session (cookies).
"""

import csv
import os
import re

import requests

BASE = os.environ.get("REALWORLD_API", "https://www.clubready.com") + "/clubready"
LOGIN_URL = BASE + "/Security/Login"
DASH_URL = BASE + "/Dashboard/MainDashboard"
MEMBERS_URL = BASE + "/Members"

CLUBS = [{"uid": f"club{n:03d}", "pw": f"pw-club{n:03d}", "chainId": 773} for n in (11, 12, 15, 21, 22, 30, 31, 47)]


def collect(clubs):
    rows = []
    for club in clubs:
        with requests.session() as s:
            payload = {"uid": club["uid"], "pw": club["pw"], "Submit": "Login", "inst": 1, "chainId": club["chainId"]}
            s.post(LOGIN_URL, data=payload, timeout=10)
            page = s.get(DASH_URL, timeout=10).text
            checkins = re.search(r"id='checkins'>(\d+)<", page).group(1)
            revenue = re.search(r"id='revenue'>(\d+)<", page).group(1)
            members = s.get(MEMBERS_URL, params={"status": "active"}, timeout=10).json()["count"]
        rows.append([club["uid"], checkins, revenue, members])
        print(f"{club['uid']}: {checkins} check-ins, {members} active")
    with open("memberships.csv", "w", newline="") as f:
        csv.writer(f).writerows([["club", "checkins", "revenue", "active_members"], *rows])
    return len(rows)


if __name__ == "__main__":
    collect(CLUBS)
