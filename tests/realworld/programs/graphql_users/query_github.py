"""Profiles of a community's members from GitHub's GraphQL API, pushed to the community's directory.

Modelled on VietFOSS/vn-foss (query_github.py): POST a GraphQL query for a user's basic info
(name, bio, company, location) to api.github.com/graphql with a personal token. Ours runs the
query for each member of a list, with the login as a variable, then POSTs the profile to the
community's member directory (a write); both APIs' addresses come from REALWORLD_API.
Shape: a read sent as POST (GraphQL query), then a write POST per item.
"""

import os

import requests

BASE = os.environ.get("REALWORLD_API", "https://api.github.com")
GH_GRAPHQL_EP = BASE + "/github/graphql"
DIRECTORY = BASE + "/directory/members"
HEADERS = {"Authorization": "bearer ghp_personal_token"}

QUERY_USER_BASIC_INFO = """
query($login: String!) {
  user(login: $login) {
    login name company location
    followers { totalCount }
    repositories { totalCount }
  }
}
"""

MEMBERS = ["vietlq", "tuanpham", "ngoclinh", "hoangnam", "thuhuong", "minhduc", "lananh", "quanghuy", "baotran",
           "khanhvy"]


def sync_members(logins):
    pushed = []
    for login in logins:
        response = requests.post(GH_GRAPHQL_EP, json={"query": QUERY_USER_BASIC_INFO, "variables": {"login": login}},
                                 headers=HEADERS, timeout=10)
        user = response.json()["data"]["user"]
        profile = {"login": user["login"], "name": user["name"], "company": user["company"],
                   "location": user["location"], "followers": user["followers"]["totalCount"]}
        stored = requests.post(DIRECTORY, json=profile, timeout=10).json()
        print(f"{login:10} {user['location'] or '-':18} followers={profile['followers']:5} id={stored['id']}")
        pushed.append(stored["id"])
    return pushed


if __name__ == "__main__":
    print(len(sync_members(MEMBERS)), "members synced")
